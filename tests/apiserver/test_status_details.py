"""Every error Status carries `details` exactly where kube-apiserver's do (apimachinery's
api/errors): object errors name the object, Invalid lists causes, path and method errors carry
empty details, and BadRequest / Unauthorized carry none. kubectl depends on it: a 404 without
details made `kubectl debug` panic; with them it reports ephemeral containers as disabled."""

from __future__ import annotations

import json

import pytest

from tests.conftest import Sandbox

from .conftest import LocalApi, kubectl

PODS = "/api/v1/namespaces/default/pods"


def pod(name: str) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"containers": [{"name": "main", "image": "lb-demo"}]}}


def test_object_and_path_errors(local_api: LocalApi) -> None:
    cases = [
        (("GET", "/api/v1/nopes"), 404, {}),
        (("GET", f"{PODS}/missing"), 404, {"name": "missing", "kind": "pods"}),
        (("GET", "/apis/apps/v1/namespaces/default/deployments/gone"), 404,
         {"name": "gone", "group": "apps", "kind": "deployments"}),
        (("PUT", PODS), 405, {}),
        (("PATCH", f"{PODS}/web/ephemeralcontainers"), 404, {}),
        (("GET", "/openapi/v3/apis/nope/v1"), 404, {}),
    ]
    local_api.json("POST", PODS, body=pod("web"))
    for (method, path), code, details in cases:
        status, body = local_api.json(method, path, body=b"{}" if method != "GET" else None,
                                      headers={"Content-Type": "application/merge-patch+json"})
        assert (status, body["code"], body["status"]) == (code, code, "Failure"), path
        assert body["details"] == details, path
    status, dup = local_api.json("POST", PODS, body=pod("web"))
    assert status == 409 and dup["details"] == {"name": "web", "kind": "pods"}
    status, stale = local_api.json("PUT", f"{PODS}/web", body={**pod("web"), "metadata": {
        "name": "web", "resourceVersion": "1"}})
    assert status == 409 and stale["reason"] == "Conflict"
    assert stale["details"] == {"name": "web", "kind": "pods"}


def test_validation_errors_list_their_causes(local_api: LocalApi) -> None:
    status, invalid = local_api.json("POST", PODS, body=pod("Bad_Name"))
    assert status == 422 and invalid["details"]["kind"] == "Pod" and invalid["details"]["name"] == "Bad_Name"
    assert invalid["details"]["causes"][0]["field"] == "metadata.name"
    status, options = local_api.json("PATCH", f"{PODS}/x", body=b"{}",
                                     headers={"Content-Type": "application/apply-patch+yaml"})
    assert status == 422
    assert options["details"] == {"group": "meta.k8s.io", "kind": "PatchOptions", "causes": [
        {"reason": "FieldValueRequired", "message": "Required value: is required for apply patch",
         "field": "fieldManager"}]}
    status, watch = local_api.json("GET", f"{PODS}?watch=1&sendInitialEvents=true")
    assert status == 422 and watch["details"]["kind"] == "ListOptions"
    assert watch["details"]["causes"][0]["field"] == "sendInitialEvents"


def test_terminating_namespace_is_forbidden_with_details(local_api: LocalApi) -> None:
    local_api.json("POST", "/api/v1/namespaces", body={"metadata": {"name": "closing"}})
    local_api.json("POST", "/api/v1/namespaces/closing/configmaps", body={
        "metadata": {"name": "held", "finalizers": ["example.com/hold"]}})
    local_api.json("DELETE", "/api/v1/namespaces/closing")
    status, body = local_api.json("POST", "/api/v1/namespaces/closing/pods", body=pod("late"))
    assert status == 403
    assert body["message"] == ('pods "late" is forbidden: unable to create new content in namespace closing '
                               "because it is being terminated")
    assert body["details"] == {"name": "late", "kind": "pods"}


@pytest.mark.parametrize(("method", "path", "kwargs", "code"), [
    ("GET", PODS, {"token": "wrong"}, 401),
    ("POST", PODS, {"body": b"{not json"}, 400),
])
def test_errors_without_details_have_none(local_api: LocalApi, method: str, path: str, kwargs: dict,
                                          code: int) -> None:
    response = local_api.request(method, path, headers={"Content-Type": "application/json"}, **kwargs)
    body = json.loads(response.data)
    assert response.status == code and "details" not in body


@pytest.mark.sandbox
def test_kubectl_debug_reports_ephemeral_containers_disabled(sandbox: Sandbox) -> None:
    result = kubectl(sandbox, "debug", "frontend", "--image=busybox", check=False)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        'error: ephemeral containers are disabled for this cluster (error from server: "the server could not '
        'find the requested resource")')
    assert "panic" not in result.stderr
