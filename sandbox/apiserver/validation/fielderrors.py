"""Field errors, the sandbox's `k8s.io/apimachinery/pkg/util/validation/field`.

A validator records `FieldError`s in an `Errors` list (one helper per error type, worded like
`field.Error`); `Invalid` turns them into the 422 Status message and causes, `Undecodable` is
the 400 of an object that does not even decode into its Go type.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

OMIT: Any = type("OmitValue", (), {"__repr__": lambda self: "OMIT"})()
"""`field.OmitValueType{}`: an Invalid error whose message names no value."""


@dataclass(frozen=True)
class FieldError:
    """One `field.Error`: its type (reason), path, offending value and detail."""

    reason: str
    field: str
    value: Any = None
    detail: str = ""
    supported: tuple[str, ...] = ()

    @property
    def message(self) -> str:
        """The cause message, e.g. `Invalid value: -1: must be greater than or equal to 0`."""
        if self.reason == "FieldValueRequired":
            return "Required value" + (f": {self.detail}" if self.detail else "")
        if self.reason == "FieldValueDuplicate":
            detail = f": {self.detail}" if self.detail else ""
            return f"Duplicate value: {render_value(self.value)}{detail}"
        if self.reason == "FieldValueNotSupported":
            quoted = ", ".join(json.dumps(s) for s in self.supported)
            return f"Unsupported value: {render_value(self.value)}: supported values: {quoted}"
        if self.reason == "FieldValueNotFound":
            return f"Not found: {render_value(self.value)}"
        if self.reason == "FieldValueForbidden":
            return f"Forbidden: {self.detail}"
        if self.reason == "FieldValueTooLong":
            return f"Too long: {self.detail}"
        if self.value is OMIT:
            return f"Invalid value: {self.detail}"
        return f"Invalid value: {render_value(self.value)}: {self.detail}"

    def cause(self) -> dict[str, str]:
        """This error as a `StatusCause`."""
        return {"reason": self.reason, "message": self.message, "field": self.field}

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


@dataclass(frozen=True)
class GoValue:
    """A bad value that field.Error prints with `%#v` (a Go struct such as `rbac.RoleRef{...}`),
    already rendered."""

    text: str


def go_struct(type_name: str, fields: Iterable[tuple[str, Any]]) -> GoValue:
    """`%#v` of a flat Go struct: strings quoted, a nil pointer as `(*T)(nil)` (pass a GoValue)."""
    inner = ", ".join(f"{name}:{render_value(value)}" for name, value in fields)
    return GoValue(f"{type_name}{{{inner}}}")


def render_value(value: Any) -> str:
    """Render a value the way `field.Error` does (Go quoting for strings, JSON for the rest)."""
    if isinstance(value, GoValue):
        return value.text
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if value is None:
        return "null"
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


class Invalid(Exception):
    """A 422 Invalid: `.causes` are the Status causes, `.message` the Status message."""

    code = 422

    def __init__(self, *, kind: str, group: str, name: str, errors: list[FieldError]) -> None:
        self.errors = errors
        self.kind = kind
        self.group = group
        self.name = name
        self.causes: list[dict[str, str]] = [e.cause() for e in errors]
        qualified = f"{kind}.{group}" if group else kind
        listed = str(errors[0]) if len(errors) == 1 else "[" + ", ".join(str(e) for e in errors) + "]"
        self.message = f'{qualified} "{name}" is invalid: {listed}'
        super().__init__(self.message)


class Undecodable(Invalid):
    """An object that does not decode into its Go type (`"replicas": "3"`): a real server answers
    400 BadRequest with `.message` before validating. It subclasses Invalid so that a caller
    that only knows Invalid still refuses it; `.code` tells the two apart."""

    code = 400

    def __init__(self, *, kind: str, group: str, name: str, message: str) -> None:
        Exception.__init__(self, message)
        self.errors = []
        self.kind = kind
        self.group = group
        self.name = name
        self.causes = []
        self.message = message


class Errors(list[FieldError]):
    """A growing `field.ErrorList` with one helper per error type."""

    def invalid(self, field: str, value: Any, detail: str) -> None:
        """Record `Invalid value`."""
        self.append(FieldError("FieldValueInvalid", field, value, detail))

    def required(self, field: str, detail: str = "") -> None:
        """Record `Required value`."""
        self.append(FieldError("FieldValueRequired", field, None, detail))

    def duplicate(self, field: str, value: Any, detail: str = "") -> None:
        """Record `Duplicate value` (a detail when the Go code sets one)."""
        self.append(FieldError("FieldValueDuplicate", field, value, detail))

    def not_supported(self, field: str, value: Any, supported: Iterable[str], *,
                      ordered: bool = False) -> None:
        """Record `Unsupported value` with the supported values, sorted (as from a `sets.List`)
        unless ``ordered`` (a literal `[]string{...}` in the Go source keeps its order)."""
        values = tuple(supported) if ordered else tuple(sorted(supported))
        self.append(FieldError("FieldValueNotSupported", field, value, supported=values))

    def not_found(self, field: str, value: Any) -> None:
        """Record `Not found`."""
        self.append(FieldError("FieldValueNotFound", field, value))

    def forbidden(self, field: str, detail: str) -> None:
        """Record `Forbidden`."""
        self.append(FieldError("FieldValueForbidden", field, None, detail))

    def too_long(self, field: str, detail: str) -> None:
        """Record `Too long`."""
        self.append(FieldError("FieldValueTooLong", field, None, detail))
