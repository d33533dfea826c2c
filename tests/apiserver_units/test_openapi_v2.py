"""`/openapi/v2`: the Swagger 2.0 document (from the same generator as `/openapi/v3`) and its
gnostic protobuf rendering, read back with a plain protobuf wire-format reader."""

from __future__ import annotations

import json
import struct
from typing import Any

import pytest

from sandbox.apiserver import openapi_v2
from sandbox.apiserver.openapi import openapi_v3_document
from sandbox.apiserver.resources import RESOURCES

PUBLISHED = [r for r in RESOURCES if r.group != "metrics.k8s.io"]


def fields(data: bytes) -> list[tuple[int, Any]]:
    """One protobuf message's fields, in order: (number, bytes of a length-delimited field or an int)."""
    out: list[tuple[int, Any]] = []
    pos = 0

    def varint() -> int:
        nonlocal pos
        value = shift = 0
        while True:
            byte = data[pos]
            pos += 1
            value |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                return value

    while pos < len(data):
        key = varint()
        number, wire = key >> 3, key & 7
        if wire == 0:
            out.append((number, varint()))
        elif wire == 1:
            out.append((number, struct.unpack_from("<q", data, pos)[0]))
            pos += 8
        elif wire == 2:
            size = varint()
            out.append((number, data[pos : pos + size]))
            pos += size
        else:
            raise AssertionError(f"unexpected wire type {wire}")
    return out


def named(message: bytes) -> tuple[str, bytes]:
    """A gnostic `Named*` pair: (name, value message)."""
    parts = dict(fields(message))
    name, value = parts[1], parts.get(2, b"")
    assert isinstance(name, bytes) and isinstance(value, bytes)
    return name.decode(), value


def test_swagger_document_has_every_kind_with_its_gvk_and_patch_operation() -> None:
    doc = openapi_v2.document()
    assert doc["swagger"] == "2.0"
    for res in PUBLISHED:
        definition = doc["definitions"][res.definition]
        gvk = {"group": res.group, "kind": res.kind, "version": res.version}
        assert gvk in definition["x-kubernetes-group-version-kind"], res
        assert (
            definition["properties"]["metadata"]["$ref"]
            == "#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
        )
    deployment = doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]
    patch = deployment["patch"]
    assert patch["consumes"] == [
        "application/apply-patch+yaml",
        "application/json-patch+json",
        "application/merge-patch+json",
        "application/strategic-merge-patch+json",
    ]
    assert {
        "name": "body",
        "in": "body",
        "required": True,
        "schema": {"$ref": "#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.Patch"},
    } in patch["parameters"]
    validation = next(p for p in patch["parameters"] if p.get("name") == "fieldValidation")
    assert (validation["in"], validation["type"]) == ("query", "string")  # flattened, no `schema`
    assert patch["responses"]["200"]["schema"] == {"$ref": "#/definitions/io.k8s.api.apps.v1.Deployment"}
    assert doc["definitions"]["io.k8s.apimachinery.pkg.util.intstr.IntOrString"]["format"] == "int-or-string"
    # The same operations as /openapi/v3's document of the group-version.
    v3 = openapi_v3_document("apis/apps/v1")
    assert v3 is not None
    assert (
        deployment["get"]["operationId"]
        == v3["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["get"]["operationId"]
    )


def test_every_reference_resolves() -> None:
    body = openapi_v2.json_body()[1].decode()
    doc = json.loads(body)
    for ref in set(body.split('"$ref":"')[1:]):
        name = ref.split('"', 1)[0]
        assert name.startswith("#/definitions/")
        assert name.removeprefix("#/definitions/") in doc["definitions"], name


def test_protobuf_is_the_gnostic_document_of_the_same_json() -> None:
    doc = openapi_v2.document()
    top = fields(openapi_v2.protobuf_body())
    assert [n for n, _ in top] == [1, 2, 8, 9, 12, 13]  # swagger info paths definitions security ...
    assert dict(top)[1] == b"2.0"
    paths = [named(v) for n, v in fields(dict(top)[8]) if n == 2 and isinstance(v, bytes)]
    assert [name for name, _ in paths] == list(doc["paths"])
    definitions = [named(v) for _, v in fields(dict(top)[9]) if isinstance(v, bytes)]
    assert [name for name, _ in definitions] == list(doc["definitions"])
    deployment = dict(fields(dict(definitions)["io.k8s.api.apps.v1.Deployment"]))
    # Schema: description (4), required (19), type (22, a TypeItem), properties (25), and the GVK as a
    # vendor extension (31) whose Any holds YAML (field 2), as kube-openapi's VendorExtensionToMap reads it.
    assert deployment[4] == doc["definitions"]["io.k8s.api.apps.v1.Deployment"]["description"].encode()
    assert fields(deployment[22]) == [(1, b"object")]
    name, extension = named(deployment[31])
    assert name == "x-kubernetes-group-version-kind"
    assert dict(fields(extension))[2] == b"- group: apps\n  kind: Deployment\n  version: v1\n"


@pytest.mark.parametrize(
    ("accept", "answer"),
    [
        ("application/com.github.proto-openapi.spec.v2@v1.0+protobuf", openapi_v2.PROTOBUF_CONTENT_TYPE),
        ("application/com.github.proto-openapi.spec.v2.v1.0+protobuf", openapi_v2.PROTOBUF_CONTENT_TYPE),
        ("application/json, */*", "application/json"),
        (
            "application/com.github.proto-openapi.spec.v2@v1.0+protobuf;q=0.5, application/json",
            "application/json",
        ),
        (None, "application/json"),
        ("text/html", None),
    ],
)
def test_content_negotiation_like_kube_openapi(accept: str | None, answer: str | None) -> None:
    assert openapi_v2.negotiate(accept) == answer
