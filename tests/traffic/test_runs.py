"""Dashboard runs: the form is validated and capped, one run per user and a total cap for all,
frames and snapshots carry what the page draws, and cluster views pushed by the watch hub's
traffic feed become rows and heatmap marks — also across a relist of 1,000 objects."""

from __future__ import annotations

import pytest
from django.test import override_settings

from dashboard.traffic.cluster import ClusterView, describe_changes
from dashboard.traffic.engine import LoadSpec, SpecError
from dashboard.traffic.runs import LoadCapReached, RunConflict, RunRegistry, parse_run_form
from tests.traffic.helpers import resolved_for, wait_until

FORM = {"target": "backend-service:80", "mode": "keepalive", "conns": "4", "rps": "100", "duration": "30"}


def test_form_is_parsed_into_a_capped_spec() -> None:
    target, spec = parse_run_form({**FORM, "max_per_conn": "25", "mode": "new-conn"})
    assert target == "backend-service:80"
    assert spec == LoadSpec(mode="new-conn", conns=4, rps=100.0, duration=30.0, max_per_conn=25)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"rps": "2001"}, "at most 2000 requests/s"),
        ({"conns": "65"}, "at most 64 connections"),
        ({"duration": "121"}, "at most 120 s"),
        ({"rps": "fast"}, "rate must be a whole number"),
        ({"conns": ""}, "connections is required"),
        ({"target": ""}, "choose a target"),
        ({"mode": "pipelined"}, "mode must be one of"),
        ({"max_per_conn": "-3"}, "max requests per connection"),
        ({"conns": "²"}, "connections must be a whole number \\(digits 0-9\\), not '²'"),
        ({"rps": "١٢"}, "rate must be a whole number"),
        ({"rps": "9" * 400}, "rate must be a whole number of at most 7 digits, not one of 400 digits"),
        ({"duration": "1e3"}, "duration must be a whole number"),
    ],
)
def test_bad_forms_are_refused_with_a_reason(change: dict[str, str], message: str) -> None:
    with pytest.raises(SpecError, match=message):
        parse_run_form({**FORM, **change})


@override_settings(LBDEMO_TRAFFIC_MAX_RPS=50, LBDEMO_TRAFFIC_MAX_CONNS=2, LBDEMO_TRAFFIC_MAX_SECONDS=5)
def test_caps_come_from_settings() -> None:
    with pytest.raises(SpecError, match="at most 50 requests/s"):
        parse_run_form({**FORM, "conns": "2", "duration": "5"})
    parse_run_form({**FORM, "rps": "50", "conns": "2", "duration": "5"})


def test_one_run_per_user_and_frames_carry_progress(three_pods) -> None:
    registry = RunRegistry()
    view = ClusterView(endpoints={"pod-a": "ready", "pod-b": "ready", "pod-c": "ready"}, deployments={})
    spec = LoadSpec(conns=2, rps=100, duration=20)
    run = registry.start(owner="u1", resolved=resolved_for(three_pods.url), spec=spec)
    run.cluster_update(view)
    try:
        with pytest.raises(RunConflict):
            registry.start(owner="u1", resolved=resolved_for(three_pods.url), spec=spec)
        other = registry.start(owner="u2", resolved=resolved_for(three_pods.url), spec=spec)
        other.cluster_update(view)
        wait_until(lambda: run.stats.requests >= 20 and len(run.stats.rows) == 3)
        frames = run.frames_since(0)
        assert frames, "the run cuts frames while it runs"
        assert frames[-1]["run"]["progress"]["done"] > 0
        assert [frame["seq"] for frame in frames] == list(range(1, len(frames) + 1))
        # Rows for all ready endpoints, even those the two keep-alive connections never reach.
        assert {row["pod"] for row in run.stats.snapshot()["rows"]} == {"pod-a", "pod-b", "pod-c"}
    finally:
        assert registry.stop("u1")
        registry.stop_all()
    assert run.state == "stopped" and other.state == "stopped"
    assert not registry.stop("u1")


def test_cluster_changes_become_rows_and_marks(three_pods) -> None:
    views = [
        ClusterView(
            endpoints={"pod-a": "ready", "pod-b": "ready", "pod-c": "ready"},
            deployments={"backend": (3, "t1")},
        )
    ]
    registry = RunRegistry()
    run = registry.start(
        owner="u1", resolved=resolved_for(three_pods.url), spec=LoadSpec(conns=1, rps=50, duration=30)
    )
    run.cluster_update(views[-1])
    try:
        wait_until(lambda: run.stats.requests >= 5 and len(run.stats.rows) == 3)
        run.cluster_update(
            ClusterView(
                endpoints={"pod-a": "ready", "pod-b": "ready", "pod-c": "ready", "pod-d": "ready"},
                deployments={"backend": (4, "t1")},
            )
        )
        wait_until(lambda: len(run.stats.markers) >= 2)
        labels = [marker["label"] for marker in run.stats.markers]
        assert "backend scaled 3→4" in labels and "pod-d added" in labels
        assert run.stats.rows["pod-d"].requests == 0
    finally:
        registry.stop_all()


def test_describe_changes_names_rollouts_and_kills() -> None:
    before = ClusterView(endpoints={}, deployments={"backend": (3, "t1")})
    after = ClusterView(endpoints={}, deployments={"backend": (3, "t2")})
    assert describe_changes(before, after, [("pod-a", "terminating"), ("pod-b", "not-ready")]) == [
        ("rollout", "backend rollout (revision t2)"),
        ("kill", "pod-a terminating"),
        ("unready", "pod-b not ready"),
    ]


@override_settings(LBDEMO_TRAFFIC_TOTAL_RPS=150, LBDEMO_TRAFFIC_TOTAL_CONNS=5)
def test_the_total_load_of_all_runs_is_capped(three_pods) -> None:
    registry = RunRegistry()
    try:
        registry.start(
            owner="u1", resolved=resolved_for(three_pods.url), spec=LoadSpec(conns=2, rps=100, duration=20)
        )
        with pytest.raises(
            LoadCapReached,
            match="at most 150 requests/s in all; 1 other run\\(s\\) already use 100: ask for at most 50",
        ):
            registry.start(
                owner="u2", resolved=resolved_for(three_pods.url), spec=LoadSpec(conns=2, rps=60, duration=20)
            )
        with pytest.raises(LoadCapReached, match="at most 5 connections in all"):
            registry.start(
                owner="u2", resolved=resolved_for(three_pods.url), spec=LoadSpec(conns=4, rps=50, duration=20)
            )
        assert registry.start(
            owner="u2", resolved=resolved_for(three_pods.url), spec=LoadSpec(conns=3, rps=50, duration=20)
        ).active
    finally:
        registry.stop_all()
