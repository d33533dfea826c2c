"""`/openapi/v2`: the Swagger 2.0 document kubectl before 1.29 reads (as protobuf), and 1.37 still
reads for what `/openapi/v3` does not cover (the `v1/List` of `kubectl apply -f list.yaml`).

kube-apiserver publishes one document for every served group-version. It is rendered here from
the same generator as `/openapi/v3` (`openapi.group_version_specs`: the registry's paths and the
official schemas), the v3 operations rewritten into Swagger 2.0's shape: query and path
parameters flattened, a request body as an `in: body` parameter, `consumes`/`produces` from the
media types, `#/definitions/` references. Content negotiation follows kube-openapi's handler
(`pkg/handler/handler.go`): JSON for `application/json`, gnostic's OpenAPIv2 `Document` message
(`openapi_proto.py`) for `application/com.github.proto-openapi.spec.v2@v1.0+protobuf` (and the
`.v1.0+protobuf` spelling), 406 otherwise; the ETag is the SHA-512 of the JSON for both (the
response varies on Accept), and `If-None-Match` answers 304.
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from sandbox.apiserver import openapi, openapi_proto

PROTOBUF_TYPES = ("application/com.github.proto-openapi.spec.v2@v1.0+protobuf",
                  "application/com.github.proto-openapi.spec.v2.v1.0+protobuf")
PROTOBUF_CONTENT_TYPE = PROTOBUF_TYPES[1]
METHODS = ("get", "put", "post", "delete", "options", "head", "patch")


def _v2_ref(node: Any) -> Any:
    """Rewrite `#/components/schemas/` references of a v3 fragment to `#/definitions/`."""
    if isinstance(node, list):
        return [_v2_ref(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: _v2_ref(v) for k, v in node.items()}
    ref = out.get("$ref")
    if isinstance(ref, str) and ref.startswith(openapi.REF_PREFIX):
        out["$ref"] = openapi.V2_REF_PREFIX + ref[len(openapi.REF_PREFIX):]
    return out


def _parameter(param: dict[str, Any]) -> dict[str, Any]:
    """A v3 query/path parameter flattened: its schema's type beside its name."""
    out = {**param.get("schema", {})}
    out.update({k: v for k, v in param.items() if k != "schema"})
    return out


def _operation(op: dict[str, Any]) -> dict[str, Any]:
    """One v3 operation in Swagger 2.0's shape (kube-apiserver's field set)."""
    out: dict[str, Any] = {"description": op["description"]}
    body = op.get("requestBody")
    if body is not None:
        out["consumes"] = list(body["content"])
    produces: list[str] = []
    responses: dict[str, Any] = {}
    for code, response in op["responses"].items():
        rendered: dict[str, Any] = {"description": response["description"]}
        for media, content in (response.get("content") or {}).items():
            if media not in produces:
                produces.append(media)
            rendered.setdefault("schema", _v2_ref(content["schema"]))
        responses[code] = rendered
    if produces:
        out["produces"] = produces
    out["schemes"] = ["https"]
    out["tags"] = op["tags"]
    out["operationId"] = op["operationId"]
    parameters = [_parameter(p) for p in op.get("parameters", [])]
    if body is not None:
        schema = next(iter(body["content"].values()))["schema"]
        parameters.insert(0, {"name": "body", "in": "body", "required": True, "schema": _v2_ref(schema)})
    if parameters:
        out["parameters"] = parameters
    out["responses"] = responses
    out.update({k: v for k, v in op.items() if k.startswith("x-")})
    return out


def _path_item(item: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {m: _operation(item[m]) for m in METHODS if m in item}
    if item.get("parameters"):
        out["parameters"] = [_parameter(p) for p in item["parameters"]]
    return out


@cache
def document() -> dict[str, Any]:
    """The whole Swagger 2.0 document (paths and definitions sorted, as Go marshals maps)."""
    paths: dict[str, Any] = {}
    names: set[str] = set()
    for gv_paths, gv_names in openapi.group_version_specs().values():
        paths.update({path: _path_item(item) for path, item in gv_paths.items()})
        names.update(gv_names)
    return {
        "swagger": "2.0",
        "info": {"title": "Kubernetes", "version": "v1.37.1"},
        "paths": dict(sorted(paths.items())),
        "definitions": {name: openapi.component(name, v2=True) for name in sorted(names)},
        "securityDefinitions": openapi.SECURITY_SCHEMES,
        "security": [{"BearerToken": []}],
    }


@cache
def json_body() -> tuple[str, bytes]:
    """The JSON rendering and its ETag, computed once."""
    body = json.dumps(document(), separators=(",", ":")).encode()
    return openapi.digest(body), body


@cache
def protobuf_body() -> bytes:
    """The gnostic protobuf rendering (same ETag as the JSON: the response varies on Accept)."""
    return openapi_proto.encode_document(document())


def negotiate(accept: str | None) -> str | None:
    """The content type to answer an Accept header with (kube-openapi's order), or None (406)."""
    offered = [(PROTOBUF_CONTENT_TYPE, t) for t in PROTOBUF_TYPES]
    offered.append(("application/json", "application/json"))
    clauses = []
    for position, media in enumerate((accept or "*/*").split(",")):
        parts = [p.strip() for p in media.split(";")]
        quality = 1.0
        for param in parts[1:]:
            key, _, value = param.partition("=")
            if key.strip() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if parts[0] and quality > 0:
            clauses.append((-quality, position, parts[0].lower()))
    for _, _, mime in sorted(clauses):
        kind, _, sub = mime.partition("/")
        for returned, media in (offered[2], *offered[:2]):
            want_kind, _, want_sub = media.partition("/")
            if kind in (want_kind, "*") and sub in (want_sub, "*"):
                return returned
    return None
