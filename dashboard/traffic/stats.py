"""Pure aggregation of traffic samples: what the heatmap, the lanes and the tables show.

The engine calls :meth:`TrafficStats.observe` once per finished request; the CLI prints
:meth:`TrafficStats.summary` at the end and the dashboard streams :meth:`TrafficStats.snapshot`
followed by :meth:`TrafficStats.take_delta` frames. Nothing here does I/O or reads a clock:
every time is passed in (seconds since the run started), so the whole module is unit-testable.

The split "even or not" is judged the way a Service balances: one random choice per TCP
connection, among the endpoints that are ready *when the connection opens*. So each pod's
expected number of connections is the sum, over every new connection, of 1/N for the N endpoints
ready at that moment (a pod that joined half-way is expected to get half as much; a pod that left
is expected to get nothing after it left). The chi-square test compares the per-pod connection
counts with those expectations, and the spread expected by chance is the binomial standard
deviation of a pod's share over the number of *connections* (in new-connection mode that equals
the number of requests). Comparing with 1/N over the pods ready at the end — what an even share
naively means — reports a fair Service as unbalanced whenever a pod joined or left mid-run.

Which pods were ready when is known at a time-bucket resolution: from the cluster's endpoint
reports (:meth:`TrafficStats.set_endpoints`, the dashboard), counting a pod that opened a
connection in a bucket as ready there (the report may lag the proxy by a poll); without cluster
knowledge (the CLI), from the first to the last bucket in which each pod got a new connection.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

ERROR_KINDS = ("refused", "reset", "timeout", "5xx", "other")
PERCENTILES = (50, 90, 95, 99)
# Latency histogram: log buckets 2% wide from 10 us to ~2 min, so percentiles are exact to 2%.
_LAT_MIN = 1e-5
_LAT_STEP = math.log(1.02)
_LAT_BUCKETS = int(math.log(120 / _LAT_MIN) / _LAT_STEP) + 2
LANE_HISTORY = 24


@dataclass
class PodRow:
    """One heatmap row: a pod that served traffic or was a ready endpoint during the run."""

    name: str
    first: float
    ip: str = ""
    state: str | None = None  # endpoint state from the cluster; None when not known (the CLI)
    gone: float | None = None
    requests: int = 0
    conns: int = 0
    cells: dict[int, int] = field(default_factory=dict)


@dataclass
class LaneSegment:
    """A stretch of one client lane spent on one physical connection (hence one pod)."""

    conn: int
    pod: str | None
    start: float
    end: float
    requests: int = 0
    errors: int = 0


class LatencyHistogram:
    """Log-bucketed latency histogram: constant memory, percentiles to within 2 %."""

    def __init__(self) -> None:
        self.counts = [0] * _LAT_BUCKETS
        self.n = 0
        self.total = 0.0
        self.max = 0.0
        self.min = math.inf

    def add(self, seconds: float) -> None:
        """Count one latency in seconds."""
        index = 0 if seconds <= _LAT_MIN else min(int(math.log(seconds / _LAT_MIN) / _LAT_STEP) + 1,
                                                   _LAT_BUCKETS - 1)
        self.counts[index] += 1
        self.n += 1
        self.total += seconds
        self.max = max(self.max, seconds)
        self.min = min(self.min, seconds)

    def percentile(self, p: float) -> float:
        """The p-th percentile (0..100) in seconds, 0.0 when empty."""
        if not self.n:
            return 0.0
        rank = max(1, math.ceil(self.n * p / 100))
        seen = 0
        for index, count in enumerate(self.counts):
            seen += count
            if seen >= rank:
                upper = _LAT_MIN * math.exp(_LAT_STEP * index)
                return min(max(upper, self.min), self.max)
        return self.max

    def summary(self) -> dict[str, float]:
        """Percentiles, mean and max in milliseconds."""
        result = {f"p{p}": round(self.percentile(p) * 1000, 3) for p in PERCENTILES}
        result["mean"] = round(self.total / self.n * 1000, 3) if self.n else 0.0
        result["max"] = round(self.max * 1000, 3)
        result["min"] = round(self.min * 1000, 3) if self.n else 0.0
        return result


def chi_square_sf(statistic: float, dof: int) -> float:
    """P(X >= statistic) for a chi-square variable with ``dof`` degrees of freedom."""
    if dof <= 0:
        return 1.0
    if statistic <= 0:
        return 1.0
    return _upper_regularized_gamma(dof / 2.0, statistic / 2.0)


def _upper_regularized_gamma(a: float, x: float) -> float:
    """Q(a, x) by the series (x < a + 1) or Lentz's continued fraction (Numerical Recipes 6.2)."""
    log_prefix = -x + a * math.log(x) - math.lgamma(a)
    if x < a + 1:
        term = total = 1.0 / a
        denom = a
        for _ in range(500):
            denom += 1
            term *= x / denom
            total += term
            if abs(term) < abs(total) * 1e-14:
                break
        return max(0.0, 1.0 - total * math.exp(log_prefix))
    tiny = 1e-300
    b = x + 1 - a
    c = 1 / tiny
    d = 1 / b
    h = d
    for i in range(1, 500):
        an = -i * (i - a)
        b += 2
        d = an * d + b
        d = tiny if abs(d) < tiny else d
        c = b + an / c
        c = tiny if abs(c) < tiny else c
        d = 1 / d
        delta = d * c
        h *= delta
        if abs(delta - 1) < 1e-14:
            break
    return min(1.0, math.exp(log_prefix) * h)


def split_evenness(requests: dict[str, int], conns: dict[str, int],
                   expected: dict[str, float] | None = None) -> dict[str, float | int | None]:
    """How far the per-pod request split is from the expected one, beside the spread expected by chance.

    ``requests``/``conns`` map every eligible pod (zero counts included) to what it got;
    ``expected`` maps each to the connections it should have got (default: an equal number).
    ``even_share`` is 1/pods when the expectation is equal, else None (each pod has its own).
    """
    pods = len(requests)
    total = sum(requests.values())
    n_conns = sum(conns.values())
    if pods == 0 or total == 0:
        return {"pods": pods, "requests": total, "even_share": None, "max_deviation": None, "chance_sd": None,
                "connections": n_conns, "chi2": None, "p_value": None}
    if expected is None:
        expected = {pod: (n_conns / pods if n_conns else 1.0) for pod in requests}
    weight = sum(expected.values()) or 1.0
    shares = {pod: expected.get(pod, 0.0) / weight for pod in requests}
    equal = max(shares.values()) - min(shares.values()) < 1e-9
    deviation = max(abs(count / total - shares[pod]) for pod, count in requests.items())
    typical = 1.0 / pods
    chance = math.sqrt(typical * (1 - typical) / n_conns) if n_conns else None
    chi2 = p_value = None
    if pods > 1 and n_conns:
        scale = n_conns / weight
        chi2 = sum((conns.get(pod, 0) - expected[pod] * scale) ** 2 / (expected[pod] * scale)
                   for pod in requests if expected.get(pod, 0.0) > 0)
        p_value = chi_square_sf(chi2, pods - 1)
    return {"pods": pods, "requests": total, "even_share": typical if equal else None,
            "max_deviation": deviation, "chance_sd": chance, "connections": n_conns, "chi2": chi2,
            "p_value": p_value}


class TrafficStats:
    """Everything one traffic run has observed, aggregated for display.

    Pods become rows the first time they serve a request or are reported as ready endpoints
    (:meth:`set_endpoints`), so a new pod that gets no traffic still shows as an empty row.
    """

    def __init__(self, *, bucket: float = 0.25) -> None:
        self.bucket = bucket
        self.rows: dict[str, PodRow] = {}
        self.errors: Counter[str] = Counter()
        self.error_cells: dict[int, int] = {}
        self.statuses: Counter[int] = Counter()
        self.latency = LatencyHistogram()
        self.lanes: dict[int, list[LaneSegment]] = {}
        self.markers: list[dict[str, object]] = []
        self.requests = 0
        self.ok = 0
        self.unsent = 0
        self.dropped = 0
        self.connections = 0
        self.last_t = 0.0
        self.watching = False  # True once the cluster reports endpoints (the dashboard, not the CLI)
        self.conn_cells: dict[int, Counter[str]] = {}  # bucket -> new connections per pod
        self._ready_history: list[tuple[float, frozenset[str]]] = []  # (from t, ready endpoints)
        self._bucket_latencies: dict[int, list[float]] = {}  # cells still filling
        self._final_latency: dict[int, tuple[float, float]] = {}  # (p50, p99) ms of settled cells
        self._dirty_cells: set[tuple[str, int]] = set()
        self._dirty_errors: set[int] = set()
        self._dirty_rows: set[str] = set()
        self._dirty_lanes: dict[int, int] = {}  # lane -> first connection id changed since the last delta
        self._new_markers = 0
        self._dirty_latency: set[int] = set()

    # --- input -------------------------------------------------------------------------------
    def observe(self, *, t: float, latency: float, lane: int, conn: int, new_conn: bool,
                pod: str | None, pod_ip: str = "", status: int | None, error: str | None) -> None:
        """Record one finished request (``error`` is one of ERROR_KINDS or None)."""
        self.requests += 1
        self.last_t = max(self.last_t, t)
        cell = int(t / self.bucket)
        self._dirty_lanes.setdefault(lane, conn)
        segments = self.lanes.setdefault(lane, [])
        if not segments or segments[-1].conn != conn:
            segments.append(LaneSegment(conn=conn, pod=pod, start=t, end=t))
            del segments[:-LANE_HISTORY]
        segment = segments[-1]
        segment.end = t
        if status is not None:
            self.statuses[status] += 1
        if status is not None and status >= 500 and error is None:
            error = "5xx"
        if pod is not None and status is not None:
            row = self._row(pod, t)
            if pod_ip:
                row.ip = pod_ip
            row.requests += 1
            row.cells[cell] = row.cells.get(cell, 0) + 1
            self._dirty_cells.add((pod, cell))
            self._dirty_rows.add(pod)
            if new_conn:
                row.conns += 1
                self.connections += 1
                self.conn_cells.setdefault(cell, Counter())[pod] += 1
            if segment.pod is None:
                segment.pod = pod
            segment.requests += 1
        if error is None:
            self.ok += 1
            self.latency.add(latency)
            self._bucket_latencies.setdefault(cell, []).append(latency)
            self._dirty_latency.add(cell)
        else:
            self.errors[error] += 1
            self.error_cells[cell] = self.error_cells.get(cell, 0) + 1
            self._dirty_errors.add(cell)
            segment.errors += 1

    def note_dropped(self, *, t: float, conn: int) -> None:
        """Count an idle keep-alive connection the server closed without announcing it (no
        ``Connection: close``): what a pod that dies abruptly does to its clients' connections."""
        self.dropped += 1

    def set_endpoints(self, t: float, endpoints: dict[str, str]) -> list[tuple[str, str]]:
        """Update the pods behind the Service from the cluster: name -> ready/unready/terminating.

        Returns what changed as (pod, what) pairs, what in added/ready/unready/terminating/gone.
        """
        self.watching = True
        changes: list[tuple[str, str]] = []
        for name, state in endpoints.items():
            row = self.rows.get(name)
            if row is None:
                row = self._row(name, t)
                changes.append((name, "added"))
            if row.gone is not None:
                row.gone = None
                self._dirty_rows.add(name)
            if row.state != state:
                if row.state is not None or state != "ready":
                    changes.append((name, state))
                row.state = state
                self._dirty_rows.add(name)
        for name, row in self.rows.items():
            if name not in endpoints and row.gone is None and row.state is not None:
                row.gone = t
                row.state = "gone"
                self._dirty_rows.add(name)
                changes.append((name, "gone"))
        ready = frozenset(name for name, state in endpoints.items() if state == "ready")
        if not self._ready_history or self._ready_history[-1][1] != ready:
            self._ready_history.append((t, ready))
        return changes

    def add_marker(self, t: float, label: str, *, kind: str) -> None:
        """Mark a cluster change (scale, pod killed, rollout, ...) at time ``t``."""
        self.markers.append({"t": round(t, 3), "label": label, "kind": kind})
        self._new_markers += 1

    def _row(self, name: str, t: float) -> PodRow:
        row = self.rows.get(name)
        if row is None:
            row = self.rows[name] = PodRow(name=name, first=t)
            self._dirty_rows.add(name)
        return row

    # --- output ------------------------------------------------------------------------------
    def ready_at(self, t: float) -> frozenset[str]:
        """The ready endpoints the cluster last reported at or before ``t`` (empty before the first)."""
        ready: frozenset[str] = frozenset()
        for since, pods in self._ready_history:
            if since > t:
                break
            ready = pods
        return ready

    def expected_connections(self) -> dict[str, float]:
        """Each pod's expected number of new connections: every connection counts 1/N for the N
        pods ready in its time bucket (see the module docstring for how "ready" is known)."""
        expected: dict[str, float] = {}
        if not self.conn_cells:
            return expected
        spans: dict[str, tuple[int, int]] = {}
        if not self.watching:
            for cell in sorted(self.conn_cells):
                for pod in self.conn_cells[cell]:
                    first, _ = spans.get(pod, (cell, cell))
                    spans[pod] = (first, cell)
        for cell, opened in self.conn_cells.items():
            if self.watching:
                candidates = set(self.ready_at((cell + 0.5) * self.bucket)) | set(opened)
            else:
                candidates = {pod for pod, (first, last) in spans.items() if first <= cell <= last}
            share = sum(opened.values()) / len(candidates)
            for pod in candidates:
                expected[pod] = expected.get(pod, 0.0) + share
        return expected

    def eligible_pods(self) -> list[str]:
        """Pods the split is judged over: those that had an expected share of the connections
        (ready endpoints at some point while connections opened), in row order."""
        expected = self.expected_connections()
        return [name for name in self.rows if expected.get(name, 0.0) > 0]

    def evenness(self) -> dict[str, float | int | str | None]:
        """Deviation of the split among :meth:`eligible_pods` from the expected shares, with the
        spread expected by chance; ``basis`` says how the expectation was made."""
        expected = self.expected_connections()
        pods = [name for name in self.rows if expected.get(name, 0.0) > 0]
        split: dict[str, float | int | str | None] = dict(split_evenness(
            {p: self.rows[p].requests for p in pods}, {p: self.rows[p].conns for p in pods},
            {p: expected[p] for p in pods}))
        split["basis"] = "ready" if self.watching else "served"
        split["basis_text"] = (
            "each new connection expected equally among the endpoints ready when it opened"
            if self.watching else
            "each new connection expected equally among the pods serving new connections at the time "
            "(no cluster knowledge: a pod counts from its first to its last new connection)")
        return split

    def pod_table(self) -> list[dict[str, Any]]:
        """Per-pod totals in row order: share of all answered requests, and the expected share
        ("even") of the connections — from when the pod was a ready endpoint —, None for pods
        that were never expected to get any."""
        expected = self.expected_connections()
        weight = sum(expected.values())
        served = sum(row.requests for row in self.rows.values())
        return [
            {"pod": row.name, "ip": row.ip, "requests": row.requests, "conns": row.conns,
             "share": row.requests / served if served else 0.0,
             "even": expected[row.name] / weight if expected.get(row.name, 0.0) > 0 else None,
             "state": row.state, "gone": row.gone, "first": round(row.first, 3)}
            for row in self.rows.values()
        ]

    def lane_view(self, changed: dict[int, int] | None = None) -> list[dict[str, Any]]:
        """Each client lane's recent connections and the pod each was pinned to; with ``changed``
        (lane -> first changed connection id) only those lanes, from that connection on."""
        selected = sorted(self.lanes if changed is None else changed.keys() & self.lanes.keys())
        views = []
        for lane in selected:
            since = 0 if changed is None else changed[lane]
            views.append({"lane": lane, "segments": [
                [s.conn, s.pod, round(s.start, 3), round(s.end, 3), s.requests, s.errors]
                for s in self.lanes[lane] if s.conn >= since]})
        return views

    def _bucket_latency(self, cell: int) -> tuple[float, float]:
        final = self._final_latency.get(cell)
        if final is not None:
            return final
        values = self._bucket_latencies.get(cell, [])
        if not values:
            return (0.0, 0.0)
        ordered = sorted(values)
        p50 = ordered[min(len(ordered) - 1, len(ordered) // 2)]
        p99 = ordered[min(len(ordered) - 1, math.ceil(len(ordered) * 0.99) - 1)]
        return (round(p50 * 1000, 3), round(p99 * 1000, 3))

    def summary(self) -> dict[str, Any]:
        """The end-of-run numbers (also part of every live frame)."""
        return {
            "requests": self.requests,
            "ok": self.ok,
            "connections": self.connections,
            "unsent": self.unsent,
            "dropped": self.dropped,
            "errors": {kind: self.errors.get(kind, 0) for kind in ERROR_KINDS},
            "statuses": {str(code): count for code, count in sorted(self.statuses.items())},
            "latency_ms": self.latency.summary(),
            "pods": self.pod_table(),
            "split": self.evenness(),
        }

    def snapshot(self) -> dict[str, Any]:
        """Full state for a newly connected viewer; resets nothing."""
        return {
            "bucket": self.bucket,
            "rows": [self._row_meta(row) for row in self.rows.values()],
            "cells": [[name, cell, count] for name, row in self.rows.items()
                      for cell, count in row.cells.items()],
            "error_cells": [[cell, count] for cell, count in self.error_cells.items()],
            "latency_cells": [[cell, *self._bucket_latency(cell)]
                              for cell in sorted(self._final_latency.keys() | self._bucket_latencies.keys())],
            "lanes": self.lane_view(),
            "markers": list(self.markers),
            "summary": self.summary(),
        }

    def take_delta(self) -> dict[str, Any]:
        """What changed since the previous call (absolute values, so applying twice is harmless)."""
        delta = {
            "rows": [self._row_meta(self.rows[name]) for name in self._dirty_rows],
            "cells": [[name, cell, self.rows[name].cells[cell]] for name, cell in self._dirty_cells],
            "error_cells": [[cell, self.error_cells[cell]] for cell in self._dirty_errors],
            "latency_cells": [[cell, *self._bucket_latency(cell)] for cell in sorted(self._dirty_latency)],
            "lanes": self.lane_view(self._dirty_lanes),
            "markers": self.markers[len(self.markers) - self._new_markers:] if self._new_markers else [],
            "summary": self.summary(),
        }
        self._dirty_rows.clear()
        self._dirty_cells.clear()
        self._dirty_errors.clear()
        self._dirty_lanes.clear()
        self._dirty_latency.clear()
        self._new_markers = 0
        self._settle_latency()
        return delta

    def _settle_latency(self) -> None:
        """Keep only (p50, p99) of cells that can no longer change (answers land at "now")."""
        current = int(self.last_t / self.bucket)
        for cell in [cell for cell in self._bucket_latencies if cell < current - 1]:
            self._final_latency[cell] = self._bucket_latency(cell)
            del self._bucket_latencies[cell]

    @staticmethod
    def _row_meta(row: PodRow) -> dict[str, Any]:
        return {"pod": row.name, "ip": row.ip, "first": round(row.first, 3), "state": row.state,
                "gone": None if row.gone is None else round(row.gone, 3)}
