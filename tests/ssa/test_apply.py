"""Server-side apply against the shared sandbox, with real kubectl and the official Python client:
field ownership in `metadata.managedFields`, conflicts (409 naming the field and its manager),
`--force-conflicts`, and fields dropped from an applied configuration."""

from __future__ import annotations

import json

import pytest
import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from tests.conftest import Sandbox

APPLY = "application/apply-patch+yaml"


def deployment(name: str, *, min_ready: int) -> str:
    """A Deployment whose pods never start (no node matches), so the shared sandbox stays idle."""
    return yaml.safe_dump(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": name},
            "spec": {
                "replicas": 0,
                "minReadySeconds": min_ready,
                "selector": {"matchLabels": {"app": name}},
                "template": {
                    "metadata": {"labels": {"app": name}},
                    "spec": {
                        "nodeSelector": {"lb-demo.dev/none": "x"},
                        "containers": [{"name": "web", "image": "nginx"}],
                    },
                },
            },
        }
    )


def managed(sandbox: Sandbox, namespace: str, kind: str, name: str) -> list[dict]:
    """The object's managedFields as kubectl shows them with --show-managed-fields."""
    out = sandbox.kubectl("get", "-n", namespace, kind, name, "-o", "json", "--show-managed-fields")
    return json.loads(out)["metadata"]["managedFields"]


def test_apply_conflict_with_client_side_apply_then_force_conflicts(sandbox: Sandbox, namespace: str) -> None:
    sandbox.kubectl("apply", "-n", namespace, "-f", "-", stdin=deployment("web", min_ready=0))
    refused = sandbox.run_kubectl(
        "apply",
        "--server-side",
        "-n",
        namespace,
        "-f",
        "-",
        stdin=deployment("web", min_ready=5),
        check=False,
    )
    assert refused.returncode == 1
    assert refused.stderr.startswith(
        "error: Apply failed with 1 conflict: conflict with "
        '"kubectl-client-side-apply" using apps/v1: .spec.minReadySeconds\n'
    )
    assert "--force-conflicts" in refused.stderr
    shown = sandbox.kubectl("get", "-n", namespace, "deploy", "web", "-o", "jsonpath={.spec.minReadySeconds}")
    assert shown == "0", "a refused apply changes nothing"

    forced = sandbox.kubectl(
        "apply",
        "--server-side",
        "--force-conflicts",
        "-n",
        namespace,
        "-f",
        "-",
        stdin=deployment("web", min_ready=5),
    )
    assert forced.strip() == "deployment.apps/web serverside-applied"
    entries = managed(sandbox, namespace, "deploy", "web")
    owners = [e["manager"] for e in entries if "f:minReadySeconds" in e["fieldsV1"].get("f:spec", {})]
    assert owners == ["kubectl"]
    applier = next(e for e in entries if e["manager"] == "kubectl")
    assert applier["operation"] == "Apply" and applier["apiVersion"] == "apps/v1"
    assert applier["fieldsType"] == "FieldsV1" and applier["time"].endswith("Z")
    container = applier["fieldsV1"]["f:spec"]["f:template"]["f:spec"]["f:containers"]['k:{"name":"web"}']
    assert container == {".": {}, "f:image": {}, "f:name": {}}
    plain = json.loads(sandbox.kubectl("get", "-n", namespace, "deploy", "web", "-o", "json"))
    assert "managedFields" not in plain["metadata"], "kubectl hides them without --show-managed-fields"


def test_every_write_records_its_manager(sandbox: Sandbox, namespace: str) -> None:
    sandbox.kubectl("create", "-n", namespace, "-f", "-", stdin=deployment("d", min_ready=0))
    sandbox.kubectl("scale", "-n", namespace, "deploy/d", "--replicas=1")
    sandbox.kubectl("label", "-n", namespace, "deploy/d", "tier=web")
    entries = {
        (e["manager"], e.get("subresource", "")): e for e in managed(sandbox, namespace, "deploy", "d")
    }
    create = entries[("kubectl-create", "")]
    assert create["operation"] == "Update"
    assert "f:replicas" not in create["fieldsV1"]["f:spec"], "scale took replicas over"
    assert "f:progressDeadlineSeconds" in create["fieldsV1"]["f:spec"], "the creator owns the defaults"
    assert entries[("kubectl", "scale")]["fieldsV1"] == {"f:spec": {"f:replicas": {}}}
    assert entries[("kubectl-label", "")]["fieldsV1"] == {"f:metadata": {"f:labels": {".": {}, "f:tier": {}}}}


def _apply(api: client.ApiClient, namespace: str, body: dict, manager: str, *, force: bool = False) -> dict:
    core = client.CoreV1Api(api)
    result = core.patch_namespaced_config_map(
        body["metadata"]["name"], namespace, body, field_manager=manager, force=force, _content_type=APPLY
    )
    return api.sanitize_for_serialization(result)


def _config_map(labels: dict, data: dict) -> dict:
    """An applied ConfigMap configuration (empty maps left out: applying `data: {}` would own `data`)."""
    body: dict = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings"}}
    if labels:
        body["metadata"]["labels"] = labels
    if data:
        body["data"] = data
    return body


def test_fields_dropped_from_the_applied_config_go_unless_someone_else_owns_them(
    sandbox: Sandbox, namespace: str, api: client.ApiClient
) -> None:
    created = _apply(api, namespace, _config_map({"a": "1", "b": "2"}, {"x": "1", "y": "2"}), "tool")
    assert created["data"] == {"x": "1", "y": "2"}
    _apply(api, namespace, _config_map({"b": "2"}, {}), "other")  # co-owns label b (same value: no conflict)
    after = _apply(api, namespace, _config_map({"a": "1"}, {"x": "1"}), "tool")
    assert after["data"] == {"x": "1"}, "y was only tool's: dropping it from tool's config removes it"
    assert after["metadata"]["labels"] == {"a": "1", "b": "2"}, "b stays: other still applies it"
    entries = {e["manager"]: e["fieldsV1"] for e in after["metadata"]["managedFields"]}
    assert entries == {
        "tool": {"f:data": {"f:x": {}}, "f:metadata": {"f:labels": {"f:a": {}}}},
        "other": {"f:metadata": {"f:labels": {"f:b": {}}}},
    }


def test_conflict_status_names_the_field_and_manager(
    sandbox: Sandbox, namespace: str, api: client.ApiClient
) -> None:
    _apply(api, namespace, _config_map({}, {"x": "1", "y": "1"}), "tool")
    sandbox.kubectl("patch", "-n", namespace, "configmap", "settings", "-p", '{"data":{"x":"2","y":"2"}}')
    with pytest.raises(ApiException) as raised:
        _apply(api, namespace, _config_map({}, {"x": "3", "y": "3"}), "tool")
    status = json.loads(raised.value.body)
    assert raised.value.status == 409 and status["reason"] == "Conflict"
    assert status["message"] == (
        'Apply failed with 2 conflicts: conflicts with "kubectl-patch" using v1:\n- .data.x\n- .data.y'
    )
    assert status["details"]["causes"] == [
        {
            "reason": "FieldManagerConflict",
            "message": 'conflict with "kubectl-patch" using v1',
            "field": ".data.x",
        },
        {
            "reason": "FieldManagerConflict",
            "message": 'conflict with "kubectl-patch" using v1',
            "field": ".data.y",
        },
    ]
    current = client.CoreV1Api(api).read_namespaced_config_map("settings", namespace)
    assert current.data == {"x": "2", "y": "2"}
    forced = _apply(api, namespace, _config_map({}, {"x": "3", "y": "3"}), "tool", force=True)
    assert forced["data"] == {"x": "3", "y": "3"}
    assert [e["manager"] for e in forced["metadata"]["managedFields"]] == ["tool"]


def test_apply_options_are_validated(sandbox: Sandbox, namespace: str, api: client.ApiClient) -> None:
    core = client.CoreV1Api(api)
    with pytest.raises(ApiException) as raised:
        core.patch_namespaced_config_map(
            "settings", namespace, _config_map({}, {}), field_manager="x" * 129, _content_type=APPLY
        )
    assert raised.value.status == 422
    assert json.loads(raised.value.body)["message"] == (
        'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Too long: may not be more than 128 bytes'
    )
    with pytest.raises(ApiException) as raised:
        core.patch_namespaced_config_map("settings", namespace, {"data": {}}, force=True)
    assert raised.value.status == 422
    assert (
        "force: Forbidden: may not be specified for non-apply patch"
        in json.loads(raised.value.body)["message"]
    )
    body = _config_map({}, {})
    body["metadata"]["managedFields"] = [{"manager": "me", "operation": "Apply"}]
    with pytest.raises(ApiException) as raised:
        core.patch_namespaced_config_map("settings", namespace, body, field_manager="me", _content_type=APPLY)
    assert raised.value.status == 400
    assert json.loads(raised.value.body)["message"] == "metadata.managedFields must be nil"
    with pytest.raises(ApiException):
        core.read_namespaced_config_map("settings", namespace)
