"""The lesson checks as pure functions of a recorded history (no cluster): what passes, what
stays pending, what fails, and the figures they report."""

from __future__ import annotations

from dashboard.cache import ClusterCache
from dashboard.lessons import checks
from dashboard.lessons.checks import Context, PodServed, RunRecord
from dashboard.lessons.history import ClusterHistory
from dashboard.objects import parse_selector
from dashboard.presenters import Scope

SCOPE = Scope(
    namespace="default",
    deployment="backend",
    service="backend-service",
    selector=parse_selector("app=backend"),
    max_replicas=10,
)
RS_UID = "rs-1"


def pod(
    name: str,
    *,
    ip: str,
    ready: bool,
    app: str = "backend",
    owner: str | None = RS_UID,
    deleting: bool = False,
    status: str = "Running",
) -> dict:
    """A pod object as the API returns it (just the fields the history reads)."""
    metadata: dict = {"name": name, "uid": f"uid-{name}", "labels": {"app": app, "pod-template-hash": "h1"}}
    if owner:
        metadata["ownerReferences"] = [
            {"kind": "ReplicaSet", "name": "backend-h1", "uid": owner, "controller": True}
        ]
    if deleting:
        metadata["deletionTimestamp"] = "2026-12-01T00:00:00Z"
    waiting = {"waiting": {"reason": status}} if status != "Running" else {"running": {}}
    return {
        "metadata": metadata,
        "spec": {"containers": [{"name": "backend", "image": "lb-demo"}]},
        "status": {
            "phase": "Running" if status == "Running" else "Pending",
            "podIP": ip,
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
            "containerStatuses": [{"name": "backend", "ready": ready, "state": waiting}],
        },
    }


def slice_of(ready: dict[str, bool]) -> dict:
    """The Service's EndpointSlice listing pods and their readiness."""
    return {
        "metadata": {
            "name": "backend-service-abc",
            "labels": {"kubernetes.io/service-name": "backend-service"},
        },
        "endpoints": [
            {"addresses": ["x"], "conditions": {"ready": r}, "targetRef": {"kind": "Pod", "name": n}}
            for n, r in ready.items()
        ],
    }


def deployment(replicas: int, ready: int) -> dict:
    return {
        "metadata": {"name": "backend", "generation": 1},
        "spec": {"replicas": replicas, "template": {"spec": {"containers": [{"image": "lb-demo"}]}}},
        "status": {"readyReplicas": ready},
    }


class Recorder:
    """Feeds a history the way the hub does: apply to a cache, then observe the change."""

    def __init__(self) -> None:
        self.cache = ClusterCache()
        self.history = ClusterHistory(scope=SCOPE)

    def at(self, t: float, kind: str, obj: dict, event: str = "MODIFIED") -> None:
        change = self.cache.apply(
            kind,
            "ADDED"
            if self.cache.get(kind, obj["metadata"]["name"]) is None and event != "DELETED"
            else event,
            obj,
            observed=t,
        )
        if change is not None:
            self.history.observe([change], self.cache)

    def ctx(self, since: float, now: float, runs: list[RunRecord] | None = None) -> Context:
        return Context(since=since, now=now, history=self.history, runs=runs or [])


def steady(rec: Recorder) -> None:
    """Three ready backend pods behind the Service at t=0, and the frontend pod."""
    rec.at(0, "Deployment", deployment(3, 3))
    for i in range(3):
        rec.at(0, "Pod", pod(f"b{i}", ip=f"10.0.0.{i}", ready=True))
    rec.at(0, "Pod", pod("frontend", ip="10.0.0.9", ready=True, app="frontend", owner=None))
    rec.at(0, "EndpointSlice", slice_of({"b0": True, "b1": True, "b2": True}))


def test_a_kill_and_its_ready_replacement_pass_with_the_measured_time() -> None:
    rec = Recorder()
    steady(rec)
    rec.at(10, "Pod", pod("b0", ip="10.0.0.0", ready=True, deleting=True))
    rec.at(10.2, "Pod", pod("b3", ip="10.0.0.5", ready=False, status="ContainerCreating"))
    rec.at(10.3, "EndpointSlice", slice_of({"b1": True, "b2": True, "b3": False}))
    assert checks.pod_replaced(rec.ctx(5, 12)) is None, "not Ready yet: pending"
    rec.at(13.4, "Pod", pod("b3", ip="10.0.0.5", ready=True))
    verdict = checks.pod_replaced(rec.ctx(5, 14))
    assert verdict is not None and verdict.passed
    assert "b3 Ready 3.4 s after b0 was killed" in verdict.figure and "(was 10.0.0.0)" in verdict.figure
    assert checks.pod_replaced(rec.ctx(11, 14)) is None, "the kill happened before the lesson started"


def test_a_scale_down_is_not_a_kill() -> None:
    rec = Recorder()
    steady(rec)
    rec.at(10, "Deployment", deployment(2, 3))
    rec.at(10.1, "Pod", pod("b0", ip="10.0.0.0", ready=True, deleting=True))
    rec.at(20, "Deployment", deployment(3, 2))
    rec.at(20.2, "Pod", pod("b4", ip="10.0.0.6", ready=True))  # a later scale-up's pod
    assert checks.pod_replaced(rec.ctx(5, 25)) is None


def run(
    started: float,
    ended: float,
    *,
    mode: str = "new-conn",
    pods: dict[str, dict[int, int]],
    conns: int = 4,
    connections: int | None = None,
    failed: int = 0,
) -> RunRecord:
    served = {
        name: PodServed(requests=sum(cells.values()), conns=sum(cells.values()), cells=cells)
        for name, cells in pods.items()
    }
    total = sum(p.requests for p in served.values())
    return RunRecord(
        owner=1,
        mode=mode,
        conns=conns,
        max_per_conn=0,
        service="backend-service",
        started=started,
        ended=ended,
        bucket=0.25,
        requests=total + failed,
        ok=total,
        failed=failed,
        connections=total if connections is None else connections,
        pods=served,
        p_value=0.5,
    )


def test_a_starting_pod_that_answered_while_not_ready_fails_the_readiness_check() -> None:
    rec = Recorder()
    steady(rec)
    rec.at(21, "Pod", pod("b3", ip="10.0.0.5", ready=False, status="ContainerCreating"))
    rec.at(21.1, "EndpointSlice", slice_of({"b0": True, "b1": True, "b2": True, "b3": False}))
    rec.at(25, "Pod", pod("b3", ip="10.0.0.5", ready=True))
    rec.at(25.1, "EndpointSlice", slice_of({"b0": True, "b1": True, "b2": True, "b3": True}))
    busy = {cell: 10 for cell in range(120)}  # 20..50 s, 10 requests per bucket on each old pod
    quiet = run(20, 50, pods={"b0": busy, "b1": busy, "b2": busy, "b3": {cell: 3 for cell in range(25, 120)}})
    verdict = checks.starting_pod_no_traffic(rec.ctx(15, 51, [quiet]))
    assert verdict is not None and verdict.passed and "got 0 of the" in verdict.figure
    # The same run, but b3 answered in the middle of its not-ready time (bucket 10 = 22.5 s).
    leaky = run(
        20, 50, pods={"b0": busy, "b1": busy, "b2": busy, "b3": {10: 2, **{c: 3 for c in range(25, 120)}}}
    )
    verdict = checks.starting_pod_no_traffic(rec.ctx(15, 51, [leaky]))
    assert (
        verdict is not None
        and not verdict.passed
        and "got 2 requests while it was starting" in verdict.figure
    )
    assert checks.starting_pod_no_traffic(rec.ctx(15, 51)) is None, "no run: pending"
    pinned = run(20, 50, mode="keepalive", pods={"b0": busy, "b1": busy, "b2": busy}, connections=4)
    assert checks.starting_pod_no_traffic(rec.ctx(15, 51, [pinned])) is None, "keep-alive proves nothing here"


def test_the_keepalive_check_fails_on_a_run_of_new_connections() -> None:
    rec = Recorder()
    steady(rec)
    cells = {cell: 20 for cell in range(40)}
    fresh = run(10, 20, mode="new-conn", pods={"b0": cells, "b1": cells})
    verdict = checks.keepalive_pinned(rec.ctx(5, 21, [fresh]))
    assert verdict is not None and not verdict.passed
    pinned = run(30, 40, mode="keepalive", pods={"b0": cells, "b1": cells}, connections=4)
    verdict = checks.keepalive_pinned(rec.ctx(5, 41, [fresh, pinned]))
    assert verdict is not None and verdict.passed and "4 connections carried 1600 requests" in verdict.figure


def test_the_frontend_check_needs_a_run_while_the_frontend_pod_was_ready() -> None:
    rec = Recorder()
    steady(rec)
    cells = {cell: 20 for cell in range(40)}
    verdict = checks.frontend_no_traffic(rec.ctx(5, 21, [run(10, 20, pods={"b0": cells})]))
    assert verdict is not None and verdict.passed and "0 of 800 requests reached frontend" in verdict.figure
    verdict = checks.frontend_no_traffic(
        rec.ctx(5, 21, [run(10, 20, pods={"b0": cells, "frontend": {1: 1}})])
    )
    assert verdict is not None and not verdict.passed
    assert checks.frontend_no_traffic(rec.ctx(5, 21, [run(10, 20, pods={"b0": {0: 10}})])) is None, (
        "too small"
    )


def test_pods_present_when_the_history_starts_are_never_taken_for_replacements() -> None:
    """The engine may start (and seed its history from the cache) a moment before a kill: the
    pods already running then were not created during the lesson."""
    rec = Recorder()
    rec.cache.apply("Deployment", "ADDED", deployment(3, 3), observed=0)
    for i in range(3):
        obj = pod(f"b{i}", ip=f"10.0.0.{i}", ready=True)
        obj["metadata"]["creationTimestamp"] = "2026-12-01T09:00:00Z"
        rec.cache.apply("Pod", "ADDED", obj, observed=0)
    rec.history.seed(rec.cache, 5_000_000_000.0)
    rec.at(5_000_000_000.1, "Pod", pod("b0", ip="10.0.0.0", ready=True, deleting=True))
    assert checks.pod_replaced(rec.ctx(5_000_000_000.0, 5_000_000_001.0)) is None


def test_one_connection_stays_on_one_pod_through_the_service_and_spreads_through_the_ingress() -> None:
    import dataclasses

    rec = Recorder()
    steady(rec)
    pinned = run(10, 18, mode="keepalive", conns=1, connections=1, pods={"b1": {c: 20 for c in range(30)}})
    spread = dataclasses.replace(
        run(
            20,
            28,
            mode="keepalive",
            conns=1,
            connections=1,
            pods={f"b{i}": {c: 7 for c in range(30)} for i in range(3)},
        ),
        via="Ingress",
    )
    service = checks.service_one_connection_one_pod(rec.ctx(5, 30, [pinned, spread]))
    assert service is not None and service.passed and "all 600 requests reached b1" in service.figure
    ingress = checks.ingress_one_connection_every_pod(rec.ctx(5, 30, [pinned, spread]))
    assert ingress is not None and ingress.passed and "spread over 3 pods" in ingress.figure
    assert checks.ingress_one_connection_every_pod(rec.ctx(5, 30, [pinned])) is None, "no Ingress run yet"
    stuck = dataclasses.replace(pinned, via="Ingress")
    verdict = checks.ingress_one_connection_every_pod(rec.ctx(5, 30, [stuck]))
    assert verdict is not None and not verdict.passed


def hpa_event(t: float, message: str) -> dict:
    return {
        "metadata": {"name": f"backend.{t}", "uid": f"e{t}"},
        "reason": "SuccessfulRescale",
        "count": 1,
        "involvedObject": {"kind": "HorizontalPodAutoscaler", "name": "backend"},
        "message": message,
    }


def test_autoscaling_checks_read_the_hpa_rescale_events_and_the_new_pods_traffic() -> None:
    rec = Recorder()
    steady(rec)
    assert checks.hpa_scaled_up(rec.ctx(5, 10)) is None
    rec.at(
        20,
        "Event",
        hpa_event(20, "New size: 5; reason: cpu resource utilization (percentage of request) above target"),
        event="ADDED",
    )
    rec.at(21, "Pod", pod("b3", ip="10.0.0.5", ready=True))
    heavy = run(10, 70, pods={"b0": {c: 5 for c in range(240)}, "b3": {c: 5 for c in range(60, 240)}})
    up = checks.hpa_scaled_up(rec.ctx(5, 75, [heavy]))
    assert up is not None and up.passed and "above target, 10 s into the traffic run" in up.figure
    served = checks.new_pods_took_requests(rec.ctx(5, 75, [heavy]))
    assert served is not None and served.passed and "1 new pod took 900" in served.figure
    assert checks.hpa_scaled_down(rec.ctx(5, 75, [heavy])) is None
    rec.at(105, "Event", hpa_event(105, "New size: 1; reason: All metrics below target"), event="ADDED")
    down = checks.hpa_scaled_down(rec.ctx(5, 110, [heavy]))
    assert down is not None and down.passed and "35 s after the traffic stopped" in down.figure
