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
