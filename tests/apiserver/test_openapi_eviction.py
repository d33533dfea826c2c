"""`kubectl get --raw /openapi/v3/api/v1` from the shared sandbox publishes the Eviction
subresource's POST, so clients generated from the document can evict pods."""

from __future__ import annotations

import json

import pytest

from tests.conftest import Sandbox

from .conftest import kubectl

pytestmark = pytest.mark.sandbox


def test_openapi_v3_publishes_pod_eviction(sandbox: Sandbox) -> None:
    index = json.loads(kubectl(sandbox, "get", "--raw", "/openapi/v3").stdout)
    url = index["paths"]["api/v1"]["serverRelativeURL"]
    doc = json.loads(kubectl(sandbox, "get", "--raw", url).stdout)
    post = doc["paths"]["/api/v1/namespaces/{namespace}/pods/{name}/eviction"]["post"]
    assert post["operationId"] == "createCoreV1NamespacedPodEviction"
    assert post["x-kubernetes-group-version-kind"] == {"group": "policy", "kind": "Eviction", "version": "v1"}
    assert post["requestBody"]["content"]["*/*"]["schema"] == {
        "$ref": "#/components/schemas/io.k8s.api.policy.v1.Eviction"}
    assert "io.k8s.api.policy.v1.Eviction" in doc["components"]["schemas"]
