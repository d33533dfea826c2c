"""`kubectl drain`, cordon and uncordon end to end with real kubectl 1.37 on a private two-node
sandbox (draining moves every pod off a node, so this test owns its cluster): the refusals and
their flags (unmanaged pods, emptyDir, DaemonSet pods), evictions retried while a
PodDisruptionBudget blocks them until `--timeout`, the drain that succeeds once the budget allows
it, `--disable-eviction` deleting past a budget, and a node that recovers from being marked
Unknown. Also `kubectl debug --copy-to`, whose whole Pod travels as protobuf."""

from __future__ import annotations

import json
import re
from collections.abc import Callable

from tests.conftest import Sandbox
from tests.polling import wait_until

NS = "drained"
SLEEPER = {"name": "c", "image": "busybox", "command": ["sleep", "3600"]}


def pods_by_node(box: Sandbox, selector: str) -> dict[str, str]:
    pods = json.loads(box.kubectl("get", "pods", "-n", NS, "-l", selector, "-o", "json"))["items"]
    return {p["metadata"]["name"]: p["spec"].get("nodeName") or "" for p in pods
            if not p["metadata"].get("deletionTimestamp")}


def is_ready(pod: dict) -> bool:
    return not pod["metadata"].get("deletionTimestamp") and any(
        c["type"] == "Ready" and c["status"] == "True" for c in pod["status"].get("conditions") or [])


def running(box: Sandbox, selector: str, count: int) -> dict[str, str] | None:
    pods = json.loads(box.kubectl("get", "pods", "-n", NS, "-l", selector, "-o", "json"))["items"]
    live = {p["metadata"]["name"]: p["spec"].get("nodeName") for p in pods if is_ready(p)}
    return live if len(live) == count else None


def bare(name: str, **spec) -> dict:
    """A pod without a controller, pinned to sandbox-node-1."""
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"app": name}},
            "spec": {"nodeName": "sandbox-node-1", "terminationGracePeriodSeconds": 1,
                     "containers": [SLEEPER], **spec}}


def test_drain_cordon_uncordon(sandbox_factory: Callable[..., Sandbox]):
    box = sandbox_factory(nodes=2)
    box.kubectl("create", "namespace", NS)
    template = {"metadata": {"labels": {"app": "web"}},
                "spec": {"terminationGracePeriodSeconds": 1, "containers": [SLEEPER]}}
    web = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
           "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}}, "template": template}}
    mounted = {**SLEEPER, "volumeMounts": [{"name": "tmp", "mountPath": "/tmp/s"}]}
    scratch = bare("scratch", volumes=[{"name": "tmp", "emptyDir": {}}], containers=[mounted])
    agent = {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "agent"},
             "spec": {"selector": {"matchLabels": {"app": "agent"}},
                      "template": {**template, "metadata": {"labels": {"app": "agent"}}}}}
    for doc in (web, bare("loner"), scratch, agent):
        box.kubectl("apply", "-n", NS, "-f", "-", stdin=json.dumps(doc))
    box.kubectl("create", "pdb", "web", "-n", NS, "--selector=app=web", "--min-available=2")
    placed = wait_until(lambda: running(box, "app=web", 2), timeout=120, interval=0.5, what="two web pods")
    assert sorted(placed.values()) == ["sandbox-node-1", "sandbox-node-2"]   # spread one per node
    wait_until(lambda: running(box, "app in (loner,scratch)", 2), timeout=60, interval=0.5,
               what="the bare pods running")
    agents = wait_until(lambda: running(box, "app=agent", 2), timeout=60, interval=0.5,
                        what="a DaemonSet pod per node")
    agent_on_1 = next(name for name, node in agents.items() if node == "sandbox-node-1")
    wait_until(lambda: json.loads(box.kubectl("get", "pdb", "web", "-n", NS, "-o", "json"))["status"]
               .get("currentHealthy") == 2, timeout=30, interval=0.3, what="the budget counting both")

    # plain drain: cordons, then refuses pods it would lose
    refused = box.run_kubectl("drain", "sandbox-node-1", check=False, timeout=60)
    assert refused.returncode == 1
    assert "node/sandbox-node-1 cordoned" in refused.stdout
    assert "cannot delete Pods that declare no controller (use --force to override): " \
           f"{NS}/loner" in refused.stderr
    assert "cannot delete Pods with local storage (use --delete-emptydir-data to override): " \
           f"{NS}/scratch" in refused.stderr
    assert "cannot delete DaemonSet-managed Pods (use --ignore-daemonsets to ignore): " \
           f"{NS}/{agent_on_1}" in refused.stderr
    status = box.kubectl("get", "node", "sandbox-node-1", "--no-headers").split()[1]
    assert status == "Ready,SchedulingDisabled"

    # with the flags: the bare pods go, the budget holds the web pod until the timeout
    blocked = box.run_kubectl("drain", "sandbox-node-1", "--force", "--delete-emptydir-data",
                              "--ignore-daemonsets", "--timeout=8s", check=False, timeout=90)
    assert blocked.returncode == 1
    assert "node/sandbox-node-1 already cordoned" in blocked.stdout
    warning = next(line for line in blocked.stderr.splitlines() if line.startswith("Warning: "))
    assert sorted(warning.removeprefix("Warning: ").split("; ")) == [   # (in either order)
        f"deleting Pods that declare no controller: {NS}/loner, {NS}/scratch",
        f"ignoring DaemonSet-managed Pods: {NS}/{agent_on_1}"]
    assert "pod/loner evicted" in blocked.stdout
    assert "pod/scratch evicted" in blocked.stdout
    web_on_1 = next(name for name, node in placed.items() if node == "sandbox-node-1")
    assert (f'error when evicting pods/"{web_on_1}" -n "{NS}" (will retry after 5s): Cannot evict pod as it '
            "would violate the pod's disruption budget.") in blocked.stderr
    assert f'error when evicting pods/"{web_on_1}" -n "{NS}": global timeout reached: 8s' in blocked.stderr
    assert pods_by_node(box, "app=web").get(web_on_1) == "sandbox-node-1"

    # the budget allows one disruption: the drain completes and the replacement avoids the cordoned node
    box.kubectl("patch", "pdb", "web", "-n", NS, "--type=merge", "-p", '{"spec":{"minAvailable":1}}')
    drained = box.run_kubectl("drain", "sandbox-node-1", "--force", "--delete-emptydir-data",
                              "--ignore-daemonsets", "--timeout=90s", timeout=120)
    assert f"pod/{web_on_1} evicted" in drained.stdout
    assert "node/sandbox-node-1 drained" in drained.stdout
    after = wait_until(lambda: running(box, "app=web", 2), timeout=120, interval=0.5, what="web back to two")
    assert set(after.values()) == {"sandbox-node-2"}
    assert pods_by_node(box, "app=agent").get(agent_on_1) == "sandbox-node-1"   # DaemonSet pods stay
    assert box.kubectl("uncordon", "sandbox-node-1").strip() == "node/sandbox-node-1 uncordoned"
    assert box.kubectl("get", "node", "sandbox-node-1", "--no-headers").split()[1] == "Ready"

    # --disable-eviction deletes instead, past the budget
    box.kubectl("patch", "pdb", "web", "-n", NS, "--type=merge", "-p", '{"spec":{"minAvailable":2}}')
    deleted = box.run_kubectl("drain", "sandbox-node-2", "--disable-eviction", "--pod-selector=app=web",
                              "--ignore-daemonsets", "--timeout=90s", timeout=120)
    assert sorted(re.findall(r"^pod/(\S+) deleted$", deleted.stdout, re.M)) == sorted(after)
    assert "evicted" not in deleted.stdout
    box.kubectl("uncordon", "sandbox-node-2")

    # what the node lifecycle controller writes about a silent node, on a node whose kubelet is
    # alive: the kubelet reports Ready again, the taints go, its pods' Ready comes back
    pod = wait_until(lambda: running(box, "app=web", 2), timeout=120, interval=0.5, what="web back")
    name, node = next(iter(pod.items()))
    unknown = {"type": "Ready", "status": "Unknown", "reason": "NodeStatusUnknown",
               "message": "Kubelet stopped posting node status."}
    box.kubectl("patch", "node", node, "--subresource=status", "--type=strategic", "-p",
                json.dumps({"status": {"conditions": [unknown]}}))
    box.kubectl("patch", "pod", name, "-n", NS, "--subresource=status", "--type=strategic", "-p",
                json.dumps({"status": {"conditions": [{"type": "Ready", "status": "False"}]}}))

    def healed() -> bool:
        status = box.kubectl("get", "node", node, "--no-headers").split()[1]
        node_taints = json.loads(box.kubectl("get", "node", node, "-o", "json"))["spec"].get("taints") or []
        return status == "Ready" and not node_taints and name in (running(box, "app=web", 2) or {})

    wait_until(healed, timeout=60, interval=0.5, what="node and pod Ready again, no taints")


def test_debug_copy_to_sends_a_whole_pod_as_protobuf(sandbox: Sandbox, ns: str):
    now = {"key": "example.com/now", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 0}
    container = {**SLEEPER, "env": [{"name": "COLOUR", "value": "blue"}],
                 "volumeMounts": [{"name": "tmp", "mountPath": "/tmp/s"}]}
    original = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "orig", "labels": {"app": "orig"}},
                "spec": {"terminationGracePeriodSeconds": 1, "enableServiceLinks": False,
                         "volumes": [{"name": "tmp", "emptyDir": {}}], "tolerations": [now],
                         "containers": [container]}}
    sandbox.kubectl("apply", "-n", ns, "-f", "-", stdin=json.dumps(original))
    out = sandbox.run_kubectl("debug", "orig", "-n", ns, "--copy-to=orig-debug", "--image=busybox",
                              "--container=debugger", "--", "sleep", "600")
    assert "UnsupportedMediaType" not in out.stderr
    copy = json.loads(sandbox.kubectl("get", "pod", "orig-debug", "-n", ns, "-o", "json"))
    spec = copy["spec"]
    assert [c["name"] for c in spec["containers"]] == ["c", "debugger"]
    assert spec["containers"][1]["command"] == ["sleep", "600"]
    assert spec["containers"][0]["env"] == [{"name": "COLOUR", "value": "blue"}]
    assert {"name": "tmp", "emptyDir": {}} in spec["volumes"]        # an empty message that is set
    assert spec["enableServiceLinks"] is False                       # a false that is set
    assert now in spec["tolerations"]                                # a zero that is set
