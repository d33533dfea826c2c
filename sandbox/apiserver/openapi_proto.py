"""The Swagger 2.0 document as gnostic's `openapi.v2.Document` protobuf message, what kubectl < 1.29
asks `/openapi/v2` for (`application/com.github.proto-openapi.spec.v2@v1.0+protobuf`).

kube-openapi produces it with `openapi_v2.ParseDocument(json)` + `proto.Marshal`; this is the
same mapping, written against the field numbers of gnostic-models' `openapiv2/OpenAPIv2.proto`:
JSON keys become fields, `x-*` keys `NamedAny` vendor extensions whose `Any.yaml` holds the
value as YAML (what kube-openapi's `VendorExtensionToMap` parses back), maps become repeated
`Named*` pairs, a parameter becomes the `ParametersItem`/`Parameter`/`NonBodyParameter` oneof
its `in` selects, `type` a `TypeItem`, `items` an `ItemsItem`.

Why a small encoder rather than the `protobuf` package with a generated module: only encoding is
needed (the sandbox never parses the document back), the message set is fixed and small, and
the output is computed once per process; a generated module would add a runtime dependency and
~100 kB of generated code to serve one cached response. The wire format is protobuf's:
varints, length-delimited strings and messages, 64-bit doubles; zero values are omitted (proto3).
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

import yaml

Encoder = Callable[[Any], bytes]


# --- wire format ---------------------------------------------------------------------------------


def _varint(value: int) -> bytes:
    if value < 0:
        value += 1 << 64
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _key(number: int, wire: int) -> bytes:
    return _varint(number << 3 | wire)


def _bytes_field(number: int, data: bytes) -> bytes:
    return _key(number, 2) + _varint(len(data)) + data


# A field is (number, kind) where kind is "string", "bool", "int64", "double", "strings" (repeated
# string), or an encoder of a sub-message (a callable); "repeated" wraps an encoder for lists.


def _field(number: int, kind: Any, value: Any) -> bytes:
    if kind == "string":
        return _bytes_field(number, str(value).encode()) if value != "" else b""
    if kind == "bool":
        return _key(number, 0) + b"\x01" if value else b""
    if kind == "int64":
        return _key(number, 0) + _varint(int(value)) if value else b""
    if kind == "double":
        return _key(number, 1) + struct.pack("<d", float(value)) if value else b""
    if kind == "strings":
        return b"".join(_bytes_field(number, str(v).encode()) for v in value)
    if isinstance(kind, tuple) and kind[0] == "repeated":
        return b"".join(_bytes_field(number, kind[1](v)) for v in value)
    return _bytes_field(number, kind(value))


def _message(fields: dict[str, tuple[int, Any]], extensions: int | None = None) -> Encoder:
    """An encoder of a JSON object as a message: its known keys by ``fields``, in field-number
    order as Go's marshaller writes them, then its `x-` keys as vendor extensions (field
    ``extensions``, the last number of every message that has them)."""
    order = sorted(fields.items(), key=lambda item: item[1][0])

    def encode(obj: Any) -> bytes:
        out = b"".join(_field(number, kind, obj[key]) for key, (number, kind) in order
                       if obj.get(key) is not None)
        return out + _extensions(extensions, obj) if extensions is not None else out

    return encode


def _any(value: Any) -> bytes:
    """gnostic's `Any`: the value as YAML text (field 2)."""
    text = yaml.safe_dump(value, default_flow_style=False, sort_keys=False, allow_unicode=True)
    if text.endswith("\n...\n"):
        text = text[:-4]
    return _field(2, "string", text)


def _extensions(number: int, obj: dict[str, Any]) -> bytes:
    return b"".join(_bytes_field(number, _named(key, _any(value)))
                    for key, value in obj.items() if key.startswith("x-"))


def _named(name: str, value: bytes) -> bytes:
    """A `Named*` pair: name (1) and value (2)."""
    return _field(1, "string", name) + _bytes_field(2, value)


def _named_map(encode_value: Encoder) -> Encoder:
    """A map (`Definitions`, `Properties`, ...): repeated `Named*` pairs in field 1."""
    return lambda mapping: b"".join(_bytes_field(1, _named(k, encode_value(v))) for k, v in mapping.items())


# --- messages ------------------------------------------------------------------------------------


def _schema(obj: Any) -> bytes:
    return _SCHEMA(obj)


def _additional_properties(value: Any) -> bytes:
    """`AdditionalPropertiesItem`: a schema (1) or a boolean (2)."""
    if isinstance(value, bool):
        return _key(2, 0) + (b"\x01" if value else b"\x00")
    return _bytes_field(1, _schema(value))


def _type_item(value: Any) -> bytes:
    return _field(1, "strings", value if isinstance(value, list) else [value])


def _items_item(value: Any) -> bytes:
    return b"".join(_bytes_field(1, _schema(v)) for v in (value if isinstance(value, list) else [value]))


_EXTERNAL_DOCS = _message({"description": (1, "string"), "url": (2, "string")}, 3)
_SCHEMA = _message({
    "$ref": (1, "string"), "format": (2, "string"), "title": (3, "string"), "description": (4, "string"),
    "default": (5, _any), "multipleOf": (6, "double"), "maximum": (7, "double"),
    "exclusiveMaximum": (8, "bool"), "minimum": (9, "double"), "exclusiveMinimum": (10, "bool"),
    "maxLength": (11, "int64"), "minLength": (12, "int64"), "pattern": (13, "string"),
    "maxItems": (14, "int64"), "minItems": (15, "int64"), "uniqueItems": (16, "bool"),
    "maxProperties": (17, "int64"), "minProperties": (18, "int64"), "required": (19, "strings"),
    "enum": (20, ("repeated", _any)), "additionalProperties": (21, _additional_properties),
    "type": (22, _type_item), "items": (23, _items_item), "allOf": (24, ("repeated", _schema)),
    "properties": (25, _named_map(_schema)), "discriminator": (26, "string"), "readOnly": (27, "bool"),
    "externalDocs": (29, _EXTERNAL_DOCS), "example": (30, _any),
}, 31)

# Query, path and header parameters share their leading fields; the numbers after `name` differ.
_PRIMITIVE_TAIL = ("type", "format", "items", "collectionFormat", "default", "maximum", "exclusiveMaximum",
                   "minimum", "exclusiveMinimum", "maxLength", "minLength", "pattern", "maxItems",
                   "minItems", "uniqueItems", "enum", "multipleOf")
_PRIMITIVE_KINDS: dict[str, Any] = {
    "type": "string", "format": "string", "collectionFormat": "string", "default": _any,
    "maximum": "double", "exclusiveMaximum": "bool", "minimum": "double", "exclusiveMinimum": "bool",
    "maxLength": "int64", "minLength": "int64", "pattern": "string", "maxItems": "int64",
    "minItems": "int64", "uniqueItems": "bool", "enum": ("repeated", _any), "multipleOf": "double",
}


def _primitives_items(obj: Any) -> bytes:
    return _PRIMITIVES_ITEMS(obj)


_PRIMITIVE_KINDS["items"] = _primitives_items
_PRIMITIVES_ITEMS = _message({k: (i + 1, _PRIMITIVE_KINDS[k]) for i, k in enumerate(_PRIMITIVE_TAIL)}, 18)


def _sub_schema(lead: tuple[str, ...]) -> Encoder:
    """A `*ParameterSubSchema`: required, in, description, name, [allowEmptyValue], then the tail."""
    kinds = {"required": "bool", "in": "string", "description": "string", "name": "string",
             "allowEmptyValue": "bool", **_PRIMITIVE_KINDS}
    keys = (*lead, *_PRIMITIVE_TAIL)
    return _message({k: (i + 1, kinds[k]) for i, k in enumerate(keys)}, len(keys) + 1)


_QUERY = _sub_schema(("required", "in", "description", "name", "allowEmptyValue"))
_PATH = _sub_schema(("required", "in", "description", "name"))
_HEADER = _sub_schema(("required", "in", "description", "name"))
_BODY = _message({"description": (1, "string"), "name": (2, "string"), "in": (3, "string"),
                  "required": (4, "bool"), "schema": (5, _schema)}, 6)


def _parameters_item(param: Any) -> bytes:
    """`ParametersItem`: a `$ref` (2) or a `Parameter` (1): body (1) or non-body (2), whose oneof
    is header (1), formData (2), query (3) or path (4)."""
    if "$ref" in param:
        return _bytes_field(2, _field(1, "string", param["$ref"]))
    where = param.get("in")
    if where == "body":
        parameter = _bytes_field(1, _BODY(param))
    else:
        number, encode = {"header": (1, _HEADER), "query": (3, _QUERY), "path": (4, _PATH)}[where]
        parameter = _bytes_field(2, _bytes_field(number, encode(param)))
    return _bytes_field(1, parameter)


_RESPONSE = _message({"description": (1, "string"), "schema": (2, lambda s: _bytes_field(1, _schema(s)))}, 5)


def _responses(obj: Any) -> bytes:
    """`Responses`: repeated `NamedResponseValue` (1) (a `ResponseValue` holding a `Response`),
    then vendor extensions (2)."""
    codes = b"".join(_bytes_field(1, _named(code, _bytes_field(1, _RESPONSE(response))))
                     for code, response in obj.items() if not code.startswith("x-"))
    return codes + _extensions(2, obj)


_OPERATION = _message({
    "tags": (1, "strings"), "summary": (2, "string"), "description": (3, "string"),
    "externalDocs": (4, _EXTERNAL_DOCS), "operationId": (5, "string"), "produces": (6, "strings"),
    "consumes": (7, "strings"), "parameters": (8, ("repeated", _parameters_item)),
    "responses": (9, _responses), "schemes": (10, "strings"), "deprecated": (11, "bool"),
}, 13)
_PATH_ITEM = _message({
    "$ref": (1, "string"), "get": (2, _OPERATION), "put": (3, _OPERATION), "post": (4, _OPERATION),
    "delete": (5, _OPERATION), "options": (6, _OPERATION), "head": (7, _OPERATION),
    "patch": (8, _OPERATION), "parameters": (9, ("repeated", _parameters_item)),
}, 10)


def _paths(obj: Any) -> bytes:
    """`Paths`: vendor extensions (1), then repeated `NamedPathItem` (2)."""
    return _extensions(1, obj) + b"".join(_bytes_field(2, _named(path, _PATH_ITEM(item)))
                                          for path, item in obj.items() if not path.startswith("x-"))


def _security_definitions(obj: Any) -> bytes:
    """`SecurityDefinitions`: `NamedSecurityDefinitionsItem`s; the API server has one apiKey (2)."""
    api_key = _message({"type": (1, "string"), "name": (2, "string"), "in": (3, "string"),
                        "description": (4, "string")}, 5)
    return b"".join(_bytes_field(1, _named(name, _bytes_field(2, api_key(item))))
                    for name, item in obj.items())


def _security_requirement(obj: Any) -> bytes:
    """`SecurityRequirement`: `NamedStringArray`s (scheme name -> scopes)."""
    return b"".join(_bytes_field(1, _named(name, _field(1, "strings", scopes)))
                    for name, scopes in obj.items())


_INFO = _message({"title": (1, "string"), "version": (2, "string"), "description": (3, "string"),
                  "termsOfService": (4, "string")}, 7)
_DOCUMENT = _message({
    "swagger": (1, "string"), "info": (2, _INFO), "host": (3, "string"), "basePath": (4, "string"),
    "schemes": (5, "strings"), "consumes": (6, "strings"), "produces": (7, "strings"), "paths": (8, _paths),
    "definitions": (9, _named_map(_schema)), "security": (12, ("repeated", _security_requirement)),
    "securityDefinitions": (13, _security_definitions),
}, 16)


def encode_document(document: dict[str, Any]) -> bytes:
    """A Swagger 2.0 document (as `openapi_v2.document()` builds it) as an `openapi.v2.Document`."""
    return _DOCUMENT(document)
