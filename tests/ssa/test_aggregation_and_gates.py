"""The clusterrole-aggregation controller writing aggregated rules back into `rules`, and pod
updates that may remove scheduling gates but not add them (ValidatePodUpdate)."""

from __future__ import annotations

import functools
import json
import subprocess
import uuid

import yaml

from tests import polling
from tests.conftest import Sandbox


def rules_of(sandbox: Sandbox, role: str) -> list[dict]:
    return json.loads(sandbox.kubectl("get", "clusterrole", role, "-o", "json")).get("rules") or []


def test_aggregated_roles_show_their_rules(sandbox: Sandbox) -> None:
    def admin_resources() -> set[str]:
        return {r for rule in rules_of(sandbox, "admin") for r in rule.get("resources") or []}

    # admin aggregates edit, which aggregates view: the rules arrive role by role.
    expected = {"rolebindings", "pods/exec", "deployments", "pods"}  # from aggregate-to-admin/edit/view
    polling.wait_until(
        lambda: expected <= admin_resources(), timeout=60, interval=0.5, what="admin's aggregated rules"
    )
    shown = yaml.safe_load(
        sandbox.kubectl("get", "clusterrole", "admin", "-o", "yaml", "--show-managed-fields")
    )
    writer = [e for e in shown["metadata"]["managedFields"] if "f:rules" in e["fieldsV1"]]
    assert [(e["manager"], e["operation"]) for e in writer] == [
        ("clusterrole-aggregation-controller", "Apply")
    ]

    name = f"widget-viewer-{uuid.uuid4().hex[:6]}"
    widgets = {"apiGroups": ["example.com"], "resources": ["widgets"], "verbs": ["get", "list", "watch"]}
    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": name, "labels": {"rbac.authorization.k8s.io/aggregate-to-view": "true"}},
        "rules": [widgets],
    }
    try:
        sandbox.kubectl("apply", "-f", "-", stdin=json.dumps(role))
        def has_widgets(role: str) -> bool:
            return widgets in rules_of(sandbox, role)

        for aggregated in ("view", "edit", "admin"):  # view is aggregated into edit, edit into admin
            polling.wait_until(
                functools.partial(has_widgets, aggregated),
                timeout=60,
                what=f"the new rule in {aggregated}",
            )
    finally:
        sandbox.run_kubectl("delete", "clusterrole", name, "--ignore-not-found", check=False)
    polling.wait_until(
        lambda: widgets not in rules_of(sandbox, "admin"),
        timeout=60,
        what="the deleted role's rule to leave admin",
    )


def patch_gates(sandbox: Sandbox, namespace: str, operations: str) -> subprocess.CompletedProcess[str]:
    """`kubectl patch --type=json` of the pod `gated` (not checked: a refusal is an answer too)."""
    return sandbox.run_kubectl(
        "patch", "pod", "gated", "-n", namespace, "--type=json", "-p", operations, check=False
    )


def test_scheduling_gates_may_only_be_removed(sandbox: Sandbox, namespace: str) -> None:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "gated"},
        "spec": {
            "schedulingGates": [{"name": "example.com/a"}, {"name": "example.com/b"}],
            "containers": [{"name": "main", "image": "busybox", "command": ["sleep", "3600"]}],
        },
    }
    sandbox.kubectl("apply", "-n", namespace, "-f", "-", stdin=json.dumps(pod))
    polling.wait_until(  # the scheduler marks it PodScheduled=False/SchedulingGated, printPod shows that
        lambda: "SchedulingGated" in sandbox.kubectl("get", "pod", "gated", "-n", namespace),
        timeout=60,
        interval=0.5,
        what="the gated pod shown SchedulingGated",
    )
    added = patch_gates(
        sandbox, namespace, '[{"op":"add","path":"/spec/schedulingGates/-","value":{"name":"example.com/c"}}]'
    )
    assert added.returncode == 1
    assert (
        'The Pod "gated" is invalid: spec.schedulingGates[2].name: Forbidden: only deletion is allowed, but '
        "found new scheduling gate 'example.com/c'"
    ) in added.stderr
    assert (
        patch_gates(sandbox, namespace, '[{"op":"remove","path":"/spec/schedulingGates/0"}]').returncode == 0
    )
    gates = sandbox.kubectl(
        "get", "pod", "gated", "-n", namespace, "-o", "jsonpath={.spec.schedulingGates[*].name}"
    )
    assert gates == "example.com/b"
    assert patch_gates(sandbox, namespace, '[{"op":"remove","path":"/spec/schedulingGates"}]').returncode == 0
    node = polling.wait_until(
        lambda: sandbox.kubectl("get", "pod", "gated", "-n", namespace, "-o", "jsonpath={.spec.nodeName}"),
        timeout=60,
        interval=0.5,
        what="the ungated pod to be scheduled",
    )
    assert node.startswith("sandbox-node-")
