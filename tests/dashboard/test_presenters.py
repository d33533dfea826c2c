"""Presenters: kubectl's STATUS and AGE, selectors, endpoints, workloads, and the healing timeline."""

from __future__ import annotations

from collections import deque
from datetime import UTC, datetime, timedelta

import pytest

from dashboard.cache import ClusterCache
from dashboard.objects import human_age, parse_selector, pod_status
from dashboard.presenters import (
    deployment_view,
    endpoints_view,
    event_views,
    pod_card,
    replicaset_views,
    service_view,
)
from dashboard.timeline import Timeline
from tests.dashboard.canned import pod, present

NOW = datetime(2026, 11, 24, 21, 10, tzinfo=UTC)


@pytest.mark.parametrize(
    ("waiting", "expected"),
    [
        ("ContainerCreating", "ContainerCreating"),
        ("CrashLoopBackOff", "CrashLoopBackOff"),
        ("ImagePullBackOff", "ImagePullBackOff"),
        ("ErrImagePull", "ErrImagePull"),
        ("", "Running"),
    ],
)
def test_status_is_the_waiting_reason_like_kubectl(waiting: str, expected: str) -> None:
    assert pod_status(pod("p", "1", waiting=waiting, ready=not waiting)) == expected


def test_terminating_wins_and_terminated_reasons_show() -> None:
    assert pod_status(pod("p", "1", terminating=True)) == "Terminating"
    p = pod("p", "1")
    p["status"]["containerStatuses"][0]["state"] = {"terminated": {"exitCode": 137, "signal": 9}}
    assert pod_status(p) == "Signal:9"
    p["status"]["containerStatuses"][0]["state"] = {"terminated": {"exitCode": 1, "reason": "Error"}}
    assert pod_status(p) == "Error"
    pending = pod("q", "1")
    pending["status"] = {"phase": "Pending"}
    assert pod_status(pending) == "Pending"


def test_card_counts_ready_containers_and_restarts() -> None:
    card = pod_card(
        pod("p", "1", restarts=3, ready=False, waiting="CrashLoopBackOff"),
        now=NOW,
        selector=parse_selector("app=backend"),
        endpoints={"p": "not-ready"},
    )
    assert (card.ready, card.restarts, card.status_class, card.endpoint) == ("0/1", 3, "bad", "not-ready")
    assert card.age == "10m" and card.selected and card.phase == "Running"


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"),
        (119, "119s"),
        (125, "2m5s"),
        (600, "10m"),
        (3 * 3600 + 60, "3h1m"),
        (30 * 3600, "30h"),
        (50 * 3600, "2d2h"),
        (40 * 86400, "40d"),
    ],
)
def test_age_like_kubectl(seconds: int, text: str) -> None:
    assert human_age(NOW - timedelta(seconds=seconds), NOW) == text


def test_selector() -> None:
    selector = parse_selector("app=backend, tier!=db")
    assert selector.matches({"app": "backend"})
    assert not selector.matches({"app": "backend", "tier": "db"})
    assert not selector.matches({"app": "frontend"})
    # Set-based selectors are label selectors too (kubectl -l "app in (a,b)").
    assert parse_selector("app in (a,b)").matches({"app": "b"})


def test_endpoints_split_ready_not_ready_terminating() -> None:
    item = {
        "metadata": {"name": "s", "labels": {"kubernetes.io/service-name": "svc"}},
        "ports": [{"port": 8080}],
        "endpoints": [
            {
                "addresses": ["10.0.0.1"],
                "conditions": {"ready": True},
                "targetRef": {"kind": "Pod", "name": "a"},
            },
            {
                "addresses": ["10.0.0.2"],
                "conditions": {"ready": False},
                "targetRef": {"kind": "Pod", "name": "b"},
            },
            {
                "addresses": ["10.0.0.3"],
                "conditions": {"ready": False, "terminating": True},
                "targetRef": {"kind": "Pod", "name": "c"},
            },
        ],
    }
    other = {**item, "metadata": {"name": "o", "labels": {"kubernetes.io/service-name": "other"}}}
    view = endpoints_view([item, other], [], service="svc")
    assert [e.pod for e in view.ready] == ["a"] and [e.pod for e in view.not_ready] == ["b"]
    assert [e.pod for e in view.terminating] == ["c"] and view.ready[0].port == "8080"
    legacy = {
        "metadata": {"name": "svc"},
        "subsets": [
            {
                "addresses": [{"ip": "10.0.0.9"}],
                "notReadyAddresses": [{"ip": "10.0.0.8"}],
                "ports": [{"port": 80}],
            }
        ],
    }
    view = endpoints_view([], [legacy], service="svc")
    assert (
        view.source == "Endpoints" and view.ready[0].ip == "10.0.0.9" and view.not_ready[0].ip == "10.0.0.8"
    )


def test_deployment_and_replicasets() -> None:
    deployment = {
        "metadata": {"name": "backend"},
        "spec": {
            "replicas": 5,
            "selector": {"matchLabels": {"app": "b"}},
            "template": {"spec": {"containers": [{"image": "x"}]}},
        },
        "status": {"replicas": 4, "readyReplicas": 3},
    }
    view = deployment_view([deployment], name="backend", max_replicas=10)
    assert (view.desired, view.current, view.ready, view.image, view.selector) == (5, 4, 3, "x", "app=b")
    assert not deployment_view([], name="backend", max_replicas=10).exists
    owner = [{"kind": "Deployment", "name": "backend"}]
    rs = [
        {
            "metadata": {
                "name": f"backend-{h}",
                "ownerReferences": owner,
                "labels": {"pod-template-hash": h},
                "annotations": {"deployment.kubernetes.io/revision": r},
            },
            "spec": {"replicas": n},
            "status": {},
        }
        for h, r, n in (("aaa", "1", 0), ("bbb", "2", 5))
    ]
    rs.append({"metadata": {"name": "stranger", "ownerReferences": [{"kind": "Deployment", "name": "x"}]}})
    views = replicaset_views(rs, deployment="backend")
    assert [(v.name, v.revision, v.active) for v in views] == [
        ("backend-bbb", "2", True),
        ("backend-aaa", "1", False),
    ]


def test_timeline_measures_a_kill_and_its_replacement() -> None:
    cache, timeline = ClusterCache(), Timeline()

    def feed(kind: str, event: str, obj: dict, at: float) -> None:
        timeline.observe([present(cache.apply(kind, event, obj, observed=at))], cache)

    feed("Pod", "ADDED", pod("old", "1"), 0.0)
    feed("Pod", "MODIFIED", pod("old", "2", terminating=True), 10.0)
    feed("Pod", "ADDED", pod("new", "3", node="", phase="Pending", ready=False), 10.05)
    feed("Pod", "ADDED", pod("scaled-up-elsewhere", "4", owner="other-rs"), 10.06)
    feed("Pod", "MODIFIED", pod("new", "5", phase="Pending", ready=False, waiting="ContainerCreating"), 10.1)
    feed("Pod", "MODIFIED", pod("new", "6", ready=False), 10.5)
    feed("Pod", "MODIFIED", pod("new", "7"), 11.0)
    ready_slice = {
        "metadata": {"name": "s", "resourceVersion": "8"},
        "endpoints": [{"conditions": {"ready": True}, "targetRef": {"kind": "Pod", "name": "new"}}],
    }
    feed("EndpointSlice", "MODIFIED", ready_slice, 11.2)
    [entry] = timeline.visible(now=12.0)
    assert entry.replacement == "new" and entry.complete
    assert entry.offsets_ms() == {
        "created": 50,
        "scheduled": 100,
        "running": 500,
        "ready": 1000,
        "endpoint": 1200,
    }
    feed("Pod", "DELETED", pod("old", "9"), 20.0)
    assert len(timeline.entries) == 1
    assert timeline.visible(now=1000.0) == [entry]


def test_timeline_ignores_a_scale_down() -> None:
    cache, timeline = ClusterCache(), Timeline()
    replicaset = {"metadata": {"name": "backend-abc", "uid": "rs-uid-1", "resourceVersion": "1"},
                  "spec": {"replicas": 1}}
    cache.apply("ReplicaSet", "ADDED", replicaset, observed=0.0)
    for name, rv in (("a", "2"), ("b", "3")):
        cache.apply("Pod", "ADDED", pod(name, rv), observed=0.0)
    change = cache.apply("Pod", "MODIFIED", pod("b", "4", terminating=True), observed=1.0)
    timeline.observe([present(change)], cache)
    assert timeline.entries == deque()
    change = cache.apply("Pod", "MODIFIED", pod("a", "5", terminating=True), observed=2.0)
    timeline.observe([present(change)], cache)
    assert [e.killed for e in timeline.entries] == ["a"]


def test_service_view_reads_like_kubectl_get_svc_and_resolves_a_named_target_port() -> None:
    service = {"metadata": {"name": "svc"},
               "spec": {"type": "NodePort", "clusterIP": "127.96.0.2", "selector": {"app": "backend"},
                        "ports": [{"name": "http", "port": 80, "targetPort": "http", "nodePort": 30080,
                                   "protocol": "TCP"},
                                  {"name": "metrics", "port": 9090, "targetPort": 9091}]}}
    sliced = {"metadata": {"labels": {"kubernetes.io/service-name": "svc"}},
              "ports": [{"name": "http", "port": 8080}, {"name": "metrics", "port": 9091}]}
    unrelated = {"metadata": {"labels": {"kubernetes.io/service-name": "other"}},
                 "ports": [{"name": "http", "port": 1111}]}
    view = service_view([service], name="svc", slices=[unrelated, sliced], endpoints=[])
    assert (view.type, view.cluster_ip) == ("NodePort", "127.96.0.2")
    assert view.kubectl_ports == "80:30080/TCP,9090/TCP"
    http, metrics = view.ports
    assert (http.port, http.target_text, http.node_port) == (80, "http (8080)", 30080)
    assert (metrics.target_text, metrics.node_port, metrics.protocol) == ("9091", None, "TCP")
    # Without endpoints the named port stays a name; legacy Endpoints resolve it too.
    assert service_view([service], name="svc").ports[0].target_text == "http"
    legacy = {"metadata": {"name": "svc"}, "subsets": [{"ports": [{"name": "http", "port": 8081}]}]}
    assert service_view([service], name="svc", endpoints=[legacy]).ports[0].target_text == "http (8081)"
    # targetPort defaults to the port; a ClusterIP Service has no nodePort.
    plain = {"metadata": {"name": "p"}, "spec": {"clusterIP": "127.96.0.9", "ports": [{"port": 80}]}}
    only = service_view([plain], name="p")
    assert (only.type, only.kubectl_ports, only.ports[0].target_text) == ("ClusterIP", "80/TCP", "80")
    assert not service_view([], name="svc").exists


def event(name: str, rv: str, *, reason: str = "Unhealthy", obj: str = "backend-a", count: int = 1,
          first: str = "2026-11-24T21:09:00Z", last: str = "2026-11-24T21:09:00Z",
          message: str = "Readiness probe failed: connection refused") -> dict:
    return {"metadata": {"name": name, "resourceVersion": rv}, "type": "Warning", "reason": reason,
            "involvedObject": {"kind": "Pod", "name": obj}, "message": message, "count": count,
            "firstTimestamp": first, "lastTimestamp": last}


def test_events_aggregate_repeats_newest_first_and_are_bounded() -> None:
    events = [
        event("a.1", "10", count=2, first="2026-11-24T21:09:00Z", last="2026-11-24T21:09:04Z"),
        # The same event written again as a new object (e.g. after a recorder restart): merged.
        event("a.2", "20", count=1, first="2026-11-24T21:09:10Z", last="2026-11-24T21:09:10Z"),
        event("b.1", "15", obj="backend-b", first="2026-11-24T21:09:05Z", last="2026-11-24T21:09:05Z"),
        event("a.3", "12", message="Readiness probe failed: HTTP probe failed with statuscode: 503",
              first="2026-11-24T21:09:06Z", last="2026-11-24T21:09:06Z"),
    ]
    views = event_views(events, now=NOW)
    assert [(v.object, v.count) for v in views] == [("pod/backend-a", 3), ("pod/backend-a", 1),
                                                     ("pod/backend-b", 1)]
    assert views[0].repeats == "(x3 over 10s)" and views[0].age == "50s" and views[1].repeats == ""
    many = [event(f"e{i}", str(i), obj=f"pod-{i}", first=f"2026-11-24T21:0{i // 60}:{i % 60:02d}Z",
                  last=f"2026-11-24T21:0{i // 60}:{i % 60:02d}Z") for i in range(100)]
    shown = event_views(many, now=NOW, limit=30)
    assert len(shown) == 30 and shown[0].object == "pod/pod-99" and shown[-1].object == "pod/pod-70"
