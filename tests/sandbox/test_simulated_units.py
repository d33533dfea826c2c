"""The scheduler's TaintToleration filter, which keeps untolerating pods off simulated nodes."""

from __future__ import annotations

from sandbox.kubelet.simulated import SIMULATED_TAINT
from sandbox.scheduler import tolerates, untolerated_taint


def node(*taints: dict) -> dict:
    return {"metadata": {"name": "n"}, "spec": {"taints": list(taints)}}


def pod(*tolerations: dict) -> dict:
    return {"spec": {"tolerations": list(tolerations)}}


def test_a_pod_without_a_toleration_does_not_fit_a_simulated_node() -> None:
    assert untolerated_taint(node(SIMULATED_TAINT), pod()) == SIMULATED_TAINT
    assert untolerated_taint(node(), pod()) is None


def test_equal_exists_and_effects_follow_kubernetes() -> None:
    taint = SIMULATED_TAINT
    equal = {"key": taint["key"], "operator": "Equal", "value": "true", "effect": "NoSchedule"}
    assert tolerates(equal, taint)
    assert not tolerates({"key": taint["key"], "operator": "Equal", "value": "false"}, taint)
    assert tolerates({"key": taint["key"], "operator": "Exists"}, taint)
    assert tolerates({"operator": "Exists"}, taint)  # an empty key with Exists tolerates everything
    assert not tolerates({"key": taint["key"], "operator": "Exists", "effect": "NoExecute"}, taint)
    assert not tolerates({"key": "other", "operator": "Exists"}, taint)
    prefer = {"key": "k", "value": "v", "effect": "PreferNoSchedule"}
    assert untolerated_taint(node(prefer), pod()) is None


def test_the_schedulers_running_counts_spread_replicas_and_forget_deleted_pods() -> None:
    """The per-node counts are kept from informer events (O(nodes) per cycle, not O(pods)):
    replicas of one owner go to the node with fewest of them, and a deleted pod frees its slot."""
    import asyncio

    from sandbox.client import InformerFactory
    from sandbox.scheduler import Scheduler

    async def scenario() -> None:
        scheduler = Scheduler(None, InformerFactory(None))  # type: ignore[arg-type]
        ready = [{"type": "Ready", "status": "True"}]
        for name in ("a", "b"):
            status = {"conditions": ready, "allocatable": {"pods": "2"}}
            scheduler.node_informer.store[name] = {"metadata": {"name": name}, "spec": {}, "status": status}
        owner = {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs", "uid": "u1", "controller": True}

        def pod(name: str, node: str = "") -> dict:
            return {"metadata": {"name": name, "namespace": "d", "ownerReferences": [owner]},
                    "spec": {"nodeName": node} if node else {}, "status": {}}

        scheduler._on_pod("ADDED", None, pod("p1", "a"))
        assert scheduler.pick_node(pod("p2"))[0] == "b"
        scheduler._on_pod("ADDED", None, pod("p2", "b"))
        scheduler._on_pod("ADDED", None, pod("p3", "a"))
        scheduler._on_pod("ADDED", None, pod("p4", "b"))
        node, why = scheduler.pick_node(pod("p5"))
        assert node is None and "Too many pods" in why
        scheduler._on_pod("DELETED", pod("p3", "a"), None)
        assert scheduler.pick_node(pod("p5"))[0] == "a"

    asyncio.run(scenario())
