"""The HorizontalPodAutoscaler's arithmetic, as pure functions (no I/O, the clock passed in).

A port of kube-controller-manager's `pkg/controller/podautoscaler` for Resource metrics with
an ``averageUtilization`` target (what ``kubectl autoscale --cpu-percent`` creates):

- `resource_replicas` is `ReplicaCalculator.GetResourceReplicas`: utilization = the pods'
  summed usage x 100 / their summed requests (an integer percent), ratio = utilization /
  target, desired = ceil(ratio x ready pods with metrics), no change within the tolerance
  (0.1). Pods being deleted or Failed are ignored; Pending pods, and pods still starting
  (unready, or ready for less than one metrics window within the CPU initialization period)
  count as using nothing when that would scale up; pods without metrics count as using
  their full request when that would scale down, nothing when it would scale up; a rebalanced
  ratio that flips direction means no change.
- `normalize` is `normalizeDesiredReplicas` (no ``spec.behavior``: the highest recommendation
  of the downscale stabilization window, at most max(2 x current, 4) per step, min/max) and
  `normalizeDesiredReplicasWithBehaviors` (stabilization windows per direction, then the
  Pods/Percent policies of ``behavior.scaleUp`` / ``scaleDown`` with their periods and
  ``selectPolicy``), setting the AbleToScale and ScalingLimited conditions with Kubernetes'
  reasons and messages.
- `default_behavior` fills a given ``behavior`` like `SetDefaults_HorizontalPodAutoscalerBehavior`.

The controller (`hpa.py`) keeps one `History` per HPA and applies the result.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

Obj = dict[str, Any]

TOLERANCE = 0.1
SCALE_UP_LIMIT_FACTOR = 2.0
SCALE_UP_LIMIT_MINIMUM = 4.0

DEFAULT_SCALE_UP: Obj = {
    "stabilizationWindowSeconds": 0,
    "selectPolicy": "Max",
    "policies": [{"type": "Pods", "value": 4, "periodSeconds": 15}, {"type": "Percent", "value": 100,
                                                                      "periodSeconds": 15}],
}
DEFAULT_SCALE_DOWN: Obj = {
    "selectPolicy": "Max",
    "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}],
}
READY = ("ReadyForNewScale", "recommended size matches current size")
DOWN_STABILIZED = ("ScaleDownStabilized", "recent recommendations were higher than current one, "
                   "applying the highest recent recommendation")
UP_STABILIZED = ("ScaleUpStabilized", "recent recommendations were lower than current one, "
                 "applying the lowest recent recommendation")
WITHIN_RANGE = ("DesiredWithinRange", "the desired count is within the acceptable range")
UP_LIMIT = ("ScaleUpLimit", "the desired replica count is increasing faster than the maximum scale rate")
DOWN_LIMIT = ("ScaleDownLimit", "the desired replica count is decreasing faster than the maximum scale rate")
TOO_MANY = ("TooManyReplicas", "the desired replica count is more than the maximum replica count")
TOO_FEW = ("TooFewReplicas", "the desired replica count is less than the minimum replica count")


class MetricsError(Exception):
    """The replica count cannot be computed from the metrics (the message is Kubernetes')."""


@dataclass(frozen=True)
class PodInfo:
    """What the replica calculator needs of one pod selected by the target's selector."""

    name: str
    phase: str = "Running"
    deleting: bool = False
    ready: bool | None = True
    ready_since: float | None = None
    start_time: float | None = None
    request_milli: int | None = 100
    missing_request_container: str = ""


@dataclass(frozen=True)
class PodMetric:
    """A pod's usage from the metrics API: millicores, and when and over what window."""

    usage_milli: float
    timestamp: float
    window: float


@dataclass(frozen=True)
class Proposal:
    """The calculator's answer: replicas, utilization (percent) and average usage (millicores)."""

    replicas: int
    utilization: int
    average_milli: int
    timestamp: float


def _ratio(metrics: dict[str, float], requests: dict[str, int], target: int) -> tuple[float, int, int]:
    """`GetResourceUtilizationRatio`: (ratio, utilization percent, average millicores)."""
    total = 0.0
    requested = 0
    count = 0
    for name, value in metrics.items():
        if name not in requests:
            continue
        total += value
        requested += requests[name]
        count += 1
    if requested == 0:
        raise MetricsError("no metrics returned matched known pods")
    utilization = int(total * 100 // requested)
    return utilization / target, utilization, int(total // count)


def resource_replicas(
    current_replicas: int,
    target_utilization: int,
    pods: list[PodInfo],
    metrics: dict[str, PodMetric],
    *,
    now: float,
    tolerance: float = TOLERANCE,
    cpu_initialization_period: float = 300.0,
    initial_readiness_delay: float = 30.0,
    resource: str = "cpu",
) -> Proposal:
    """`GetResourceReplicas` for one resource with a utilization target (see the module docstring)."""
    if not pods:
        raise MetricsError("no pods returned by selector while calculating replica count")
    if not metrics:
        raise MetricsError(f"unable to get metrics for resource {resource}: "
                           "no metrics returned from resource metrics API")
    ready_count = 0
    unready: set[str] = set()
    missing: set[str] = set()
    ignored: set[str] = set()
    for pod in pods:
        if pod.deleting or pod.phase == "Failed":
            ignored.add(pod.name)
            continue
        if pod.phase == "Pending":
            unready.add(pod.name)
            continue
        metric = metrics.get(pod.name)
        if metric is None:
            missing.add(pod.name)
            continue
        if resource == "cpu":
            if pod.ready is None or pod.start_time is None:
                is_unready = True
            elif pod.start_time + cpu_initialization_period > now:
                since = pod.ready_since if pod.ready_since is not None else pod.start_time
                is_unready = not pod.ready or metric.timestamp < since + metric.window
            else:
                since = pod.ready_since if pod.ready_since is not None else pod.start_time
                is_unready = not pod.ready and pod.start_time + initial_readiness_delay > since
            if is_unready:
                unready.add(pod.name)
                continue
        ready_count += 1
    usage = {name: m.usage_milli for name, m in metrics.items() if name not in ignored | unready}
    if not usage:
        raise MetricsError("did not receive metrics for targeted pods (pods might be unready)")
    requests: dict[str, int] = {}
    for pod in pods:
        if pod.request_milli is None:
            container = pod.missing_request_container
            raise MetricsError(f"missing request for {resource} in container {container} of Pod {pod.name}")
        requests[pod.name] = pod.request_milli
    timestamp = max(m.timestamp for m in metrics.values())
    ratio, utilization, average = _ratio(usage, requests, target_utilization)
    scale_up_with_unready = bool(unready) and ratio > 1.0
    if not scale_up_with_unready and not missing:
        if abs(1.0 - ratio) <= tolerance:
            return Proposal(current_replicas, utilization, average, timestamp)
        return Proposal(math.ceil(ratio * ready_count), utilization, average, timestamp)
    if missing:
        if ratio < 1.0:
            fallback = max(100, target_utilization)
            for name in missing:
                usage[name] = requests[name] * fallback / 100
        elif ratio > 1.0:
            for name in missing:
                usage[name] = 0.0
    if scale_up_with_unready:
        for name in unready:
            usage[name] = 0.0
    new_ratio, _, _ = _ratio(usage, requests, target_utilization)
    if abs(1.0 - new_ratio) <= tolerance or (ratio < 1.0 < new_ratio) or (ratio > 1.0 > new_ratio):
        return Proposal(current_replicas, utilization, average, timestamp)
    replicas = math.ceil(new_ratio * len(usage))
    if (new_ratio < 1.0 and replicas > current_replicas) or (new_ratio > 1.0 and replicas < current_replicas):
        return Proposal(current_replicas, utilization, average, timestamp)
    return Proposal(replicas, utilization, average, timestamp)


# ----- normalization: stabilization and rate limits ---------------------------------------------


@dataclass
class History:
    """What the controller remembers per HPA between syncs (recommendations and scale events)."""

    recommendations: list[tuple[float, int]] = field(default_factory=list)
    scale_up_events: list[tuple[float, int]] = field(default_factory=list)
    scale_down_events: list[tuple[float, int]] = field(default_factory=list)


Condition = tuple[str, str, str, str]


def default_behavior(behavior: Obj | None) -> Obj | None:
    """`SetDefaults_HorizontalPodAutoscalerBehavior`: fill the unset rules and fields of a given behavior."""
    if behavior is None:
        return None
    out = dict(behavior)
    for key, defaults in (("scaleUp", DEFAULT_SCALE_UP), ("scaleDown", DEFAULT_SCALE_DOWN)):
        rules = dict(out.get(key) or {})
        for name, value in defaults.items():
            if rules.get(name) is None:
                rules[name] = [dict(p) for p in value] if isinstance(value, list) else value
        out[key] = rules
    return out


def _changes_in_period(events: list[tuple[float, int]], period: float, now: float) -> int:
    return sum(change for ts, change in events if ts > now - period)


def _scale_up_limit(current: int, events: list[tuple[float, int]], rules: Obj, now: float) -> int:
    """`calculateScaleUpLimitWithScalingRules`."""
    select = rules.get("selectPolicy") or "Max"
    if select == "Disabled":
        return current
    pick = min if select == "Min" else max
    result: int | None = None
    for policy in rules.get("policies") or []:
        start = current - _changes_in_period(events, policy["periodSeconds"], now)
        if policy["type"] == "Pods":
            proposed = start + policy["value"]
        else:
            proposed = math.ceil(start * (1 + policy["value"] / 100))
        result = proposed if result is None else pick(result, proposed)
    return result if result is not None else current


def _scale_down_limit(current: int, events: list[tuple[float, int]], rules: Obj, now: float) -> int:
    """`calculateScaleDownLimitWithBehaviors`."""
    select = rules.get("selectPolicy") or "Max"
    if select == "Disabled":
        return current
    pick = max if select == "Min" else min
    result: int | None = None
    for policy in rules.get("policies") or []:
        start = current + _changes_in_period(events, policy["periodSeconds"], now)
        if policy["type"] == "Pods":
            proposed = start - policy["value"]
        else:
            proposed = int(start * (1 - policy["value"] / 100))
        result = proposed if result is None else pick(result, proposed)
    return result if result is not None else current


def _record(history: History, now: float, desired: int, obsolete_before: float) -> None:
    """Replace one obsolete recommendation (or append) with this one."""
    for i, (ts, _) in enumerate(history.recommendations):
        if ts < obsolete_before:
            history.recommendations[i] = (now, desired)
            return
    history.recommendations.append((now, desired))


def normalize(
    history: History,
    *,
    now: float,
    current: int,
    desired: int,
    min_replicas: int,
    max_replicas: int,
    behavior: Obj | None,
    downscale_window: float,
) -> tuple[int, list[Condition]]:
    """Stabilize and limit a recommendation; return the replicas and the conditions to set."""
    conditions: list[Condition] = []
    if behavior is None:
        stabilized = desired
        for ts, rec in history.recommendations:
            if ts >= now - downscale_window and rec > stabilized:
                stabilized = rec
        _record(history, now, desired, now - downscale_window)
        conditions.append(("AbleToScale", "True", *(DOWN_STABILIZED if stabilized != desired else READY)))
        scale_up_limit = int(max(SCALE_UP_LIMIT_FACTOR * current, SCALE_UP_LIMIT_MINIMUM))
        if max_replicas > scale_up_limit:
            maximum, limited = scale_up_limit, UP_LIMIT
        else:
            maximum, limited = max_replicas, TOO_MANY
        if stabilized < min_replicas:
            result, limited = min_replicas, TOO_FEW
        elif stabilized > maximum:
            result = maximum
        else:
            result, limited = stabilized, WITHIN_RANGE
        conditions.append(("ScalingLimited", "False" if result == stabilized else "True", *limited))
        return result, conditions

    behavior = default_behavior(behavior) or {}
    up, down = behavior["scaleUp"], behavior["scaleDown"]
    up_window = float(up.get("stabilizationWindowSeconds") or 0)
    down_window = down.get("stabilizationWindowSeconds")
    down_window = downscale_window if down_window is None else float(down_window)
    if desired >= current:
        window, better, stabilizing = up_window, min, UP_STABILIZED
    else:
        window, better, stabilizing = down_window, max, DOWN_STABILIZED
    stabilized = desired
    for ts, rec in history.recommendations:
        if ts > now - window:
            stabilized = better(rec, stabilized)
    _record(history, now, desired, now - max(up_window, down_window))
    conditions.append(("AbleToScale", "True", *(stabilizing if stabilized != desired else READY)))
    result, limited = stabilized, WITHIN_RANGE
    if stabilized > current:
        limit = max(_scale_up_limit(current, history.scale_up_events, up, now), current)
        maximum, why = (limit, UP_LIMIT) if max_replicas > limit else (max_replicas, TOO_MANY)
        if stabilized > maximum:
            result, limited = maximum, why
    elif stabilized < current:
        limit = min(_scale_down_limit(current, history.scale_down_events, down, now), current)
        minimum, why = (limit, DOWN_LIMIT) if min_replicas < limit else (min_replicas, TOO_FEW)
        if stabilized < minimum:
            result, limited = minimum, why
    conditions.append(("ScalingLimited", "False" if result == stabilized else "True", *limited))
    return result, conditions


def record_scale_event(
    history: History, behavior: Obj | None, *, now: float, before: int, after: int
) -> None:
    """`storeScaleEvent`: remember a rescale for the behavior's rate policies (none without behavior)."""
    behavior = default_behavior(behavior)
    if behavior is None or before == after:
        return
    rules = behavior["scaleUp"] if after > before else behavior["scaleDown"]
    events = history.scale_up_events if after > before else history.scale_down_events
    longest = max((p["periodSeconds"] for p in rules.get("policies") or []), default=0)
    events[:] = [(ts, change) for ts, change in events if ts >= now - longest]
    events.append((now, abs(after - before)))
