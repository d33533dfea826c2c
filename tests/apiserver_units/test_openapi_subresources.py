"""Create-only Pod subresources in `/openapi/v3` (and so `/openapi/v2`) as kube-apiserver
publishes them: `pods/eviction` and `pods/binding`, one POST of their own kind each."""

from __future__ import annotations

import pytest

from sandbox.apiserver.openapi import openapi_v3_document
from sandbox.apiserver.openapi_v2 import document as swagger_document

PODS = "/api/v1/namespaces/{namespace}/pods/{name}"


@pytest.mark.parametrize(
    ("sub", "operation_id", "gvk", "definition"),
    [
        ("eviction", "createCoreV1NamespacedPodEviction",
         {"group": "policy", "kind": "Eviction", "version": "v1"}, "io.k8s.api.policy.v1.Eviction"),
        ("binding", "createCoreV1NamespacedPodBinding", {"group": "", "kind": "Binding", "version": "v1"},
         "io.k8s.api.core.v1.Binding"),
    ],
)
def test_create_subresource_is_one_post(sub: str, operation_id: str, gvk: dict, definition: str) -> None:
    doc = openapi_v3_document("api/v1")
    assert doc is not None
    item = doc["paths"][f"{PODS}/{sub}"]
    assert set(item) == {"post", "parameters"}
    assert [(p["name"], p["in"], p.get("description")) for p in item["parameters"]][:2] == [
        ("name", "path", f"name of the {gvk['kind']}"),
        ("namespace", "path", "object name and auth scope, such as for teams and projects")]
    assert item["parameters"][2]["name"] == "pretty"
    post = item["post"]
    assert post["description"] == f"create {sub} of a Pod"
    assert post["operationId"] == operation_id
    assert post["x-kubernetes-action"] == "post"
    assert post["x-kubernetes-group-version-kind"] == gvk
    assert [p["name"] for p in post["parameters"]] == ["dryRun", "fieldManager", "fieldValidation"]
    ref = {"$ref": f"#/components/schemas/{definition}"}
    assert post["requestBody"] == {"content": {"*/*": {"schema": ref}}, "required": True}
    assert sorted(post["responses"]) == ["200", "201", "202", "401"]
    assert post["responses"]["201"]["content"]["application/json"]["schema"] == ref
    assert definition in doc["components"]["schemas"]
    swagger = swagger_document()
    assert swagger["paths"][f"{PODS}/{sub}"]["post"]["operationId"] == operation_id
