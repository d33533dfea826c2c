"""Label and field selectors, parsed and matched the way the Kubernetes API server does.

Label selectors support the equality-based (`a=b`, `a==b`, `a!=b`) and set-based
(`a in (x,y)`, `a notin (x)`, `a`, `!a`, `a>1`, `a<1`) forms. Field selectors support
`=`, `==` and `!=` on the fields a resource declares (plus metadata.name/namespace); any
other field is a 400 error, as on a real server.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from .strategy import Resource, field_value

_NAME = r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?"
_PREFIX = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*"
LABEL_KEY_RE = re.compile(rf"^({_PREFIX}/)?{_NAME}$")
LABEL_VALUE_RE = re.compile(rf"^({_NAME})?$")


class SelectorError(ValueError):
    """A selector that cannot be parsed or uses an unsupported field (a 400 BadRequest)."""


@dataclass(frozen=True)
class Requirement:
    """One label requirement: key, operator and values."""

    key: str
    op: str
    values: tuple[str, ...] = ()

    def matches(self, labels: dict[str, str]) -> bool:
        """Whether a label map satisfies this requirement."""
        present = self.key in labels
        value = labels.get(self.key)
        if self.op in ("=", "==", "in"):
            return present and value in self.values
        if self.op in ("!=", "notin"):
            return not present or value not in self.values
        if self.op == "exists":
            return present
        if self.op == "!":
            return not present
        if not present:
            return False
        try:
            number, bound = int(value or ""), int(self.values[0])
        except ValueError:
            return False
        return number > bound if self.op == ">" else number < bound


def _split_top_level(text: str) -> list[str]:
    """Split on commas that are not inside parentheses."""
    parts: list[str] = []
    current: list[str] = []
    depth = 0
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth < 0:
                raise SelectorError(f"unable to parse requirement: unexpected ')' in {text!r}")
        if char == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    if depth:
        raise SelectorError(f"unable to parse requirement: unclosed '(' in {text!r}")
    parts.append("".join(current))
    return parts


def _check_key(key: str) -> str:
    """Validate a label key, raising SelectorError with the real message shape."""
    if not key or len(key) > 317 or not LABEL_KEY_RE.match(key):
        raise SelectorError(f'unable to parse requirement: Invalid value: "{key}": name part must consist of '
                            "alphanumeric characters, '-', '_' or '.', and must start and end with an "
                            "alphanumeric character")
    return key


def _check_value(value: str) -> str:
    """Validate a label value."""
    if len(value) > 63 or not LABEL_VALUE_RE.match(value):
        raise SelectorError(f'unable to parse requirement: values[0]: Invalid value: "{value}": a valid '
                            "label must be an empty string or consist of alphanumeric characters, '-', '_' "
                            "or '.', and must start and end with an alphanumeric character")
    return value


_SET_RE = re.compile(r"^\s*(\S+?)\s+(in|notin)\s*\((.*)\)\s*$")
_CMP_RE = re.compile(r"^\s*([^=!<>\s]+)\s*(==|=|!=|>|<)\s*(.*?)\s*$")


def parse_label_selector(text: str | None) -> tuple[Requirement, ...]:
    """Parse a label selector string; empty or None selects everything."""
    if text is None or not text.strip():
        return ()
    requirements = []
    for raw in _split_top_level(text):
        part = raw.strip()
        if not part:
            raise SelectorError(f"unable to parse requirement: found '', expected: identifier in {text!r}")
        if match := _SET_RE.match(part):
            key, op, inner = match.groups()
            # "()" is the set holding the empty value, as apimachinery's parseValues reads it.
            values = tuple(_check_value(v.strip()) for v in inner.split(","))
            requirements.append(Requirement(_check_key(key), op, values))
        elif part.startswith("!"):
            requirements.append(Requirement(_check_key(part[1:].strip()), "!"))
        elif match := _CMP_RE.match(part):
            key, op, value = match.groups()
            if op in (">", "<"):
                try:
                    int(value)
                except ValueError:
                    raise SelectorError(f"unable to parse requirement: for 'Gt', 'Lt' operators, the value "
                                        f"must be an integer: {value!r}") from None
            else:
                _check_value(value)
            requirements.append(Requirement(_check_key(key), op, (value,)))
        elif re.fullmatch(r"\S+", part):
            requirements.append(Requirement(_check_key(part), "exists"))
        else:
            raise SelectorError(f"unable to parse requirement: {part!r} is not a valid label selector term")
    return tuple(requirements)


def labels_match(requirements: Iterable[Requirement], labels: dict[str, str] | None) -> bool:
    """Whether the labels satisfy every requirement."""
    labels = labels or {}
    return all(req.matches(labels) for req in requirements)


def selector_from_match_labels(selector: dict | None) -> str:
    """Render a LabelSelector object (matchLabels + matchExpressions) as selector text."""
    if not selector:
        return ""
    parts = [f"{k}={v}" for k, v in sorted((selector.get("matchLabels") or {}).items())]
    for expr in selector.get("matchExpressions") or []:
        op, key, values = expr.get("operator"), expr.get("key", ""), expr.get("values") or []
        if op == "In":
            parts.append(f"{key} in ({','.join(sorted(values))})")
        elif op == "NotIn":
            parts.append(f"{key} notin ({','.join(sorted(values))})")
        elif op == "Exists":
            parts.append(key)
        elif op == "DoesNotExist":
            parts.append(f"!{key}")
    return ",".join(parts)


@dataclass(frozen=True)
class FieldTerm:
    """One field requirement: `field=value` or `field!=value`."""

    field: str
    value: str
    negate: bool


def _split_escaped(text: str, sep: str) -> list[str]:
    """Split on `sep` characters not escaped with a backslash."""
    parts, current, escaped = [], [], False
    for char in text:
        if escaped:
            current.append(char)
            escaped = False
        elif char == "\\":
            current.append(char)
            escaped = True
        elif char == sep:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return parts


def _unescape(value: str) -> str:
    """Undo field selector escaping (`\\,` `\\=` `\\\\`)."""
    return re.sub(r"\\(.)", r"\1", value)


def parse_field_selector(text: str | None, resource: Resource) -> tuple[FieldTerm, ...]:
    """Parse a field selector and check every field is supported for the resource."""
    if text is None or not text.strip():
        return ()
    supported = {"metadata.name", "metadata.namespace", *resource.field_selectors}
    terms = []
    for raw in _split_escaped(text, ","):
        part = raw.strip()
        match = re.match(r"^([^=!]+?)\s*(!=|==|=)(.*)$", part)
        if not match:
            raise SelectorError(f"invalid selector: '{text}'; can't understand '{part}'")
        name, op, value = match.groups()
        name = name.strip()
        if name not in supported:
            raise SelectorError(f'field label not supported: {name}')
        terms.append(FieldTerm(name, _unescape(value), op == "!="))
    return tuple(terms)


def fields_match(terms: Iterable[FieldTerm], obj: dict,
                 value_of: Callable[[dict, str], str] = field_value) -> bool:
    """Whether an object satisfies every field term; ``value_of`` is the kind's field-selector
    predicate (`Strategy.field_value`)."""
    for term in terms:
        equal = value_of(obj, term.field) == term.value
        if equal == term.negate:
            return False
    return True


def make_filter(labels: tuple[Requirement, ...], fields: tuple[FieldTerm, ...],
                value_of: Callable[[dict, str], str] = field_value) -> Callable[[dict], bool]:
    """One predicate for both selectors (fast path when neither is set)."""
    if not labels and not fields:
        return lambda obj: True

    def predicate(obj: dict) -> bool:
        return labels_match(labels, obj.get("metadata", {}).get("labels")) and \
            fields_match(fields, obj, value_of)

    return predicate
