"""Node lifecycle taints, NoExecute eviction with tolerationSeconds, cordon's taint and the
scheduler's PreferNoSchedule preference, on ghost nodes in the shared sandbox (Node objects no
kubelet heartbeats, so the real nodes and other tests' pods are left alone)."""

from __future__ import annotations

import json
from collections.abc import Callable

from tests.conftest import Sandbox
from tests.drain.conftest import GHOST_TAINT
from tests.polling import wait_until

SLEEPER = {"name": "c", "image": "busybox", "command": ["sleep", "3600"]}
UNREACHABLE, NOT_READY = "node.kubernetes.io/unreachable", "node.kubernetes.io/not-ready"
TOLERATE_GHOST = {"key": GHOST_TAINT["key"], "operator": "Exists", "effect": "NoSchedule"}


def node(box: Sandbox, name: str) -> dict:
    return json.loads(box.kubectl("get", "node", name, "-o", "json"))


def taints(box: Sandbox, name: str) -> set[tuple[str, str]]:
    return {(t["key"], t["effect"]) for t in node(box, name)["spec"].get("taints") or []}


def pod_on(name: str, node_name: str, tolerations: list[dict]) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"nodeName": node_name, "tolerations": tolerations, "containers": [SLEEPER]}}


def test_a_silent_node_goes_unknown_and_its_pods_leave_after_their_toleration(
        sandbox: Sandbox, ns: str, ghost_nodes: Callable[..., str]):
    ghost = ghost_nodes(heartbeat_ago=300)
    wanted = {(UNREACHABLE, "NoExecute"), (UNREACHABLE, "NoSchedule")}
    wait_until(lambda: wanted <= taints(sandbox, ghost), timeout=60, interval=0.3,
               what="the unreachable taints")
    ready = next(c for c in node(sandbox, ghost)["status"]["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"], ready["message"]) == (
        "Unknown", "NodeStatusUnknown", "Kubelet stopped posting node status.")
    assert sandbox.kubectl("get", "node", ghost, "--no-headers").split()[1] == "NotReady"
    noexecute = next(t for t in node(sandbox, ghost)["spec"]["taints"] if t["effect"] == "NoExecute")
    assert noexecute.get("timeAdded")

    short = {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute",
             "tolerationSeconds": 2}
    sandbox.kubectl("apply", "-n", ns, "-f", "-", stdin=json.dumps(pod_on("brief", ghost, [short])))
    # the admission plugin's default: 300 s for unreachable, which outlasts this test
    sandbox.kubectl("apply", "-n", ns, "-f", "-", stdin=json.dumps(pod_on("patient", ghost, [])))
    sandbox.kubectl("apply", "-n", ns, "-f", "-", stdin=json.dumps(pod_on("forever", ghost, [
        {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute"}])))

    def brief_deleting() -> dict | None:
        pod = json.loads(sandbox.kubectl("get", "pod", "brief", "-n", ns, "-o", "json"))
        return pod if pod["metadata"].get("deletionTimestamp") else None

    brief = wait_until(brief_deleting, timeout=30, interval=0.3, what="the brief pod marked for deletion")
    target = [c for c in brief["status"]["conditions"] if c["type"] == "DisruptionTarget"]
    assert [(c["status"], c["reason"], c["message"]) for c in target] == [
        ("True", "DeletionByTaintManager", "Taint manager: deleting due to NoExecute taint")]
    events = sandbox.kubectl("get", "events", "-n", ns, "--field-selector", "involvedObject.name=brief",
                             "-o", "custom-columns=REASON:.reason,MESSAGE:.message", "--no-headers")
    assert f"TaintManagerEviction   Marking for deletion Pod {ns}/brief" in events
    for name in ("patient", "forever"):
        pod = json.loads(sandbox.kubectl("get", "pod", name, "-n", ns, "-o", "json"))
        assert not pod["metadata"].get("deletionTimestamp"), name


def test_not_ready_and_cordoned_nodes_carry_their_taints(sandbox: Sandbox, ghost_nodes: Callable[..., str]):
    ghost = ghost_nodes(ready="False")
    not_ready = {(NOT_READY, "NoExecute"), (NOT_READY, "NoSchedule")}
    wait_until(lambda: not_ready <= taints(sandbox, ghost), timeout=60, interval=0.3,
               what="the not-ready taints")
    assert sandbox.kubectl("cordon", ghost).strip() == f"node/{ghost} cordoned"
    unschedulable = ("node.kubernetes.io/unschedulable", "NoSchedule")
    wait_until(lambda: unschedulable in taints(sandbox, ghost), timeout=30, interval=0.3,
               what="the unschedulable taint")
    described = sandbox.kubectl("describe", "node", ghost)
    assert "node.kubernetes.io/unschedulable:NoSchedule" in described
    assert "Unschedulable:      true" in described
    sandbox.kubectl("uncordon", ghost)
    wait_until(lambda: unschedulable not in taints(sandbox, ghost), timeout=30, interval=0.3,
               what="the unschedulable taint removed")
    assert (GHOST_TAINT["key"], "NoSchedule") in taints(sandbox, ghost)   # others' taints are kept


def test_the_scheduler_prefers_nodes_without_untolerated_prefer_no_schedule_taints(
        sandbox: Sandbox, ns: str, ghost_nodes: Callable[..., str]):
    soft = {"key": "lb-demo.dev/soft", "value": "yes", "effect": "PreferNoSchedule"}
    avoided, plain = ghost_nodes(taints=[soft]), ghost_nodes()
    names = [avoided, plain]
    pool = f"pool-{ns}"
    for name in names:   # the pods are pinned to the two ghosts (whose taint keeps others away)
        sandbox.kubectl("label", "node", name, f"lb-demo.dev/ghost-pool={pool}")
    for i in range(3):
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": f"p{i}"},
               "spec": {"tolerations": [TOLERATE_GHOST], "containers": [SLEEPER],
                        "nodeSelector": {"lb-demo.dev/ghost-pool": pool}}}
        sandbox.kubectl("apply", "-n", ns, "-f", "-", stdin=json.dumps(pod))

    def placed() -> list[str] | None:
        pods = json.loads(sandbox.kubectl("get", "pods", "-n", ns, "-o", "json"))["items"]
        nodes = [p["spec"].get("nodeName") for p in pods]
        return nodes if len(nodes) == 3 and all(nodes) else None

    assert wait_until(placed, timeout=30, interval=0.3, what="three pods bound") == [plain] * 3
    tolerant = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "tolerant"},
                "spec": {"tolerations": [TOLERATE_GHOST, {"key": soft["key"], "operator": "Exists",
                                                          "effect": "PreferNoSchedule"}],
                         "nodeSelector": {"lb-demo.dev/ghost-pool": pool}, "containers": [SLEEPER]}}
    sandbox.kubectl("apply", "-n", ns, "-f", "-", stdin=json.dumps(tolerant))
    # a pod tolerating the soft taint is free to spread onto the emptier node
    assert wait_until(lambda: json.loads(sandbox.kubectl("get", "pod", "tolerant", "-n", ns, "-o", "json"))
                      ["spec"].get("nodeName"), timeout=30, interval=0.3, what="tolerant bound") == avoided


def test_a_noexecute_taint_evicts_at_once_or_after_the_toleration_unless_removed_first(
        sandbox: Sandbox, ns: str, ghost_nodes: Callable[..., str]):
    ghost = ghost_nodes()   # Ready, heartbeat fresh: only the taint added below matters
    waiting = {"key": "lb-demo.dev/evict", "operator": "Exists", "effect": "NoExecute",
               "tolerationSeconds": 60}
    sandbox.kubectl("apply", "-n", ns, "-f", "-", stdin=json.dumps(pod_on("doomed", ghost, [])))
    sandbox.kubectl("apply", "-n", ns, "-f", "-", stdin=json.dumps(pod_on("waiting", ghost, [waiting])))
    assert sandbox.kubectl("taint", "node", ghost, "lb-demo.dev/evict=now:NoExecute").strip() == \
        f"node/{ghost} tainted"

    def deleting(name: str) -> bool:
        pod = json.loads(sandbox.kubectl("get", "pod", name, "-n", ns, "-o", "json"))
        return bool(pod["metadata"].get("deletionTimestamp"))

    wait_until(lambda: deleting("doomed"), timeout=30, interval=0.3, what="the untolerating pod evicted")
    sandbox.kubectl("taint", "node", ghost, "lb-demo.dev/evict=now:NoExecute-")

    def events(name: str) -> str:
        return sandbox.kubectl("get", "events", "-n", ns, "--field-selector", f"involvedObject.name={name}",
                               "-o", "custom-columns=REASON:.reason,MESSAGE:.message", "--no-headers")

    wait_until(lambda: f"Cancelling deletion of Pod {ns}/waiting" in events("waiting"), timeout=30,
               interval=0.3, what="the pending eviction cancelled")
    assert "TaintManagerEviction" in events("waiting")
    assert "Marking for deletion" not in events("waiting")
    assert not deleting("waiting")
