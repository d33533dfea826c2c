"""Pure aggregation: heatmap cells, pods that come and go, lanes, latency, evenness vs chance."""

from __future__ import annotations

import math
import random

import pytest

from dashboard.traffic.stats import LatencyHistogram, TrafficStats, chi_square_sf, split_evenness


def ok(
    stats: TrafficStats,
    t: float,
    pod: str,
    *,
    lane: int = 0,
    conn: int = 1,
    new: bool = False,
    latency: float = 0.001,
    status: int = 200,
) -> None:
    stats.observe(
        t=t, latency=latency, lane=lane, conn=conn, new_conn=new, pod=pod, status=status, error=None
    )


def test_requests_land_in_pod_by_time_bucket_cells() -> None:
    stats = TrafficStats(bucket=0.5)
    ok(stats, 0.1, "a", new=True)
    ok(stats, 0.2, "a")
    ok(stats, 0.7, "b", conn=2, new=True)
    snap = stats.snapshot()
    assert sorted(map(tuple, snap["cells"])) == [("a", 0, 2), ("b", 1, 1)]
    assert [row["pod"] for row in snap["rows"]] == ["a", "b"]


def test_delta_carries_only_changed_cells_with_absolute_counts() -> None:
    stats = TrafficStats(bucket=1.0)
    ok(stats, 0.1, "a", new=True)
    first = stats.take_delta()
    assert first["cells"] == [["a", 0, 1]]
    ok(stats, 0.5, "a")
    ok(stats, 1.5, "a")
    second = stats.take_delta()
    assert sorted(map(tuple, second["cells"])) == [("a", 0, 2), ("a", 1, 1)]
    assert stats.take_delta()["cells"] == []


def test_endpoint_rows_include_idle_ready_pods_and_mark_comings_and_goings() -> None:
    stats = TrafficStats()
    assert stats.set_endpoints(0.0, {"a": "ready", "b": "ready"}) == [("a", "added"), ("b", "added")]
    ok(stats, 0.5, "a", new=True)
    changes = stats.set_endpoints(2.0, {"a": "ready", "b": "unready", "c": "ready"})
    assert changes == [("b", "unready"), ("c", "added")]
    changes = stats.set_endpoints(3.0, {"a": "terminating", "c": "ready"})
    assert changes == [("a", "terminating"), ("b", "gone")]
    table = {row["pod"]: row for row in stats.pod_table()}
    assert table["b"]["gone"] == 3.0 and table["c"]["requests"] == 0
    # The one connection opened at 0.5 s, when a and b were the ready endpoints: each was
    # expected to get half of it; c joined later and was expected to get nothing.
    assert stats.eligible_pods() == ["a", "b"]
    assert table["a"]["even"] == pytest.approx(0.5) and table["b"]["even"] == pytest.approx(0.5)
    assert table["c"]["even"] is None


def test_expected_share_counts_each_connection_among_the_endpoints_ready_when_it_opened() -> None:
    stats = TrafficStats(bucket=0.25)
    stats.set_endpoints(0.0, {"a": "ready", "b": "ready"})
    for k in range(100):  # 0..10 s: a and b
        ok(stats, k / 10, "ab"[k % 2], conn=k + 1, new=True)
    stats.set_endpoints(10.0, {"a": "ready", "b": "ready", "c": "ready"})
    for k in range(100, 190):  # 10..19 s: a, b and c
        ok(stats, k / 10, "abc"[k % 3], conn=k + 1, new=True)
    stats.set_endpoints(19.0, {"a": "ready", "c": "ready", "b": "terminating"})
    for k in range(190, 200):  # 19..20 s: a and c
        ok(stats, k / 10, "ac"[k % 2], conn=k + 1, new=True)
    expected = stats.expected_connections()
    assert expected["a"] == pytest.approx(50 + 30 + 5)
    assert expected["b"] == pytest.approx(50 + 30)
    assert expected["c"] == pytest.approx(30 + 5)
    table = {row["pod"]: row for row in stats.pod_table()}
    assert sum(row["even"] for row in table.values()) == pytest.approx(1.0)
    split = stats.evenness()
    assert split["basis"] == "ready" and "ready when it opened" in str(split["basis_text"])
    assert split["even_share"] is None  # each pod has its own expected share
    # The share column is of every answered request, so it still sums to 100 %.
    assert sum(row["share"] for row in table.values()) == pytest.approx(1.0)


def fair_random_run_with_a_pod_joining(stats: TrafficStats, rng: random.Random, *, watched: bool,
                                       picker: str = "fair") -> None:
    """4,000 new connections over 20 s; pod d becomes ready at 8 s, pod a leaves at 15 s.
    ``picker`` "fair" chooses uniformly among the ready pods; "biased" prefers a 2:1."""
    ready = ["a", "b", "c"]
    if watched:
        stats.set_endpoints(0.0, dict.fromkeys(ready, "ready"))
    for k in range(4000):
        t = k / 200
        if t >= 8 and "d" not in ready:
            ready.append("d")
            if watched:
                stats.set_endpoints(t, dict.fromkeys(ready, "ready"))
        if t >= 15 and "a" in ready:
            ready.remove("a")
            if watched:
                stats.set_endpoints(t, {**dict.fromkeys(ready, "ready"), "a": "terminating"})
        weights = [2.0 if (picker == "biased" and pod == "a") else 1.0 for pod in ready]
        ok(stats, t, rng.choices(ready, weights)[0], lane=k % 8, conn=k + 1, new=True)


@pytest.mark.parametrize("watched", [True, False], ids=["dashboard", "cli"])
def test_fair_random_balancing_with_a_pod_joining_mid_run_is_not_significant(watched: bool) -> None:
    significant = 0
    for seed in range(20):
        stats = TrafficStats()
        fair_random_run_with_a_pod_joining(stats, random.Random(seed), watched=watched)
        split = stats.evenness()
        assert split["pods"] == 4
        p_value = split["p_value"]
        assert isinstance(p_value, float)
        significant += p_value < 0.01
    # At the 1 % level a fair Service is flagged about 1 time in 100; the naive 1/N over the
    # pods ready at the end flagged every one of these runs (p ~ 0).
    assert significant <= 1


@pytest.mark.parametrize("watched", [True, False], ids=["dashboard", "cli"])
def test_a_biased_picker_is_significant(watched: bool) -> None:
    stats = TrafficStats()
    fair_random_run_with_a_pod_joining(stats, random.Random(1), watched=watched, picker="biased")
    p_value = stats.evenness()["p_value"]
    assert isinstance(p_value, float) and p_value < 1e-6


def test_without_cluster_knowledge_the_even_split_is_over_pods_that_served() -> None:
    stats = TrafficStats()
    ok(stats, 0.1, "a", new=True)
    ok(stats, 0.2, "a")
    ok(stats, 0.3, "b", conn=2, new=True)
    assert stats.eligible_pods() == ["a", "b"]
    split = stats.evenness()
    assert split["basis"] == "served" and split["pods"] == 2
    assert split["max_deviation"] == pytest.approx(2 / 3 - 1 / 2)


def test_errors_are_counted_by_kind_and_5xx_from_status() -> None:
    stats = TrafficStats()
    stats.observe(t=0.1, latency=0.01, lane=0, conn=1, new_conn=True, pod=None, status=None, error="refused")
    stats.observe(t=0.2, latency=0.01, lane=0, conn=2, new_conn=True, pod=None, status=None, error="reset")
    stats.observe(t=0.3, latency=0.01, lane=0, conn=3, new_conn=True, pod="a", status=503, error=None)
    ok(stats, 0.4, "a", conn=3)
    summary = stats.summary()
    assert summary["errors"] == {"refused": 1, "reset": 1, "timeout": 0, "5xx": 1, "other": 0}
    assert summary["ok"] == 1 and summary["requests"] == 4
    assert summary["statuses"] == {"200": 1, "503": 1}


def test_lanes_show_each_connection_and_its_pod() -> None:
    stats = TrafficStats()
    ok(stats, 0.1, "a", lane=0, conn=1, new=True)
    ok(stats, 0.2, "a", lane=0, conn=1)
    ok(stats, 0.3, "b", lane=0, conn=3, new=True)
    ok(stats, 0.1, "c", lane=1, conn=2, new=True)
    lanes = {lane["lane"]: lane["segments"] for lane in stats.lane_view()}
    assert [(seg[0], seg[1], seg[4]) for seg in lanes[0]] == [(1, "a", 2), (3, "b", 1)]
    assert [(seg[0], seg[1]) for seg in lanes[1]] == [(2, "c")]


def test_latency_histogram_percentiles_are_within_two_percent() -> None:
    rng = random.Random(7)
    values = [rng.lognormvariate(-6, 1) for _ in range(20000)]
    hist = LatencyHistogram()
    for value in values:
        hist.add(value)
    ordered = sorted(values)
    for p in (50, 90, 99):
        exact = ordered[math.ceil(len(ordered) * p / 100) - 1]
        assert hist.percentile(p) == pytest.approx(exact, rel=0.021)
    assert hist.percentile(100) == max(values)


def test_chi_square_survival_matches_known_values() -> None:
    assert chi_square_sf(3.841, 1) == pytest.approx(0.05, abs=1e-3)
    assert chi_square_sf(5.991, 2) == pytest.approx(0.05, abs=1e-3)
    assert chi_square_sf(0.0, 3) == 1.0
    assert chi_square_sf(30.0, 2) == pytest.approx(math.exp(-15), rel=1e-6)


def test_evenness_uses_connections_for_the_spread_expected_by_chance() -> None:
    # One keep-alive connection: all requests on one of three pods is what chance gives.
    one = split_evenness({"a": 1000, "b": 0, "c": 0}, {"a": 1, "b": 0, "c": 0})
    assert one["max_deviation"] == pytest.approx(2 / 3)
    assert one["chance_sd"] == pytest.approx(math.sqrt(1 / 3 * 2 / 3 / 1))
    # 3000 independent connections split evenly: deviation tiny, chance small too.
    many = split_evenness({"a": 1000, "b": 1000, "c": 1000}, {"a": 1000, "b": 1000, "c": 1000})
    assert many["max_deviation"] == 0 and many["p_value"] == pytest.approx(1.0)
    assert many["chance_sd"] == pytest.approx(math.sqrt(1 / 3 * 2 / 3 / 3000))
    empty = split_evenness({}, {})
    assert empty["even_share"] is None


def test_markers_are_sent_once_in_deltas_and_kept_in_snapshots() -> None:
    stats = TrafficStats()
    stats.add_marker(1.25, "backend scaled 3→5", kind="scale")
    assert stats.take_delta()["markers"] == [{"t": 1.25, "label": "backend scaled 3→5", "kind": "scale"}]
    assert stats.take_delta()["markers"] == []
    assert stats.snapshot()["markers"][0]["kind"] == "scale"


def test_latency_per_time_slice_survives_settling() -> None:
    stats = TrafficStats(bucket=0.5)
    for ms in (1, 2, 3, 4, 100):
        ok(stats, 0.1, "a", latency=ms / 1000)
    first = stats.take_delta()
    assert first["latency_cells"] == [[0, 3.0, 100.0]]
    ok(stats, 2.0, "a", latency=0.005)
    stats.take_delta()  # cell 0 is now settled: only its percentiles are kept
    assert stats.snapshot()["latency_cells"] == [[0, 3.0, 100.0], [4, 5.0, 5.0]]


def test_lane_deltas_carry_only_connections_changed_since_the_last_one() -> None:
    stats = TrafficStats()
    ok(stats, 0.1, "a", lane=0, conn=1, new=True)
    ok(stats, 0.2, "b", lane=0, conn=2, new=True)
    assert [seg[0] for seg in stats.take_delta()["lanes"][0]["segments"]] == [1, 2]
    ok(stats, 0.3, "b", lane=0, conn=2)
    ok(stats, 0.4, "c", lane=0, conn=3, new=True)
    assert [seg[0] for seg in stats.take_delta()["lanes"][0]["segments"]] == [2, 3]
    assert stats.take_delta()["lanes"] == []
    assert [seg[0] for seg in stats.snapshot()["lanes"][0]["segments"]] == [1, 2, 3]
