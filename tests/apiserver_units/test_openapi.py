"""`/openapi/v3`: what kubectl apply's validation and kubectl explain look for, and strict field
validation against the same official schemas."""

from __future__ import annotations

import json

import pytest

from sandbox.apiserver.openapi import openapi_v3_document, openapi_v3_document_bytes, openapi_v3_index
from sandbox.apiserver.resources import RESOURCES, Resource
from sandbox.apiserver.schemas import decode_error, unknown_fields

# metrics.k8s.io's computed, read-only resources have no official schema to publish.
PUBLISHED = [r for r in RESOURCES if r.group != "metrics.k8s.io"]


def gv_path(res: Resource) -> str:
    return f"apis/{res.group}/{res.version}" if res.group else f"api/{res.version}"


def test_index_lists_every_served_group_version() -> None:
    index = openapi_v3_index()
    assert set(index["paths"]) == {gv_path(r) for r in PUBLISHED}
    for path, entry in index["paths"].items():
        url = entry["serverRelativeURL"]
        assert url.startswith(f"/openapi/v3/{path}?hash=")
        assert len(url.split("hash=")[1]) == 128
    assert openapi_v3_document("apis/nope/v1") is None


def supports_field_validation(doc: dict, gvk: dict) -> bool:
    """kubectl's `supportsQueryParamV3`: a PATCH operation tagged with the GVK that takes the
    `fieldValidation` query parameter (otherwise plain `kubectl apply` refuses to run)."""
    for item in doc["paths"].values():
        op = item.get("patch")
        if not op or op.get("x-kubernetes-group-version-kind") != gvk:
            continue
        return any(p["name"] == "fieldValidation" and p["in"] == "query" for p in op["parameters"])
    return False


@pytest.mark.parametrize("res", [r for r in PUBLISHED if "patch" in r.verbs], ids=lambda r: r.plural)
def test_kubectl_apply_finds_field_validation_for_every_kind(res: Resource) -> None:
    doc = openapi_v3_document(gv_path(res))
    assert doc is not None
    gvk = {"group": res.group, "kind": res.kind, "version": res.version}
    assert supports_field_validation(doc, gvk)
    schemas = doc["components"]["schemas"]
    tagged = [s for s in schemas.values() if gvk in s.get("x-kubernetes-group-version-kind", [])]
    assert len(tagged) == 1
    assert tagged[0]["properties"]["metadata"] == {
        "allOf": [{"$ref": "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"}],
        "description": tagged[0]["properties"]["metadata"]["description"],
    }


def refs(node: object) -> list[str]:
    if isinstance(node, dict):
        own = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return own + [r for v in node.values() for r in refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in refs(v)]
    return []


@pytest.mark.parametrize("path", sorted(openapi_v3_index()["paths"]))
def test_documents_are_self_contained_openapi_3(path: str) -> None:
    doc = json.loads(openapi_v3_document_bytes(path) or b"null")
    assert doc["openapi"].startswith("3.")
    schemas = doc["components"]["schemas"]
    for ref in refs(doc):
        assert ref.startswith("#/components/schemas/")
        assert ref.removeprefix("#/components/schemas/") in schemas, ref
    for schema in schemas.values():
        for prop in schema.get("properties", {}).values():
            assert not isinstance(prop.get("type"), list)
    port = schemas["io.k8s.apimachinery.pkg.util.intstr.IntOrString"] if path == "api/v1" else None
    if port is not None:
        assert port["format"] == "int-or-string"
        containers = schemas["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"]
        assert containers["x-kubernetes-patch-merge-key"] == "name"
        assert containers["items"] == {"$ref": "#/components/schemas/io.k8s.api.core.v1.Container"}


def test_documents_are_computed_once() -> None:
    assert openapi_v3_document_bytes("apis/apps/v1") is openapi_v3_document_bytes("/apis/apps/v1/")


def test_unknown_fields_for_strict_field_validation() -> None:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "labels": {"any": "label"}, "colour": "red"},
        "spec": {
            "containerz": [],
            "containers": [{"name": "a", "image": "x", "ports": [{"containerPort": 1, "x": 1}]}],
        },
    }
    fields = unknown_fields("pods", pod)
    assert fields == ["metadata.colour", "spec.containerz", "spec.containers[0].ports[0].x"]
    assert (
        unknown_fields("deployments", {"spec": {"template": {"spec": {"containers": [{"name": "a"}]}}}}) == []
    )


@pytest.mark.parametrize(
    ("plural", "obj", "message"),
    [
        (
            "pods",
            {"spec": "x"},
            "json: cannot unmarshal string into Go struct field Pod.spec of type v1.PodSpec",
        ),
        (
            "pods",
            {"spec": {"containers": {"name": "a"}}},
            "json: cannot unmarshal object into Go struct field PodSpec.spec.containers "
            "of type []v1.Container",
        ),
        (
            "deployments",
            {"spec": {"replicas": "3"}},
            "json: cannot unmarshal string into Go struct field DeploymentSpec.spec.replicas of type int32",
        ),
        (
            "deployments",
            {"spec": {"replicas": 2**31}},
            "json: cannot unmarshal number 2147483648 into Go struct field DeploymentSpec.spec.replicas "
            "of type int32",
        ),
        (
            "events",
            {"lastTimestamp": "yesterday"},
            'parsing time "yesterday" as "2006-01-02T15:04:05Z07:00": cannot parse "yesterday" as "2006"',
        ),
    ],
)
def test_decode_errors_like_go(plural: str, obj: dict, message: str) -> None:
    error = decode_error(plural, obj)
    assert error is not None
    assert error.endswith(message)
    kind = {"pods": "Pod", "deployments": "Deployment", "events": "Event"}[plural]
    assert error.startswith(f'{kind} in version "v1" cannot be handled as a {kind}: ')


def test_well_typed_objects_decode() -> None:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "labels": {"a": "b"}, "creationTimestamp": "2026-01-01T00:00:00Z"},
        "spec": {
            "containers": [
                {
                    "name": "a",
                    "image": "x",
                    "ports": [{"containerPort": 80}],
                    "resources": {"limits": {"cpu": 1, "memory": "1Gi"}},
                    "readinessProbe": {"httpGet": {"port": "http"}},
                }
            ],
            "terminationGracePeriodSeconds": None,
        },
    }
    assert decode_error("pods", pod) is None
    assert decode_error("services", {"spec": {"ports": [{"port": 80, "targetPort": "http"}]}}) is None
