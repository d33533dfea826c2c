"""The official Kubernetes 1.37 type schemas, loaded once, for the modules that need type knowledge.

Strategic merge patch needs each list's merge key and patch strategy, and `/openapi/v3` needs
the component schemas; both come from the same source of truth Kubernetes generates from its Go
types. The `kubernetes-validate` package ships them (as JSON Schema `$defs` with the
`x-kubernetes-*` extensions intact), so the sandbox reads them from there instead of keeping a
hand-written copy that could drift.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

SCHEMA_VERSION = "v1.37.0-local"

# Bodies that are not a served kind but are patched or published (the `/scale` subresource).
EXTRA_DEFINITIONS: dict[str, str] = {"scale": "io.k8s.api.autoscaling.v1.Scale"}


def root_definition(plural: str) -> str | None:
    """The OpenAPI definition of the objects of ``plural`` (from its kind's `Resource` entry)."""
    # The kind modules import this one, so the registry of kinds is looked up at call time.
    from sandbox.apiserver.resources import for_plural

    strategy = for_plural(plural)
    return strategy.resource.definition if strategy is not None else EXTRA_DEFINITIONS.get(plural)


@cache
def definitions() -> dict[str, dict[str, Any]]:
    """Every definition by its OpenAPI name (e.g. `io.k8s.api.core.v1.Pod`)."""
    base = resources.files("kubernetes_validate") / "kubernetes-json-schema" / SCHEMA_VERSION
    path = base / "_definitions.json"
    return json.loads(path.read_text())["$defs"]


def ref_name(node: dict[str, Any]) -> str | None:
    """The definition a `$ref` node points to, or None."""
    ref = node.get("$ref")
    if not isinstance(ref, str):
        return None
    return ref.rsplit("/", 1)[-1]


# id(node) -> (node, resolved): schema nodes live as long as the process, so each is resolved once.
_resolved: dict[int, tuple[dict[str, Any], dict[str, Any]]] = {}


def resolve(node: dict[str, Any] | None) -> dict[str, Any]:
    """Follow a schema node's `$ref` (keeping the node's own keys, such as a patch strategy).
    Only for nodes of the loaded schemas (`root_schema`, `definitions`): results are memoized."""
    if not node:
        return {}
    hit = _resolved.get(id(node))
    if hit is not None and hit[0] is node:
        return hit[1]
    name = ref_name(node)
    result = node if name is None else {**definitions().get(name, {}),
                                        **{k: v for k, v in node.items() if k != "$ref"}}
    _resolved[id(node)] = (node, result)
    return result


@cache
def root_schema(plural: str) -> dict[str, Any]:
    """The resolved schema of the objects of ``plural`` (empty for an unknown plural)."""
    root = root_definition(plural)
    return resolve(definitions().get(root, {})) if root else {}


def unknown_fields(plural: str, obj: Any) -> list[str]:
    """Paths of the fields in ``obj`` its schema does not declare (`spec.containers[0].foo`), in
    document order: what `fieldValidation=Strict` rejects and `Warn` reports."""
    root = root_definition(plural)
    return unknown_fields_of(root, obj) if root else []


def unknown_fields_of(definition: str, obj: Any) -> list[str]:
    """`unknown_fields` against a named definition (a kind served at another version)."""
    schema = resolve(definitions().get(definition, {}))
    if not schema:
        return []
    found: list[str] = []
    _walk_unknown(obj, schema, "", found)
    return found


def _walk_unknown(value: Any, schema: dict[str, Any], path: str, found: list[str]) -> None:
    if isinstance(value, dict):
        props = schema.get("properties")
        extra = schema.get("additionalProperties")
        for key, item in value.items():
            child = f"{path}.{key}" if path else str(key)
            if isinstance(props, dict) and key in props:
                _walk_unknown(item, resolve(props[key]), child, found)
            elif isinstance(extra, dict):
                _walk_unknown(item, resolve(extra), child, found)
            elif isinstance(props, dict):
                found.append(child)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        items = resolve(schema["items"])
        for i, item in enumerate(value):
            _walk_unknown(item, items, f"{path}[{i}]", found)


# --- decoding ------------------------------------------------------------------------------------

_INT_RANGES = {"int32": (-(2**31), 2**31 - 1), "int64": (-(2**63), 2**63 - 1)}
_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")


def decode_error(plural: str, obj: Any) -> str | None:
    """Why the real server could not decode ``obj`` into its Go type (400 BadRequest), or None.

    A value of the wrong JSON type (`"replicas": "3"`, `"containers": {}`), an int32 out of range
    or a malformed timestamp never reaches validation on a real server; storing it would hand
    clients objects their strict models reject. The message follows Go's encoding/json."""
    root = root_definition(plural)
    return None if root is None else decode_error_of(root, obj)


def decode_error_of(root: str, obj: Any) -> str | None:
    """`decode_error` for a body of the definition ``root`` (a subresource's TokenRequest...)."""
    if not isinstance(obj, dict) or root not in definitions():
        return None
    error = _decode(obj, definitions()[root], parent=root.rsplit(".", 1)[-1], path="")
    if error is None:
        return None
    group_version = root.rsplit(".", 2)[-2]
    kind = root.rsplit(".", 1)[-1]
    return f'{kind} in version "{group_version}" cannot be handled as a {kind}: {error}'


def _types(schema: dict[str, Any]) -> set[str]:
    declared = schema.get("type")
    if isinstance(declared, str):
        return {declared}
    if isinstance(declared, list):
        return {t for t in declared if t != "null"}
    if isinstance(schema.get("oneOf"), list):
        return {t for option in schema["oneOf"] for t in _types(option)}
    return set()


def _json_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "array"
    if isinstance(value, str):
        return "string"
    return f"number {value}"


def _go_type(schema: dict[str, Any], name: str | None) -> str:
    if name:
        return f"{name.rsplit('.', 2)[-2]}.{name.rsplit('.', 1)[-1]}"
    types = _types(schema)
    if "array" in types:
        items = schema.get("items") or {}
        return "[]" + _go_type(resolve(items), ref_name(items))
    if "object" in types:
        extra = schema.get("additionalProperties")
        value = _go_type(resolve(extra), ref_name(extra)) if isinstance(extra, dict) else "string"
        return "map[string]" + value
    if "integer" in types:
        return str(schema.get("format") or "int64")
    return {"boolean": "bool", "number": "float64"}.get(next(iter(types), "string"), "string")


@dataclass(frozen=True)
class _Node:
    """What decoding needs to know about one schema node, computed once per node."""

    name: str | None
    schema: dict[str, Any]
    accepts: tuple[type, ...]
    integer: bool
    date_time: bool
    byte: bool
    props: dict[str, Any]
    extra: dict[str, Any] | None
    items: dict[str, Any] | None


_PYTHON_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,), "array": (list,), "string": (str,), "integer": (int,), "number": (int, float),
    "boolean": (bool,),
}
_nodes: dict[int, tuple[dict[str, Any], _Node]] = {}


def _node(node: dict[str, Any]) -> _Node:
    hit = _nodes.get(id(node))
    if hit is not None and hit[0] is node:
        return hit[1]
    schema = resolve(node)
    types = _types(schema)
    props = schema.get("properties")
    extra = schema.get("additionalProperties")
    items = schema.get("items")
    info = _Node(name=ref_name(node), schema=schema,
                 accepts=tuple(t for name in types for t in _PYTHON_TYPES.get(name, ())),
                 integer="integer" in types, date_time=schema.get("format") == "date-time",
                 byte=schema.get("format") == "byte",
                 props=props if isinstance(props, dict) else {},
                 extra=extra if isinstance(extra, dict) else None,
                 items=items if isinstance(items, dict) else None)
    _nodes[id(node)] = (node, info)
    return info


def _decode(value: Any, node: dict[str, Any], *, parent: str, path: str) -> str | None:
    """The first decoding error in ``value`` (Go stops at the first one). ``node`` is the schema
    node of the field (maybe a `$ref`), ``parent`` the Go struct the field belongs to."""
    if value is None:
        return None
    info = _node(node)
    if info.accepts and (not isinstance(value, info.accepts) or (isinstance(value, bool) and bool not in
                                                                 info.accepts)):
        where = f"Go struct field {parent}.{path}" if path else "Go value"
        return (f"json: cannot unmarshal {_json_kind(value)} into {where} of type "
                f"{_go_type(info.schema, info.name)}")
    if info.integer and isinstance(value, int) and not isinstance(value, bool):
        low, high = _INT_RANGES.get(str(info.schema.get("format")), _INT_RANGES["int64"])
        if not low <= value <= high:
            where = f"Go struct field {parent}.{path}" if path else "Go value"
            go_type = _go_type(info.schema, info.name)
            return f"json: cannot unmarshal number {value} into {where} of type {go_type}"
    if info.byte and isinstance(value, str):
        try:
            go_base64_decode(value)
        except ValueError as exc:
            return str(exc)
    if info.date_time and isinstance(value, str) and not _RFC3339.match(value):
        return f'parsing time "{value}" as "2006-01-02T15:04:05Z07:00": cannot parse "{value}" as "2006"'
    if isinstance(value, dict):
        owner = info.name.rsplit(".", 1)[-1] if info.name else parent
        for key, item in value.items():
            child = info.props.get(key) or info.extra
            if child is not None:
                error = _decode(item, child, parent=owner, path=f"{path}.{key}" if path else str(key))
                if error:
                    return error
    elif isinstance(value, list) and info.items is not None:
        owner = info.name.rsplit(".", 1)[-1] if info.name else parent
        for item in value:
            error = _decode(item, info.items, parent=owner, path=path)
            if error:
                return error
    return None


def normalize_nulls(plural: str, obj: Any) -> None:
    """Do to JSON nulls what decoding into the Go types does, in place: a null field is absent
    (a nil pointer, omitted when encoded again), a null list item or map value is its type's zero
    value (`[null]` in `finalizers` is `[""]`); a `[]byte` field (base64, like a Secret's data)
    is encoded again in canonical form (line breaks dropped), as Go re-encodes what it decoded;
    a value that does not decode is left for `decode_error` to report. Stored objects then hold
    no null a client's strict model would refuse, exactly like a real server's."""
    root = root_definition(plural)
    if root is not None and isinstance(obj, dict):
        _nulls(obj, definitions()[root])


def _nulls(value: Any, node: dict[str, Any]) -> None:
    info = _node(node)
    if isinstance(value, dict):
        if info.props:
            for key in [k for k, v in value.items() if v is None]:
                del value[key]
            for key, item in value.items():
                child = info.props.get(key)
                if child is not None:
                    _nulls(item, child)
                    value[key] = _canonical(item, child)
        elif info.extra is not None:
            for key, item in value.items():
                if item is None:
                    value[key] = _zero(info.extra)
                else:
                    _nulls(item, info.extra)
                    value[key] = _canonical(item, info.extra)
    elif isinstance(value, list) and info.items is not None:
        for i, item in enumerate(value):
            if item is None:
                value[i] = _zero(info.items)
            else:
                _nulls(item, info.items)


def _canonical(value: Any, node: dict[str, Any]) -> Any:
    """A base64 `[]byte` value as Go encodes it again; any other value unchanged."""
    if isinstance(value, str) and _node(node).byte:
        try:
            return base64.b64encode(go_base64_decode(value)).decode()
        except ValueError:
            return value
    return value


_B64 = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")


def go_base64_decode(text: str) -> bytes:
    """Decode standard, padded base64 exactly as Go's `base64.StdEncoding` (what encoding/json
    uses for `[]byte`): line breaks are skipped, anything else off the alphabet, missing or
    misplaced padding and trailing data raise ValueError with Go's message, `illegal base64
    data at input byte N` (N counted in the original text)."""
    src = text.encode("utf-8", "surrogatepass")
    si, n, out = 0, len(src), bytearray()
    while si < n:
        quantum: list[int] = []
        while len(quantum) < 4:
            if si == n:
                if not quantum:
                    return bytes(out)
                raise ValueError(f"illegal base64 data at input byte {si - len(quantum)}")
            char = src[si]
            si += 1
            if char in _B64:
                quantum.append(char)
                continue
            if char in (0x0A, 0x0D):
                continue
            if char != 0x3D or len(quantum) < 2:
                raise ValueError(f"illegal base64 data at input byte {si - 1}")
            if len(quantum) == 2:
                while si < n and src[si] in (0x0A, 0x0D):
                    si += 1
                if si == n:
                    raise ValueError(f"illegal base64 data at input byte {n}")
                if src[si] != 0x3D:
                    raise ValueError(f"illegal base64 data at input byte {si - 1}")
                si += 1
            while si < n and src[si] in (0x0A, 0x0D):
                si += 1
            if si < n:
                raise ValueError(f"illegal base64 data at input byte {si}")
            break
        chunk = bytes(quantum)
        try:
            out += binascii.a2b_base64(chunk + b"=" * (-len(chunk) % 4))
        except binascii.Error:
            raise ValueError(f"illegal base64 data at input byte {si - 1}") from None
    return bytes(out)


def _zero(node: dict[str, Any]) -> Any:
    """The JSON form of a Go zero value of the type of ``node``."""
    info = _node(node)
    if info.name == "io.k8s.apimachinery.pkg.api.resource.Quantity":
        return "0"
    for kind, zero in ((dict, {}), (list, []), (str, ""), (bool, False), (int, 0), (float, 0)):
        if kind in info.accepts:
            return zero
    return {}
