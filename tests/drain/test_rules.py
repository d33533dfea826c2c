"""The pure rules behind PodDisruptionBudgets, taints and drain: budget arithmetic as
kube-controller-manager computes it, the eviction refusal messages, toleration timing, the node
lifecycle taints and conditions, the scheduler's PreferNoSchedule preference, and the
PodDisruptionBudget kind's validation and Table cells."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from sandbox import disruption
from sandbox.apiserver.kinds import poddisruptionbudget
from sandbox.apiserver.validation.fielderrors import Invalid
from sandbox.controllers import nodelifecycle
from sandbox.controllers.taintmanager import min_toleration_seconds
from sandbox.scheduler import intolerable_prefer_no_schedule


def pod(name: str, *, ready: bool = True, owner: str | None = "rs-1", deleting: bool = False,
        labels: dict | None = None) -> dict:
    meta: dict = {"name": name, "namespace": "ns", "labels": labels or {"app": "web"}}
    if owner:
        meta["ownerReferences"] = [{"kind": "ReplicaSet", "name": owner, "uid": owner, "controller": True}]
    if deleting:
        meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    ready_cond = {"type": "Ready", "status": "True" if ready else "False"}
    return {"metadata": meta, "status": {"conditions": [ready_cond]}}


def pdb(spec: dict, status: dict | None = None, name: str = "budget") -> dict:
    return {"metadata": {"name": name, "namespace": "ns", "generation": 1},
            "spec": {"selector": {"matchLabels": {"app": "web"}}, **spec}, "status": status or {}}


def scale_of(replicas: dict[str, int]):
    return lambda ref, _ns: replicas.get(ref["uid"])


@pytest.mark.parametrize(("spec", "expected", "desired"), [
    ({"minAvailable": 2}, 3, 2),               # an integer: the pods found, no scale needed
    ({"minAvailable": "50%"}, 4, 2),           # a percentage of the controllers' scale, rounded up
    ({"minAvailable": "30%"}, 4, 2),
    ({"maxUnavailable": 1}, 4, 3),
    ({"maxUnavailable": "30%"}, 4, 2),         # 30% of 4 rounds up to 2 unavailable
    ({"maxUnavailable": "100%"}, 4, 0),
])
def test_expected_and_desired_healthy_follow_the_controller_scale(spec, expected, desired):
    pods = [pod("a"), pod("b"), pod("c")]
    got = disruption.expected_pods(pdb(spec), pods, scale_of({"rs-1": 4}))
    assert got == (expected, desired, [])


def test_a_percentage_needs_every_pod_to_have_a_controller_with_a_scale():
    pods = [pod("a"), pod("lonely", owner="gone")]
    with pytest.raises(disruption.NoController, match='found no controllers for pod "lonely"'):
        disruption.expected_pods(pdb({"maxUnavailable": 1}), pods, scale_of({"rs-1": 2}))
    # pods without any controller are counted as unmanaged, not an error
    pods = [pod("a"), pod("bare", owner=None)]
    _, _, unmanaged = disruption.expected_pods(pdb({"maxUnavailable": 1}), pods, scale_of({"rs-1": 2}))
    assert unmanaged == ["bare"]


def test_healthy_pods_exclude_unready_terminating_and_just_evicted_pods():
    now = time.time()
    just = datetime.fromtimestamp(now - 5, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    pods = [pod("ok"), pod("unready", ready=False), pod("going", deleting=True), pod("evicted")]
    assert disruption.healthy_pods(pods, {"evicted": just}, now) == 1
    assert disruption.disruptions_allowed(1, 1, 4) == 0
    assert disruption.disruptions_allowed(3, 1, 4) == 2
    assert disruption.disruptions_allowed(3, 1, 0) == 0   # nothing expected yet: no disruption


def test_evicted_pods_leave_disrupted_pods_when_terminating_or_after_two_minutes():
    now = time.time()
    recent = datetime.fromtimestamp(now - 10, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    stale = datetime.fromtimestamp(now - 300, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    budget = pdb({"minAvailable": 1}, {"disruptedPods": {"a": recent, "b": stale, "c": recent}})
    pods = [pod("a"), pod("b"), pod("c", deleting=True)]
    kept, recheck, overdue = disruption.disrupted_pods(budget, pods, now)
    assert kept == {"a": recent}
    assert [p["metadata"]["name"] for p in overdue] == ["b"]
    assert recheck == pytest.approx(now - 10 + disruption.DELETION_TIMEOUT, abs=1)


def test_selectors_empty_and_missing():
    everything = pdb({"minAvailable": 1})
    everything["spec"]["selector"] = {}
    assert disruption.selects(everything, pod("a"), empty_selects_all=True)
    assert not disruption.selects(everything, pod("a"), empty_selects_all=False)
    none = pdb({"minAvailable": 1})
    del none["spec"]["selector"]
    assert not disruption.selects(none, pod("a"), empty_selects_all=True)
    other = pod("a", labels={"app": "db"})
    assert not disruption.selects(pdb({"minAvailable": 1}), other, empty_selects_all=True)


def test_the_disruption_allowed_condition_and_the_refusal_message():
    status: dict = {"disruptionsAllowed": 0, "observedGeneration": 1, "currentHealthy": 2,
                    "desiredHealthy": 2}
    disruption.set_disruption_allowed_condition(status)
    (cond,) = status["conditions"]
    assert (cond["type"], cond["status"], cond["reason"], cond["message"]) == (
        "DisruptionAllowed", "False", "InsufficientPods", "")
    budget = pdb({"minAvailable": 2}, status)
    assert disruption.conditions_up_to_date(budget)
    assert disruption.denied_message(budget) == (
        "The disruption budget budget needs 2 healthy pods and has 2 currently")
    status["disruptionsAllowed"] = 1
    assert not disruption.conditions_up_to_date(budget)
    disruption.set_disruption_allowed_condition(status)
    assert status["conditions"][0]["reason"] == "SufficientPods"
    disruption.set_condition(status, "False", disruption.SYNC_FAILED, 'found no controllers for pod "x"')
    assert disruption.denied_message(budget) == (
        "The disruption budget budget does not allow evicting pods currently because it failed sync: "
        'found no controllers for pod "x"')


def test_a_disruption_target_left_on_a_running_pod_goes_stale_after_two_minutes():
    now = time.time()
    marked = pod("kept")
    since = datetime.fromtimestamp(now - 30, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    marked["status"]["conditions"].append({"type": "DisruptionTarget", "status": "True",
                                           "reason": "EvictionByEvictionAPI", "lastTransitionTime": since})
    assert disruption.stale_disruption_wait(marked, now) == pytest.approx(90, abs=1)
    assert disruption.stale_disruption_wait(marked, now + 200) == 0.0
    marked["metadata"]["deletionTimestamp"] = since   # being deleted after all: nothing to reset
    assert disruption.stale_disruption_wait(marked, now + 200) is None
    assert disruption.stale_disruption_wait(pod("plain"), now) is None


TOLERATE_3S = {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute",
               "tolerationSeconds": 3}
UNREACHABLE = {"key": "node.kubernetes.io/unreachable", "effect": "NoExecute"}


@pytest.mark.parametrize(("tolerations", "taints", "seconds"), [
    ([], [UNREACHABLE], 0.0),                                            # not tolerated: now
    ([TOLERATE_3S], [UNREACHABLE], 3.0),
    ([TOLERATE_3S, {"operator": "Exists"}], [UNREACHABLE], 3.0),         # the smallest of those used
    ([{"key": "node.kubernetes.io/unreachable", "operator": "Exists"}], [UNREACHABLE], None),  # forever
    ([{**TOLERATE_3S, "tolerationSeconds": -5}], [UNREACHABLE], 0.0),    # negative counts as zero
    ([TOLERATE_3S], [UNREACHABLE, {"key": "other", "value": "x", "effect": "NoExecute"}], 0.0),
    ([{"key": "other", "operator": "Equal", "value": "x", "tolerationSeconds": 9}],
     [{"key": "other", "value": "x", "effect": "NoExecute"}], 9.0),      # an empty effect matches
    ([{"key": "other", "operator": "Equal", "value": "y"}],
     [{"key": "other", "value": "x", "effect": "NoExecute"}], 0.0),      # another value does not
    ([{**TOLERATE_3S, "effect": "NoSchedule"}], [UNREACHABLE], 0.0),     # a NoSchedule toleration does not
])
def test_noexecute_tolerations_and_their_seconds(tolerations, taints, seconds):
    assert min_toleration_seconds({"spec": {"tolerations": tolerations}}, taints) == seconds


def node(ready: str | None, *, unschedulable: bool = False, taints: list | None = None) -> dict:
    conditions = [] if ready is None else [
        {"type": "Ready", "status": ready, "lastHeartbeatTime": "2026-01-01T00:00:00Z"}]
    return {"metadata": {"name": "n", "creationTimestamp": "2026-01-01T00:00:00Z"},
            "spec": {"unschedulable": unschedulable, "taints": taints or []},
            "status": {"conditions": conditions}}


def test_node_condition_taints():
    now = "2026-01-02T00:00:00Z"
    assert nodelifecycle.reconcile_taints(node("True"), now) is None
    mine = {"key": "mine", "effect": "NoSchedule"}
    unknown = nodelifecycle.reconcile_taints(node("Unknown", taints=[mine]), now)
    assert unknown == [{"key": "mine", "effect": "NoSchedule"},
                       {"key": "node.kubernetes.io/unreachable", "effect": "NoExecute", "timeAdded": now},
                       {"key": "node.kubernetes.io/unreachable", "effect": "NoSchedule"}]
    # Ready again (and cordoned): the condition taints go, the cordon taint comes
    assert nodelifecycle.reconcile_taints(node("True", unschedulable=True, taints=unknown), now) == [
        mine, {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}]
    assert {t["key"] for t in nodelifecycle.reconcile_taints(node("False"), now) or []} == {
        "node.kubernetes.io/not-ready"}
    pressed = node("True")
    pressed["status"]["conditions"].append({"type": "MemoryPressure", "status": "True"})
    assert nodelifecycle.reconcile_taints(pressed, now) == [
        {"key": "node.kubernetes.io/memory-pressure", "effect": "NoSchedule"}]


def test_a_silent_node_reads_unknown():
    conditions = nodelifecycle.unknown_conditions(node("True"), "2026-01-02T00:00:00Z")
    assert conditions is not None
    by_type = {c["type"]: c for c in conditions}
    assert (by_type["Ready"]["status"], by_type["Ready"]["reason"], by_type["Ready"]["message"]) == (
        "Unknown", "NodeStatusUnknown", "Kubelet stopped posting node status.")
    assert by_type["Ready"]["lastHeartbeatTime"] == "2026-01-01T00:00:00Z"   # the last one it posted
    assert by_type["MemoryPressure"]["reason"] == "NodeStatusNeverUpdated"
    again = node("True")
    again["status"]["conditions"] = conditions
    assert nodelifecycle.unknown_conditions(again, "2026-01-03T00:00:00Z") is None


def test_prefer_no_schedule_counts_only_untolerated_soft_taints():
    soft = {"key": "soft", "value": "yes", "effect": "PreferNoSchedule"}
    tainted = node("True", taints=[soft, {"key": "hard", "effect": "NoSchedule"}])
    assert intolerable_prefer_no_schedule(tainted, {"spec": {}}) == 1
    tolerating = {"spec": {"tolerations": [{"key": "soft", "operator": "Exists",
                                            "effect": "PreferNoSchedule"}]}}
    assert intolerable_prefer_no_schedule(tainted, tolerating) == 0
    wrong_effect = {"spec": {"tolerations": [{"key": "soft", "operator": "Exists", "effect": "NoSchedule"}]}}
    assert intolerable_prefer_no_schedule(tainted, wrong_effect) == 1


def invalid_causes(spec: dict) -> list[str]:
    obj = {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "p"}, "spec": spec}
    strategy = poddisruptionbudget.STRATEGY
    with pytest.raises(Invalid) as raised:
        strategy.validate_object(strategy.default_object(obj))
    return [str(e) for e in raised.value.errors]


def test_budget_validation_messages():
    assert invalid_causes({"minAvailable": 1, "maxUnavailable": 1}) == [
        'spec: Invalid value: {"minAvailable":1,"maxUnavailable":1}: minAvailable and maxUnavailable '
        "cannot be both set"]
    assert invalid_causes({"minAvailable": "120%"}) == [
        'spec.minAvailable: Invalid value: "120%": must not be greater than 100%']
    assert invalid_causes({"maxUnavailable": -1}) == [
        "spec.maxUnavailable: Invalid value: -1: must be greater than or equal to 0"]
    assert invalid_causes({"minAvailable": 1, "unhealthyPodEvictionPolicy": "Sometimes"}) == [
        'spec.unhealthyPodEvictionPolicy: Unsupported value: "Sometimes": supported values: "AlwaysAllow", '
        '"IfHealthyBudget"']


def test_budget_table_cells():
    strategy = poddisruptionbudget.STRATEGY
    assert [c["name"] for c in strategy.columns()] == [
        "Name", "Min Available", "Max Unavailable", "Allowed Disruptions", "Age"]
    now = datetime(2026, 1, 1, 0, 5, tzinfo=UTC)
    obj = {"metadata": {"name": "p", "creationTimestamp": "2026-01-01T00:00:00Z"},
           "spec": {"maxUnavailable": "25%"}, "status": {"disruptionsAllowed": 1}}
    assert strategy.row(obj, now) == ["p", "N/A", "25%", 1, "5m"]
