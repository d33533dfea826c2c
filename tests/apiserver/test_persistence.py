"""State survives a restart of `python -m sandbox up`: objects, the token and kubeconfig, and
resourceVersions that keep increasing."""

from __future__ import annotations

import json

import pytest

from .conftest import kubectl

pytestmark = pytest.mark.sandbox


def test_restart_keeps_objects_token_and_resource_versions(sandbox_factory, tmp_path) -> None:
    state = tmp_path / "persistent"
    box = sandbox_factory(nodes=1, state_dir=state)
    config_map = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "keep", "namespace": "default"},
        "data": {"answer": "42"},
    }
    kubectl(box, "apply", "-f", "-", stdin=json.dumps(config_map))
    before = json.loads(kubectl(box, "get", "configmap", "keep", "-o", "json").stdout)
    token = box.token
    box.stop()

    again = sandbox_factory(nodes=1, state_dir=state)
    assert again.token == token
    after = json.loads(kubectl(again, "get", "configmap", "keep", "-o", "json").stdout)
    assert after["data"] == {"answer": "42"} and after["metadata"]["uid"] == before["metadata"]["uid"]
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
    assert (
        kubectl(again, "get", "deployment", "backend", "-o", "name").stdout.strip()
        == "deployment.apps/backend"
    )
    kubectl(again, "label", "configmap", "keep", "restarted=yes")
    changed = json.loads(kubectl(again, "get", "configmap", "keep", "-o", "json").stdout)
    assert int(changed["metadata"]["resourceVersion"]) > int(before["metadata"]["resourceVersion"])
