"""Snapshots and deltas as the page receives them: the same partials, the smallest swaps."""

from __future__ import annotations

from datetime import UTC, datetime

from dashboard.cache import ClusterCache
from dashboard.objects import parse_selector
from dashboard.presenters import Scope
from dashboard.stream import FrameBuilder, render_fragments
from tests.dashboard.canned import pod, present

NOW = datetime(2026, 11, 24, 21, 10, tzinfo=UTC)
SCOPE = Scope(
    namespace="default",
    deployment="backend",
    service="backend-service",
    selector=parse_selector("app=backend"),
    max_replicas=10,
)


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


def frame(builder: FrameBuilder, cache: ClusterCache, since: int) -> str:
    return render_fragments(builder.delta(present(cache.changes_since(since)), cache, [], now=NOW))


def test_snapshot_renders_every_section_with_the_pods_in_their_groups() -> None:
    builder = FrameBuilder(SCOPE)
    seq, fragments = builder.snapshot(seeded(), [], now=NOW)
    html = render_fragments(fragments)
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
    seq, _ = builder.snapshot(cache, [], now=NOW)
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
    seq, _ = builder.snapshot(cache, [], now=NOW)
    cache.apply("Pod", "DELETED", pod("backend-a", "9"), observed=2.0)
    html = frame(builder, cache, seq)
    assert 'class="pod-card status-ok endpoint-none leaving"' in html


def test_scheduling_moves_the_card_between_groups() -> None:
    cache, builder = seeded(), FrameBuilder(SCOPE)
    cache.apply("Pod", "ADDED", pod("backend-c", "3", node=""), observed=1.0)
    seq, _ = builder.snapshot(cache, [], now=NOW)
    cache.apply("Pod", "MODIFIED", pod("backend-c", "4", node="node-2"), observed=2.0)
    html = frame(builder, cache, seq)
    assert 'id="pod-uid-backend-c" hx-swap-oob="delete"' in html
    assert html.index('hx-swap-oob="beforeend"') > html.index('hx-swap-oob="delete"')


def test_a_new_node_regroups_and_endpoint_changes_rerender_cards() -> None:
    cache, builder = seeded(), FrameBuilder(SCOPE)
    seq, _ = builder.snapshot(cache, [], now=NOW)
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
    html = render_fragments(FrameBuilder(SCOPE).snapshot(cache, [], now=NOW)[1])
    assert "<script>" not in html and "<img" not in html and "<b>Boom" not in html
    assert "&lt;script&gt;" in html


def test_the_service_card_follows_the_endpoints_that_resolve_its_named_target_port() -> None:
    cache, builder = seeded(), FrameBuilder(SCOPE)
    service = {"metadata": {"name": "backend-service", "resourceVersion": "3"},
               "spec": {"type": "NodePort", "clusterIP": "127.96.0.2", "selector": {"app": "backend"},
                        "ports": [{"name": "http", "port": 80, "targetPort": "http", "nodePort": 30080}]}}
    cache.replace("Service", [service], observed=1.0)
    seq, fragments = builder.snapshot(cache, [], now=NOW)
    assert "targetPort</span> <code class=\"target-port\">http</code>" in render_fragments(fragments)
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
