"""Who wrote what: the sandbox's components write under their own names, so `kubectl get -o yaml
--show-managed-fields` shows kube-controller-manager and kubelet entries as on a real cluster
(not the HTTP library's "Python")."""

from __future__ import annotations

import json

from tests.conftest import Sandbox


def managers(sandbox: Sandbox, namespace: str, *what: str) -> dict[tuple[str, str], str]:
    """(manager, subresource) -> operation of each managedFields entry."""
    out = sandbox.kubectl("get", "-n", namespace, *what, "-o", "json", "--show-managed-fields")
    item = json.loads(out)
    item = item["items"][0] if "items" in item else item
    entries = item["metadata"]["managedFields"]
    return {(e["manager"], e.get("subresource", "")): e["operation"] for e in entries}


def test_controllers_and_kubelets_write_under_their_own_names(sandbox: Sandbox, namespace: str) -> None:
    sandbox.kubectl(
        "create", "deployment", "sleeper", "-n", namespace, "--image=busybox", "--", "sleep", "3600"
    )
    sandbox.kubectl("rollout", "status", "-n", namespace, "deployment/sleeper", "--timeout=120s")

    deployment = managers(sandbox, namespace, "deployment", "sleeper")
    assert deployment[("kubectl-create", "")] == "Update"
    assert deployment[("kube-controller-manager", "status")] == "Update"

    pod = managers(sandbox, namespace, "pods", "-l", "app=sleeper")
    assert pod[("kube-controller-manager", "")] == "Update", "the ReplicaSet controller created the pod"
    assert pod[("kubelet", "status")] == "Update", "the kubelet wrote the pod's status"
    assert not any(manager == "Python" for manager, _ in pod)
