"""Snapshots and deltas as the page receives them: the same partials, the smallest swaps."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import pytest

from dashboard import podgroups, presenters, stream
from dashboard.cache import ClusterCache
from dashboard.objects import parse_selector
from dashboard.presenters import Scope
from dashboard.stream import FrameBuilder, ViewInput
from tests.dashboard.canned import pod, present

NOW = datetime(2026, 11, 24, 21, 10, tzinfo=UTC)
SCOPE = Scope(
    namespace="default",
    deployment="backend",
    service="backend-service",
    selector=parse_selector("app=backend"),
    max_replicas=10,
)


@pytest.fixture(autouse=True)
def fresh_error_log() -> None:
    """Section failures are logged once per process: start each test with none logged."""
    stream._logged.clear()


def node(name: str) -> dict:
    return {
        "metadata": {"name": name, "resourceVersion": "1"},
        "status": {"conditions": [{"type": "Ready", "status": "True"}]},
    }


def slice_with(*names: str, ready: bool = True) -> dict:
    return {
        "metadata": {
            "name": "backend-service-abc",
            "resourceVersion": "".join(names) + str(ready),
            "labels": {"kubernetes.io/service-name": "backend-service"},
        },
        "ports": [{"port": 8080}],
        "endpoints": [
            {
                "addresses": [f"127.244.0.{i}"],
                "conditions": {"ready": ready},
                "targetRef": {"kind": "Pod", "name": n},
            }
            for i, n in enumerate(names)
        ],
    }


def seeded() -> ClusterCache:
    cache = ClusterCache()
    cache.replace("Node", [node("node-1"), node("node-2")], observed=1.0)
    cache.replace(
        "Pod",
        [pod("backend-a", "1"), pod("frontend", "2", labels={"app": "frontend"}, owner="")],
        observed=1.0,
    )
    return cache


def view_of(cache: ClusterCache) -> ViewInput:
    seq, objects = cache.snapshot()
    return ViewInput(objects, seq=seq, scope=SCOPE, now=NOW, timeline=[])


def snapshot(builder: FrameBuilder, cache: ClusterCache) -> tuple[int, str]:
    return cache.seq, "".join(builder.snapshot(view_of(cache)))


def frame(builder: FrameBuilder, cache: ClusterCache, since: int) -> str:
    return "".join(builder.delta(present(cache.changes_since(since)), view_of(cache)))


def test_snapshot_renders_every_section_with_the_pods_in_their_groups() -> None:
    builder = FrameBuilder(SCOPE)
    seq, html = snapshot(builder, seeded())
    for dom_id in (
        "status",
        "deployment",
        "replicasets",
        "nodes",
        "other-pods",
        "service",
        "endpoints",
        "events",
        "timeline",
    ):
        assert f'id="{dom_id}"' in html
    assert html.index('id="pod-uid-backend-a"') > html.index('id="pods-node-1-')
    assert html.index('id="pod-uid-frontend"') > html.index('id="pods-other"')
    assert f'data-seq="{seq}"' in html


def test_new_pod_is_appended_to_its_node_and_a_change_replaces_the_card() -> None:
    cache, builder = seeded(), FrameBuilder(SCOPE)
    seq, _ = snapshot(builder, cache)
    cache.apply(
        "Pod",
        "ADDED",
        pod("backend-b", "5", node="node-2", phase="Pending", waiting="ContainerCreating", ready=False),
        observed=2.0,
    )
    html = frame(builder, cache, seq)
    assert 'hx-swap-oob="beforeend"' in html and "ContainerCreating" in html
    seq = cache.seq
    cache.apply("Pod", "MODIFIED", pod("backend-b", "6", node="node-2"), observed=3.0)
    html = frame(builder, cache, seq)
    assert 'id="pod-uid-backend-b"' in html and 'hx-swap-oob="true"' in html and "beforeend" not in html
    assert "Running" in html


def test_deleted_pod_leaves_with_a_ghost_and_escape_is_kept() -> None:
    cache, builder = seeded(), FrameBuilder(SCOPE)
    seq, _ = snapshot(builder, cache)
    cache.apply("Pod", "DELETED", pod("backend-a", "9"), observed=2.0)
    html = frame(builder, cache, seq)
    assert 'class="pod-card status-ok endpoint-none leaving"' in html


def test_scheduling_moves_the_card_between_groups() -> None:
    cache, builder = seeded(), FrameBuilder(SCOPE)
    cache.apply("Pod", "ADDED", pod("backend-c", "3", node=""), observed=1.0)
    seq, _ = snapshot(builder, cache)
    cache.apply("Pod", "MODIFIED", pod("backend-c", "4", node="node-2"), observed=2.0)
    html = frame(builder, cache, seq)
    assert 'id="pod-uid-backend-c" hx-swap-oob="delete"' in html
    assert html.index('hx-swap-oob="beforeend"') > html.index('hx-swap-oob="delete"')


def test_a_new_node_regroups_and_endpoint_changes_rerender_cards() -> None:
    cache, builder = seeded(), FrameBuilder(SCOPE)
    seq, _ = snapshot(builder, cache)
    cache.apply("EndpointSlice", "ADDED", slice_with("backend-a"), observed=2.0)
    html = frame(builder, cache, seq)
    assert 'id="endpoints"' in html and "endpoint: ready" in html
    seq = cache.seq
    cache.apply("Node", "ADDED", node("node-3"), observed=3.0)
    html = frame(builder, cache, seq)
    assert 'id="nodes" class="nodes" hx-swap-oob="true"' in html and "node-3" in html


def test_cluster_strings_are_escaped() -> None:
    cache = ClusterCache()
    evil = pod("backend-x", "1", labels={"app": "backend", "x": "<script>alert(1)</script>"})
    cache.replace("Pod", [evil], observed=1.0)
    cache.replace(
        "Event",
        [
            {
                "metadata": {"name": "e1", "resourceVersion": "1"},
                "reason": "<b>Boom</b>",
                "message": '"><img src=x onerror=alert(1)>',
                "involvedObject": {"kind": "Pod", "name": "backend-x"},
            }
        ],
        observed=1.0,
    )
    html = snapshot(FrameBuilder(SCOPE), cache)[1]
    assert "<script>" not in html and "<img" not in html and "<b>Boom" not in html
    assert "&lt;script&gt;" in html


def test_the_service_card_follows_the_endpoints_that_resolve_its_named_target_port() -> None:
    cache, builder = seeded(), FrameBuilder(SCOPE)
    service = {"metadata": {"name": "backend-service", "resourceVersion": "3"},
               "spec": {"type": "NodePort", "clusterIP": "127.96.0.2", "selector": {"app": "backend"},
                        "ports": [{"name": "http", "port": 80, "targetPort": "http", "nodePort": 30080}]}}
    cache.replace("Service", [service], observed=1.0)
    seq, html = snapshot(builder, cache)
    assert "targetPort</span> <code class=\"target-port\">http</code>" in html
    named = slice_with("backend-a")
    named["ports"] = [{"name": "http", "port": 8080}]
    cache.replace("EndpointSlice", [named], observed=2.0)
    html = frame(builder, cache, seq)
    assert 'id="service"' in html and '<code class="target-port">http (8080)</code>' in html
    seq = cache.seq
    moved = slice_with("backend-a", "backend-b")  # same resolved port: the card is not re-sent
    moved["ports"] = [{"name": "http", "port": 8080}]
    cache.replace("EndpointSlice", [moved], observed=3.0)
    html = frame(builder, cache, seq)
    assert 'id="endpoints"' in html and 'id="service"' not in html


def test_a_node_heartbeat_sends_no_pod_section_and_a_ready_flip_only_the_heading() -> None:
    cache, builder = seeded(), FrameBuilder(SCOPE)
    seq, _ = snapshot(builder, cache)
    beat = node("node-1")
    beat["metadata"]["resourceVersion"] = "2"
    beat["status"]["conditions"][0]["lastHeartbeatTime"] = "2026-11-24T21:09:00Z"
    cache.apply("Node", "MODIFIED", beat, observed=2.0)
    html = frame(builder, cache, seq)
    assert "pod-card" not in html and 'id="nodes"' not in html and 'id="other-pods"' not in html
    seq = cache.seq
    down = node("node-1")
    down["metadata"]["resourceVersion"] = "3"
    down["status"]["conditions"][0]["status"] = "False"
    cache.apply("Node", "MODIFIED", down, observed=3.0)
    html = frame(builder, cache, seq)
    assert 'class="node-head node-not-ready" hx-swap-oob="true"' in html and "not ready" in html
    assert "pod-card" not in html and 'id="nodes"' not in html


def test_a_failing_section_shows_an_error_box_and_the_status_names_it(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    def broken(*args: object, **kwargs: object) -> list:
        raise ValueError("invalid literal for int() with base 10: 'abc'")

    monkeypatch.setattr(presenters, "replicaset_views", broken)
    cache, builder = seeded(), FrameBuilder(SCOPE)
    with caplog.at_level(logging.ERROR, logger="dashboard.stream"):
        seq, html = snapshot(builder, cache)
        for i in range(3):  # the same failure again and again: one traceback in the log
            rs = {"metadata": {"name": "backend-abc", "resourceVersion": str(10 + i),
                               "annotations": {"deployment.kubernetes.io/revision": "abc"}}}
            cache.apply("ReplicaSet", "ADDED" if i == 0 else "MODIFIED", rs, observed=2.0)
            delta = frame(builder, cache, seq)
            seq = cache.seq
    assert 'id="replicasets" class="panel section-error"' in html
    assert "cannot show: ReplicaSets" in html
    page, status = stream.page_sections(view_of(cache))  # the first page load: same isolation
    assert 'class="panel section-error"' in page["replicasets"] and "cannot show: ReplicaSets" in status
    assert 'id="deployment"' in page["deployment"]
    assert 'id="deployment"' in html and 'id="pod-uid-backend-a"' in html  # the rest still renders
    assert 'id="replicasets" class="panel section-error"' not in delta  # unchanged box: not re-sent
    assert "cannot show: ReplicaSets" in delta
    failed = [r.args[0] for r in caplog.records if r.exc_info]  # type: ignore[index]
    assert "ReplicaSets" in failed and len(failed) == len(set(failed))  # one traceback per section
    monkeypatch.undo()
    cache.apply("ReplicaSet", "MODIFIED", {"metadata": {"name": "backend-abc", "resourceVersion": "20"}},
                observed=3.0)
    healed = frame(builder, cache, seq)
    assert 'id="replicasets" class="panel replicasets"' in healed and "cannot show" not in healed


def test_a_broken_pod_card_is_an_error_in_the_pod_sections_only(monkeypatch: pytest.MonkeyPatch) -> None:
    cache, builder = seeded(), FrameBuilder(SCOPE)
    seq, _ = snapshot(builder, cache)
    real = presenters.pod_card

    def fussy(p: dict, **kwargs: object) -> presenters.PodCard:
        if p["metadata"]["name"] == "backend-bad":
            raise KeyError("phase")
        return real(p, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(presenters, "pod_card", fussy)
    cache.apply("Pod", "ADDED", pod("backend-bad", "5"), observed=2.0)
    html = frame(builder, cache, seq)
    assert 'id="nodes" class="panel section-error"' in html and "cannot show: pods by node" in html
    seq = cache.seq
    cache.apply("Pod", "DELETED", pod("backend-bad", "6"), observed=3.0)
    html = frame(builder, cache, seq)
    assert 'id="nodes" class="nodes" hx-swap-oob="true"' in html and "cannot show" not in html


def test_a_big_snapshot_is_split_below_the_message_limit_and_says_live_only_at_the_end() -> None:
    cache = ClusterCache()
    cache.replace("Node", [node(f"node-{n:02d}") for n in range(60)], observed=1.0)
    cache.replace("Pod", [pod(f"backend-{i:04d}", str(i), node=f"node-{i % 60:02d}") for i in range(300)]
                  + [pod(f"other-{i:04d}", str(i), labels={"app": f"x{i // 2}"}) for i in range(300)],
                  observed=1.0)
    limit = 32 * 1024
    messages = FrameBuilder(SCOPE, limit=limit).snapshot(view_of(cache))
    assert len(messages) > 4
    assert all(len(m.encode()) <= limit for m in messages)
    assert all("data-complete=\"false\"" in m and ">live<" not in m for m in messages[:-1])
    assert 'data-complete="true"' in messages[-1] and ">live<" in messages[-1]
    whole = "".join(messages)
    # 5 pods per node and 2 per app label: within the groups' windows, so every card is there.
    assert all(f'data-pod="backend-{i:04d}"' in whole and f'data-pod="other-{i:04d}"' in whole
               for i in range(300))
    assert whole.index('id="nodes" class="nodes"') < whole.index('data-pod="backend-0000"')


def test_a_long_group_shows_its_window_and_counts_the_rest() -> None:
    cache = ClusterCache()
    cache.replace("Node", [node("node-1")], observed=1.0)
    cache.replace("Pod", [pod(f"backend-{i:04d}", str(i)) for i in range(300)]
                  + [pod(f"other-{i:04d}", str(i), labels={"app": "x"}) for i in range(300)], observed=1.0)
    whole = "".join(FrameBuilder(SCOPE).snapshot(view_of(cache)))
    assert whole.count('class="pod-card ') == podgroups.WINDOW + podgroups.OTHER_WINDOW
    assert f"{300 - podgroups.WINDOW} more" in whole and f"{300 - podgroups.OTHER_WINDOW} more" in whole
    assert "300 pods" in whole and "app=x" in whole and "ReplicaSet backend-abc" in whole


def test_a_section_larger_than_a_message_is_an_error_box_not_an_oversize_message() -> None:
    cache = seeded()
    huge = [{"metadata": {"name": f"e{i}", "resourceVersion": str(i)}, "reason": "Big", "message": "x" * 3000,
             "involvedObject": {"kind": "Pod", "name": f"p{i}"}} for i in range(40)]
    cache.replace("Event", huge, observed=1.0)
    limit = 16 * 1024
    messages = FrameBuilder(SCOPE, limit=limit).snapshot(view_of(cache))
    assert all(len(m.encode()) <= limit for m in messages)
    whole = "".join(messages)
    assert 'id="events" class="panel section-error"' in whole and "too large to show" in whole


def test_registered_sections_render_in_the_page_and_the_snapshot(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stream, "SECTIONS", list(stream.SECTIONS))
    stream.register_section(stream.Section(
        "pod_total", "events", "dashboard/_events.html", "pod total", frozenset({"Pod"}),
        lambda v: {"events": []}), before="events")
    names = [s.name for s in stream.SECTIONS]
    assert names.index("pod_total") == names.index("events") - 1
    sections, status = stream.page_sections(view_of(seeded()))
    assert "pod_total" in sections and 'id="status"' in status
    cache, builder = seeded(), FrameBuilder(SCOPE)
    seq, html = snapshot(builder, cache)
    assert html.count('id="events"') == 2  # the registered section and the real one
    cache.apply("Pod", "ADDED", pod("backend-z", "9"), observed=2.0)
    assert 'id="events"' not in frame(builder, cache, seq)  # unchanged HTML is not re-sent
