"""The PodDisruptionBudget rules, written once for the eviction subresource and the disruption
controller (kube-controller-manager's `pkg/controller/disruption`, component-helpers'
`apps/poddisruptionbudget` and the messages of `pkg/registry/core/pod/storage/eviction.go`).

Pure functions over decoded objects: which pods a budget selects, the number of pods it expects
(the scale of the pods' controllers for a percentage or maxUnavailable, else the pods found),
how many must stay healthy, how many are, the pods an eviction just disrupted, and the
`DisruptionAllowed` condition.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable
from typing import Any

from sandbox.meta import Obj, controller_ref, is_pod_ready, now_iso, parse_time, selector_matches

DISRUPTION_ALLOWED = "DisruptionAllowed"
SUFFICIENT_PODS = "SufficientPods"
INSUFFICIENT_PODS = "InsufficientPods"
SYNC_FAILED = "SyncFailed"
# An evicted pod the controller has not seen deleted within this time counts as healthy again.
DELETION_TIMEOUT = 120.0
# A DisruptionTarget condition left on a pod that was not deleted is reset after this time.
STALE_POD_DISRUPTION_TIMEOUT = 120.0
# The eviction subresource refuses to evict more pods the controller has not confirmed.
MAX_DISRUPTED_POD_SIZE = 2000
EVICTION_REFUSED = "Cannot evict pod as it would violate the pod's disruption budget."


class NoController(Exception):
    """A selected pod has no controller with a scale (the budget's percentage cannot resolve)."""


def scaled_value(value: Any, total: int) -> int:
    """`intstr.GetScaledValueFromIntOrPercent(value, total, roundUp=true)`."""
    if isinstance(value, str):
        match = re.fullmatch(r"([0-9]+)%", value)
        if match is None:
            raise ValueError(f"invalid value for IntOrString: invalid value {value!r}")
        return math.ceil(int(match.group(1)) * total / 100)
    return int(value)


def selects(pdb: Obj, pod: Obj, *, empty_selects_all: bool) -> bool:
    """Whether the budget covers the pod: same namespace and a matching selector. A missing
    selector matches nothing; an empty one matches every pod for the controller (policy/v1) and
    nothing for the eviction subresource ("it should match nothing, not everything")."""
    if pdb["metadata"].get("namespace") != pod["metadata"].get("namespace"):
        return False
    selector = (pdb.get("spec") or {}).get("selector")
    if selector is None:
        return False
    if not selector.get("matchLabels") and not selector.get("matchExpressions"):
        return empty_selects_all
    return selector_matches(selector, pod["metadata"].get("labels") or {})


def expected_pods(pdb: Obj, pods: list[Obj],
                  scale_of: Callable[[Obj, str], int | None]) -> tuple[int, int, list[str]]:
    """`getExpectedPodCount`: (expectedCount, desiredHealthy, unmanaged pod names).

    ``scale_of(controller_ref, namespace)`` is the replicas of a pod's controller, None when it
    is not a controller with a scale (then NoController: "found no controllers for pod")."""
    spec = pdb.get("spec") or {}
    max_unavailable, min_available = spec.get("maxUnavailable"), spec.get("minAvailable")
    if max_unavailable is not None:
        expected, unmanaged = _expected_scale(pods, scale_of)
        return expected, max(expected - scaled_value(max_unavailable, expected), 0), unmanaged
    if isinstance(min_available, str):
        expected, unmanaged = _expected_scale(pods, scale_of)
        return expected, scaled_value(min_available, expected), unmanaged
    if min_available is not None:
        return len(pods), int(min_available), []
    return 0, 0, []


def _expected_scale(pods: list[Obj], scale_of: Callable[[Obj, str], int | None]) -> tuple[int, list[str]]:
    """`getExpectedScale`: the sum of the scales of the pods' distinct controllers."""
    scales: dict[str, int] = {}
    unmanaged: list[str] = []
    for pod in pods:
        ref = controller_ref(pod)
        if ref is None:
            unmanaged.append(pod["metadata"]["name"])
            continue
        if ref.get("uid") in scales:
            continue
        scale = scale_of(ref, pod["metadata"].get("namespace", ""))
        if scale is None:
            raise NoController(f'found no controllers for pod "{pod["metadata"]["name"]}"')
        scales[str(ref.get("uid"))] = scale
    return sum(scales.values()), unmanaged


def disrupted_pods(pdb: Obj, pods: Iterable[Obj],
                   now: float) -> tuple[dict[str, str], float | None, list[Obj]]:
    """`buildDisruptedPodMap`: the evicted pods still expected to go (not yet terminating, evicted
    less than DELETION_TIMEOUT ago), when to look again, and the pods that overstayed."""
    recorded = (pdb.get("status") or {}).get("disruptedPods") or {}
    kept: dict[str, str] = {}
    recheck: float | None = None
    overdue: list[Obj] = []
    for pod in pods:
        if pod["metadata"].get("deletionTimestamp"):
            continue
        stamp = recorded.get(pod["metadata"]["name"])
        if stamp is None:
            continue
        expected = (parse_time(stamp) or 0.0) + DELETION_TIMEOUT
        if expected < now:
            overdue.append(pod)
            continue
        kept[pod["metadata"]["name"]] = stamp
        recheck = expected if recheck is None else min(recheck, expected)
    return kept, recheck, overdue


def healthy_pods(pods: Iterable[Obj], disrupted: dict[str, str], now: float) -> int:
    """`countHealthyPods`: ready pods that are neither terminating nor just evicted."""
    count = 0
    for pod in pods:
        if pod["metadata"].get("deletionTimestamp"):
            continue
        stamp = disrupted.get(pod["metadata"]["name"])
        if stamp is not None and (parse_time(stamp) or 0.0) + DELETION_TIMEOUT > now:
            continue
        if is_pod_ready(pod):
            count += 1
    return count


def disruptions_allowed(current_healthy: int, desired_healthy: int, expected: int) -> int:
    """`updatePdbStatus`: no disruption while nothing is expected (a budget's first pods)."""
    allowed = current_healthy - desired_healthy
    return 0 if expected <= 0 or allowed <= 0 else allowed


def set_disruption_allowed_condition(status: Obj) -> None:
    """`UpdateDisruptionAllowedCondition`: True/SufficientPods while disruptions are allowed,
    else False/InsufficientPods; the transition time moves only when the status flips."""
    allowed = int(status.get("disruptionsAllowed") or 0) > 0
    set_condition(status, "True" if allowed else "False", SUFFICIENT_PODS if allowed else INSUFFICIENT_PODS,
                  "")


def set_condition(status: Obj, value: str, reason: str, message: str) -> None:
    """`meta.SetStatusCondition` of the DisruptionAllowed condition."""
    conditions = [c for c in status.get("conditions") or [] if isinstance(c, dict)]
    old = next((c for c in conditions if c.get("type") == DISRUPTION_ALLOWED), None)
    kept = old and old.get("status") == value and old.get("lastTransitionTime")
    cond = {"type": DISRUPTION_ALLOWED, "status": value,
            "observedGeneration": int(status.get("observedGeneration") or 0),
            "lastTransitionTime": old["lastTransitionTime"] if old and kept else now_iso(),
            "reason": reason, "message": message}
    status["conditions"] = [c for c in conditions if c.get("type") != DISRUPTION_ALLOWED] + [cond]


def conditions_up_to_date(pdb: Obj) -> bool:
    """`ConditionsAreUpToDate`: the condition says what disruptionsAllowed says, for this generation."""
    status = pdb.get("status") or {}
    cond = next((c for c in status.get("conditions") or [] if c.get("type") == DISRUPTION_ALLOWED), None)
    if cond is None or cond.get("observedGeneration") != pdb["metadata"].get("generation"):
        return False
    if int(status.get("disruptionsAllowed") or 0) > 0:
        return cond.get("status") == "True" and cond.get("reason") == SUFFICIENT_PODS
    return cond.get("status") == "False" and cond.get("reason") == INSUFFICIENT_PODS


def denied_message(pdb: Obj) -> str:
    """`disruptionDeniedMessage`: the cause of a 429 when the budget allows no disruption."""
    name, status = pdb["metadata"]["name"], pdb.get("status") or {}
    cond = next((c for c in status.get("conditions") or [] if c.get("type") == DISRUPTION_ALLOWED),
                None) or {}
    failed = cond.get("status") == "False" and cond.get("message")
    if failed and cond.get("reason") == SYNC_FAILED:
        return (f"The disruption budget {name} does not allow evicting pods currently because it failed "
                f"sync: {cond['message']}")
    current, desired = int(status.get("currentHealthy") or 0), int(status.get("desiredHealthy") or 0)
    if current <= desired:
        return f"The disruption budget {name} needs {desired} healthy pods and has {current} currently"
    if failed:
        return (f"The disruption budget {name} does not allow evicting pods currently "
                f"({cond.get('reason')}): {cond['message']}")
    return f"The disruption budget {name} does not allow evicting pods currently"


def stale_disruption_wait(pod: Obj, now: float) -> float | None:
    """`nonTerminatingPodHasStaleDisruptionCondition`: seconds until the pod's DisruptionTarget=True
    condition counts as stale (0: now), or None when it has none to reset (terminating or finished
    pods, and the kubelet's own TerminationByKubelet, keep theirs)."""
    if pod["metadata"].get("deletionTimestamp") or (pod.get("status") or {}).get("phase") in ("Succeeded",
                                                                                             "Failed"):
        return None
    cond = next((c for c in (pod.get("status") or {}).get("conditions") or []
                 if c.get("type") == "DisruptionTarget"), None)
    if cond is None or cond.get("status") != "True" or cond.get("reason") == "TerminationByKubelet":
        return None
    since = parse_time(cond.get("lastTransitionTime")) or now
    return max(since + STALE_POD_DISRUPTION_TIMEOUT - now, 0.0)
