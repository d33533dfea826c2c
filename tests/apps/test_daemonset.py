"""DaemonSets through real kubectl against the shared sandbox (three nodes): one pod per node,
pinned with the controller's matchFields term and the tolerations it adds, rolling node by node
within maxUnavailable, `rollout status/history/undo/restart`, and the nodes a DaemonSet runs on
following node selectors, taints, tolerations and cordons."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from tests.apps.conftest import FAST_EXIT
from tests.conftest import Sandbox
from tests.sandbox.conftest import Kube, is_ready, wait_until

NODES = ("sandbox-node-1", "sandbox-node-2", "sandbox-node-3")
DAEMON_TOLERATIONS = [
    {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute"},
    {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute"},
    {"key": "node.kubernetes.io/disk-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/memory-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/pid-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"},
]

def daemonset(name: str, *, image: str = "lb-demo:latest", **pod_spec: Any) -> str:
    return yaml.safe_dump({
        "apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": name},
        "spec": {"selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}},
                              "spec": {"containers": [{"name": "agent", "image": image, "env": FAST_EXIT}],
                                       **pod_spec}}}})


def live_pods(kube: Kube, name: str) -> list[dict[str, Any]]:
    return [p for p in kube.pods(f"app={name}") if not p["metadata"].get("deletionTimestamp")]


def nodes_of(kube: Kube, name: str) -> list[str]:
    """The nodes the DaemonSet's live pods are bound to, sorted (repeats show doubles)."""
    return sorted(p["spec"].get("nodeName") or "?" for p in live_pods(kube, name))


def ds_row(kube: Kube, name: str) -> list[str]:
    return kube.run("get", "ds", name, "--no-headers").split()


def test_one_pinned_pod_per_node_rolled_node_by_node(kube: Kube) -> None:
    kube.run("apply", "-f", "-", stdin=daemonset("agent"))
    out = kube.run("rollout", "status", "ds/agent", "--timeout=120s")
    assert out.strip().endswith('daemon set "agent" successfully rolled out')
    pods = live_pods(kube, "agent")
    assert sorted(p["spec"]["nodeName"] for p in pods) == list(NODES)
    for pod in pods:
        pinned = pod["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
        assert pinned == {"nodeSelectorTerms": [{"matchFields": [
            {"key": "metadata.name", "operator": "In", "values": [pod["spec"]["nodeName"]]}]}]}
        assert all(t in pod["spec"]["tolerations"] for t in DAEMON_TOLERATIONS)
        assert pod["metadata"]["generateName"] == "agent-"
    assert ds_row(kube, "agent")[:7] == ["agent", "3", "3", "3", "3", "3", "<none>"]
    wide = kube.run("get", "ds", "agent", "-o", "wide", "--no-headers").split()
    assert wide[-3:] == ["agent", "lb-demo:latest", "app=agent"]

    # rollout restart: one node at a time (maxUnavailable 1, maxSurge 0).
    kube.run("rollout", "restart", "ds/agent")
    serving: list[int] = []

    def restarted() -> bool:
        pods = live_pods(kube, "agent")
        assert len(pods) == len({p["spec"].get("nodeName") for p in pods}), "two live pods on one node"
        serving.append(sum(1 for p in pods if is_ready(p)))
        status = kube.get("ds", "agent")["status"]
        return status.get("observedGeneration") == 2 and status.get("updatedNumberScheduled") == 3 \
            and status.get("numberAvailable") == 3

    wait_until(restarted, timeout=120, what="agent restarted on every node")
    assert min(serving) >= 2, f"more than one node lost its pod at once: {serving}"
    history = kube.run("rollout", "history", "ds/agent").split("\n")
    assert history[1:4] == ["REVISION  CHANGE-CAUSE", "1         <none>", "2         <none>"]
    revisions = kube.get("controllerrevisions")["items"]
    assert sorted(r["revision"] for r in revisions) == [1, 2]
    hashes = {r["metadata"]["labels"]["controller-revision-hash"] for r in revisions if r["revision"] == 2}
    assert {p["metadata"]["labels"]["controller-revision-hash"] for p in live_pods(kube, "agent")} == hashes

    all_at_once = {"spec": {"updateStrategy": {"rollingUpdate": {"maxUnavailable": "100%"}}}}
    kube.run("patch", "ds", "agent", "-p", json.dumps(all_at_once))
    assert "rolled back" in kube.run("rollout", "undo", "ds/agent", "--to-revision=1")
    kube.run("rollout", "status", "ds/agent", "--timeout=120s")
    template = kube.get("ds", "agent")["spec"]["template"]
    assert "kubectl.kubernetes.io/restartedAt" not in (template["metadata"].get("annotations") or {})
    assert sorted(r["revision"] for r in kube.get("controllerrevisions")["items"]) == [2, 3]

    kube.run("delete", "ds", "agent")
    wait_until(lambda: not kube.pods("app=agent"), timeout=60, what="agent's pods garbage-collected")


@pytest.fixture
def node_changes(sandbox: Sandbox) -> Iterator[list[list[str]]]:
    """kubectl commands that change shared nodes; each is undone (`key-` form) afterwards."""
    undo: list[list[str]] = []
    yield undo
    for args in reversed(undo):
        sandbox.run_kubectl(*args, check=False)


def test_nodes_follow_selectors_taints_tolerations_and_cordons(kube: Kube,
                                                              node_changes: list[list[str]]) -> None:
    label, taint = f"apps-test/{kube.namespace}", f"apps-test/{kube.namespace}-blocked"
    kube.run("label", "node", NODES[1], f"{label}=picked")
    node_changes.append(["label", "node", NODES[1], f"{label}-"])
    kube.run("apply", "-f", "-", stdin=daemonset("picky", nodeSelector={label: "picked"}))
    wait_until(lambda: nodes_of(kube, "picky") == [NODES[1]], what="picky on sandbox-node-2 only")
    wait_until(lambda: ds_row(kube, "picky")[1:2] == ["1"], what="picky desiring one pod")
    assert ds_row(kube, "picky")[6] == f"{label}=picked"

    kube.run("taint", "node", NODES[2], f"{taint}=yes:NoSchedule")
    node_changes.append(["taint", "node", NODES[2], f"{taint}-"])
    kube.run("cordon", NODES[0])
    node_changes.append(["uncordon", NODES[0]])
    kube.run("apply", "-f", "-", stdin=daemonset("everywhere"))
    # The cordoned node still gets its pod (DaemonSet pods tolerate unschedulable); the tainted one not.
    wait_until(lambda: nodes_of(kube, "everywhere") == [NODES[0], NODES[1]]
               and all(is_ready(p) for p in live_pods(kube, "everywhere")), timeout=90,
               what="everywhere on the cordoned node and the plain one")
    status = kube.get("ds", "everywhere")["status"]
    counts = (status["desiredNumberScheduled"], status["numberReady"], status["numberMisscheduled"])
    assert counts == (2, 2, 0)

    toleration = {"key": taint, "operator": "Equal", "value": "yes", "effect": "NoSchedule"}
    kube.run("patch", "ds", "everywhere", "-p",
             json.dumps({"spec": {"template": {"spec": {"tolerations": [toleration]}}}}))
    wait_until(lambda: nodes_of(kube, "everywhere") == list(NODES), timeout=90,
               what="everywhere also on the tainted node once tolerated")

    kube.run("label", "node", NODES[1], f"{label}-")
    node_changes.pop(0)
    wait_until(lambda: nodes_of(kube, "picky") == [], what="picky's pod removed when its node lost the label")
    wait_until(lambda: ds_row(kube, "picky")[1:3] == ["0", "0"], what="picky desiring no pod")
