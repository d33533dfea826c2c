"""The HPA's arithmetic against the cases Kubernetes' own replica calculator and normalizer handle."""

from __future__ import annotations

import pytest

from sandbox.controllers.hpa_algorithm import (
    History,
    MetricsError,
    PodInfo,
    PodMetric,
    default_behavior,
    normalize,
    record_scale_event,
    resource_replicas,
)

NOW = 10_000.0


def pods(n: int, **kw: object) -> list[PodInfo]:
    return [PodInfo(f"p{i}", start_time=NOW - 600, ready_since=NOW - 590, **kw) for i in range(n)]  # type: ignore[arg-type]


def usage(*milli: float) -> dict[str, PodMetric]:
    return {f"p{i}": PodMetric(m, NOW - 1, 5.0) for i, m in enumerate(milli)}


def scale(
    history: History,
    *,
    now: float,
    current: int,
    desired: int,
    behavior: dict | None = None,
    window: int = 300,
) -> tuple[int, list[tuple[str, str, str, str]]]:
    """normalize() for an HPA with min 1 and max 10 replicas (the cases below vary the rest)."""
    return normalize(
        history,
        now=now,
        current=current,
        desired=desired,
        min_replicas=1,
        max_replicas=10,
        behavior=behavior,
        downscale_window=window,
    )


@pytest.mark.parametrize(
    ("current", "milli", "expected", "utilization"),
    [
        (1, [100], 2, 100),  # 100% of a 100m request at target 50% -> ceil(1 x 2)
        (3, [60, 50, 40], 3, 50),  # exactly on target
        (3, [54, 54, 54], 3, 54),  # within the 0.1 tolerance: no change
        (3, [60, 60, 60], 4, 60),  # ratio 1.2 -> ceil(3.6)
        (4, [10, 10, 10, 10], 1, 10),  # ratio 0.2 -> ceil(0.8)
        (1, [1000], 20, 1000),  # the proposal is not capped here (normalize does that)
    ],
)
def test_desired_is_ceil_of_current_times_ratio(
    current: int, milli: list[float], expected: int, utilization: int
) -> None:
    proposal = resource_replicas(current, 50, pods(len(milli)), usage(*milli), now=NOW)
    assert (proposal.replicas, proposal.utilization) == (expected, utilization)
    assert proposal.average_milli == int(sum(milli) // len(milli))


def test_unready_pods_count_as_idle_when_scaling_up() -> None:
    group = [*pods(2), PodInfo("p2", ready=False, start_time=NOW - 10, ready_since=NOW - 10)]
    proposal = resource_replicas(3, 50, group, usage(100, 100, 500), now=NOW, cpu_initialization_period=30)
    # ratio from the ready pods is 2.0; with the starting pod at 0 it is 200/300*100/50 = 1.33 -> ceil(4.0)
    assert proposal.replicas == 4 and proposal.utilization == 100


def test_missing_metrics_count_as_full_request_when_scaling_down() -> None:
    proposal = resource_replicas(3, 50, pods(3), usage(10, 10), now=NOW)
    # without p2: ratio 0.2; p2 assumed at 100% -> (10+10+100)/300 = 40% -> ratio 0.8 -> ceil(2.4)
    assert proposal.replicas == 3


def test_deleting_and_failed_pods_are_ignored() -> None:
    group = [*pods(1), PodInfo("p1", deleting=True, start_time=NOW - 600), PodInfo("p2", phase="Failed")]
    assert resource_replicas(3, 50, group, usage(100, 900, 900), now=NOW).replicas == 2


def test_errors_use_kubernetes_messages() -> None:
    with pytest.raises(MetricsError, match=r"^no pods returned by selector while calculating replica count$"):
        resource_replicas(1, 50, [], usage(1), now=NOW)
    with pytest.raises(MetricsError, match="no metrics returned from resource metrics API"):
        resource_replicas(1, 50, pods(1), {}, now=NOW)
    with pytest.raises(MetricsError, match=r"^missing request for cpu in container backend of Pod p0$"):
        resource_replicas(
            1, 50, pods(1, request_milli=None, missing_request_container="backend"), usage(5), now=NOW
        )


def test_without_behavior_scale_up_is_limited_to_double_or_four() -> None:
    replicas, conditions = scale(History(), now=NOW, current=1, desired=20)
    assert replicas == 4
    assert (
        "ScalingLimited",
        "True",
        "ScaleUpLimit",
        "the desired replica count is increasing faster than the maximum scale rate",
    ) in conditions
    replicas, conditions = scale(History(), now=NOW, current=8, desired=20)
    assert replicas == 10
    assert conditions[-1][2] == "TooManyReplicas"


def test_scale_down_waits_for_the_stabilization_window() -> None:
    history = History()
    scale(history, now=NOW, current=4, desired=4, window=30)
    replicas, conditions = scale(history, now=NOW + 10, current=4, desired=1, window=30)
    assert replicas == 4 and conditions[0][2] == "ScaleDownStabilized"
    replicas, conditions = scale(history, now=NOW + 41, current=4, desired=1, window=30)
    assert replicas == 1
    assert conditions == [
        ("AbleToScale", "True", "ReadyForNewScale", "recommended size matches current size"),
        ("ScalingLimited", "False", "DesiredWithinRange", "the desired count is within the acceptable range"),
    ]
    replicas, conditions = scale(History(), now=NOW, current=2, desired=0, window=0)
    assert replicas == 1 and conditions[-1][2] == "TooFewReplicas"


def test_behavior_policies_limit_the_rate_per_period() -> None:
    behavior = {
        "scaleUp": {"policies": [{"type": "Pods", "value": 1, "periodSeconds": 60}]},
        "scaleDown": {
            "stabilizationWindowSeconds": 0,
            "policies": [{"type": "Percent", "value": 50, "periodSeconds": 60}],
        },
    }
    history = History()
    replicas, conditions = scale(history, now=NOW, current=2, desired=8, behavior=behavior)
    assert replicas == 3 and conditions[-1][2] == "ScaleUpLimit"
    record_scale_event(history, behavior, now=NOW, before=2, after=3)
    replicas, _ = scale(history, now=NOW + 10, current=3, desired=8, behavior=behavior)
    assert replicas == 3  # one pod per minute already used
    replicas, _ = scale(history, now=NOW + 61, current=3, desired=8, behavior=behavior)
    assert replicas == 4
    replicas, conditions = scale(History(), now=NOW, current=8, desired=1, behavior=behavior)
    assert replicas == 4 and conditions[-1][2] == "ScaleDownLimit"
    disabled = {"scaleDown": {"selectPolicy": "Disabled"}}
    assert scale(History(), now=NOW, current=5, desired=1, behavior=disabled, window=0)[0] == 5


def test_default_behavior_fills_what_is_unset() -> None:
    filled = default_behavior({"scaleDown": {"stabilizationWindowSeconds": 60}})
    assert filled is not None
    assert filled["scaleUp"]["stabilizationWindowSeconds"] == 0
    assert filled["scaleUp"]["selectPolicy"] == "Max"
    assert [p["type"] for p in filled["scaleUp"]["policies"]] == ["Pods", "Percent"]
    assert filled["scaleDown"] == {
        "stabilizationWindowSeconds": 60,
        "selectPolicy": "Max",
        "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}],
    }
    assert default_behavior(None) is None
