"""The topology's graph model (dashboard.topology) and the patches each page is sent."""

from __future__ import annotations

import json
import re

from dashboard import topology
from dashboard.cache import ClusterCache
from dashboard.objects import parse_selector
from dashboard.presenters import Scope
from dashboard.stream import FrameBuilder, ViewInput
from tests.dashboard.canned import pod, present
from tests.dashboard.test_stream import NOW, node

SCOPE = Scope(
    namespace="default",
    deployment="backend",
    service="backend-service",
    selector=parse_selector("app=backend"),
    max_replicas=10,
)


def deployment(replicas: int = 3) -> dict:
    return {
        "metadata": {"name": "backend", "resourceVersion": "1"},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "backend"}},
            "template": {"spec": {"containers": [{"name": "backend", "image": "lb-demo"}]}},
        },
        "status": {"replicas": replicas, "readyReplicas": replicas},
    }


def replicaset(name: str, revision: str, replicas: int, current: int | None = None) -> dict:
    return {
        "metadata": {
            "name": name,
            "resourceVersion": revision + str(replicas),
            "labels": {"pod-template-hash": name.rsplit("-", 1)[1]},
            "annotations": {"deployment.kubernetes.io/revision": revision},
            "ownerReferences": [{"kind": "Deployment", "name": "backend", "controller": True}],
        },
        "spec": {"replicas": replicas},
        "status": {"replicas": replicas if current is None else current},
    }


def service(name: str = "backend-service", selector: dict | None = None) -> dict:
    return {
        "metadata": {"name": name, "resourceVersion": "1"},
        "spec": {
            "type": "NodePort",
            "clusterIP": "10.0.0.7",
            "selector": {"app": "backend"} if selector is None else selector,
            "ports": [{"port": 80, "targetPort": 8080, "nodePort": 30080}],
        },
    }


def endpoint_slice(states: dict[str, str], service_name: str = "backend-service") -> dict:
    conditions = {
        "ready": {"ready": True},
        "not-ready": {"ready": False},
        "terminating": {"ready": False, "terminating": True},
    }
    return {
        "metadata": {
            "name": f"{service_name}-x",
            "resourceVersion": json.dumps(states),
            "labels": {"kubernetes.io/service-name": service_name},
        },
        "endpoints": [
            {
                "addresses": ["127.0.0.1"],
                "conditions": conditions[state],
                "targetRef": {"kind": "Pod", "name": name},
            }
            for name, state in states.items()
        ],
    }


def owned(name: str, rs: str = "backend-abc", **kwargs: object) -> dict:
    obj = pod(name, "1", **kwargs)  # type: ignore[arg-type]
    obj["metadata"]["ownerReferences"][0]["name"] = rs
    return obj


def objects(**kinds: list[dict]) -> dict[str, list[dict]]:
    return {
        "Deployment": [deployment()],
        "ReplicaSet": [replicaset("backend-abc", "1", 3)],
        "Service": [service()],
        "Node": [node("node-1"), node("node-2")],
        **kinds,
    }


def test_the_chain_deployment_replicasets_pods_service() -> None:
    graph = topology.topology_graph(
        objects(
            Pod=[owned("backend-a"), owned("backend-b", node="node-2")],
            EndpointSlice=[endpoint_slice({"backend-a": "ready", "backend-b": "not-ready"})],
        ),
        scope=SCOPE,
    )
    edges = {(e["from"], e["to"]): e["state"] for e in graph.edges.values()}
    assert edges == {
        ("Deployment/backend", "ReplicaSet/backend-abc"): "owns",
        ("Service/backend-service", "Pod/backend-a"): "ready",
        ("Service/backend-service", "Pod/backend-b"): "not-ready",
    }
    # a pod's ReplicaSet edge is its owner field
    assert graph.nodes["Pod/backend-a"]["owner"] == "backend-abc"
    b = graph.nodes["Pod/backend-b"]
    assert (b["kind"], b["node"], b["selected"], b["owner"]) == ("Pod", "node-2", True, "backend-abc")
    rs = graph.nodes["ReplicaSet/backend-abc"]
    assert (rs["revision"], rs["desired"], rs["current"]) == ("1", 3, 3)
    assert {n["name"] for n in graph.nodes.values() if n["kind"] == "Node"} == {"node-1", "node-2"}


def test_pods_are_coloured_by_phase_and_readiness() -> None:
    graph = topology.topology_graph(
        objects(
            Pod=[
                owned("ok"),
                owned("unready", ready=False),
                owned("starting", phase="Pending", waiting="ContainerCreating"),
                owned("crashing", waiting="CrashLoopBackOff", ready=False),
                owned("going", terminating=True),
            ]
        ),
        scope=SCOPE,
    )
    shown = {
        n["name"]: (n["status"], n["tone"], n["ready"]) for n in graph.nodes.values() if n["kind"] == "Pod"
    }
    assert shown == {
        "ok": ("Running", "ok", True),
        "unready": ("Running", "ok", False),
        "starting": ("ContainerCreating", "pending", True),
        "crashing": ("CrashLoopBackOff", "bad", False),
        "going": ("Terminating", "terminating", True),
    }


def test_the_stray_and_a_relabelled_pod_are_outside_the_selection_with_no_edge() -> None:
    relabelled = pod("backend-x", "2", labels={"app": "debug"}, owner="")
    stray = pod("frontend", "1", labels={"app": "frontend"}, owner="")
    graph = topology.topology_graph(
        objects(
            Pod=[owned("backend-a"), relabelled, stray],
            EndpointSlice=[endpoint_slice({"backend-a": "ready"})],
        ),
        scope=SCOPE,
    )
    for name, app in (("backend-x", "debug"), ("frontend", "frontend")):
        shown = graph.nodes[f"Pod/{name}"]
        assert (shown["selected"], shown["app"], shown["owner"]) == (False, app, "")
        assert not [e for e in graph.edges.values() if e["to"] == f"Pod/{name}"]


def test_a_rollout_shows_old_and_new_replicasets_then_only_the_new_one() -> None:
    during = objects(
        ReplicaSet=[replicaset("backend-old", "1", 2), replicaset("backend-new", "2", 2)],
        Pod=[owned("a", rs="backend-old"), owned("b", rs="backend-new")],
    )
    names = {
        n["name"]
        for n in topology.topology_graph(during, scope=SCOPE).nodes.values()
        if n["kind"] == "ReplicaSet"
    }
    assert names == {"backend-old", "backend-new"}
    after = objects(
        ReplicaSet=[replicaset("backend-old", "1", 0), replicaset("backend-new", "2", 3)],
        Pod=[owned("b", rs="backend-new")],
    )
    graph = topology.topology_graph(after, scope=SCOPE)
    assert [n["name"] for n in graph.nodes.values() if n["kind"] == "ReplicaSet"] == ["backend-new"]
    # an old ReplicaSet scaled to 0 still shows while one of its pods is terminating
    draining = objects(
        ReplicaSet=[replicaset("backend-old", "1", 0, current=0), replicaset("backend-new", "2", 3)],
        Pod=[owned("a", rs="backend-old", terminating=True)],
    )
    graph = topology.topology_graph(draining, scope=SCOPE)
    assert "ReplicaSet/backend-old" in graph.nodes
    assert graph.nodes["Pod/a"]["owner"] == "backend-old"


def test_terminating_endpoints_and_other_services() -> None:
    graph = topology.topology_graph(
        objects(
            Service=[service(), service("other", {"app": "backend"}), service("kubernetes", {})],
            Pod=[owned("a")],
            EndpointSlice=[endpoint_slice({"a": "terminating"}), endpoint_slice({"a": "ready"}, "other")],
        ),
        scope=SCOPE,
    )
    assert [n["name"] for n in graph.nodes.values() if n["kind"] == "Service"] == ["backend-service", "other"]
    assert graph.edges["Service/backend-service>Pod/a"]["state"] == "terminating"
    assert graph.edges["Service/other>Pod/a"]["state"] == "ready"


def test_ingress_and_hpa_nodes_when_those_objects_exist() -> None:
    ingress = {
        "metadata": {"name": "web", "resourceVersion": "1"},
        "spec": {
            "ingressClassName": "nginx",
            "rules": [
                {
                    "host": "lb.local",
                    "http": {
                        "paths": [
                            {
                                "path": "/",
                                "pathType": "Prefix",
                                "backend": {"service": {"name": "backend-service", "port": {"number": 80}}},
                            }
                        ]
                    },
                }
            ],
        },
        "status": {
            "loadBalancer": {"ingress": [{"ip": "127.0.0.1", "ports": [{"port": 8080, "protocol": "TCP"}]}]}
        },
    }
    hpa = {
        "metadata": {"name": "backend", "resourceVersion": "1"},
        "spec": {
            "scaleTargetRef": {"kind": "Deployment", "name": "backend"},
            "minReplicas": 1,
            "maxReplicas": 10,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}},
                }
            ],
        },
        "status": {
            "currentReplicas": 3,
            "desiredReplicas": 4,
            "currentMetrics": [
                {"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": 72}}}
            ],
        },
    }
    graph = topology.topology_graph(objects(Ingress=[ingress], HorizontalPodAutoscaler=[hpa]), scope=SCOPE)
    assert graph.edges["Ingress/web>Service/backend-service"]["state"] == "routes"
    assert graph.edges["HorizontalPodAutoscaler/backend>Deployment/backend"]["state"] == "scales"
    shown = graph.nodes["HorizontalPodAutoscaler/backend"]
    assert (shown["replicas"], shown["desired"], shown["utilization"], shown["target"]) == (
        3,
        4,
        "72%",
        "50%",
    )
    assert (graph.nodes["Ingress/web"]["hosts"], graph.nodes["Ingress/web"]["address"]) == (
        "lb.local",
        "127.0.0.1:8080",
    )
    plain = topology.topology_graph(objects(), scope=SCOPE)
    assert not [n for n in plain.nodes.values() if n["kind"] in {"Ingress", "HorizontalPodAutoscaler"}]


def seeded_cache() -> ClusterCache:
    cache = ClusterCache()
    for kind, items in objects(
        Pod=[owned("a"), owned("b")], EndpointSlice=[endpoint_slice({"a": "ready", "b": "ready"})]
    ).items():
        cache.replace(kind, items, observed=1.0)
    return cache


def test_a_page_gets_the_whole_graph_then_only_what_changed() -> None:
    cache = seeded_cache()
    stream = topology.TopologyState(SCOPE)

    def sent(context: dict | None) -> dict | None:
        return None if context is None else json.loads(context["payload"])

    reset = sent(stream.snapshot(view_of(cache)))
    assert reset is not None
    assert reset["reset"] and reset["seq"] == cache.seq
    assert {n["name"] for n in reset["nodes"] if n["kind"] == "Service"} == {"backend-service"}
    pods = [dict(zip(reset["pod_fields"], values, strict=True)) for values in reset["pods"]]
    assert [(p["name"], p["owner"], p["ready"]) for p in pods] == [
        ("a", "backend-abc", True),
        ("b", "backend-abc", True),
    ]
    assert ["Service/backend-service", "Pod/a", "ready"] in reset["edges"]
    before = cache.seq
    cache.apply("EndpointSlice", "MODIFIED", endpoint_slice({"a": "ready", "b": "not-ready"}), observed=2.0)
    patch = sent(stream.delta(view_of(cache), {"EndpointSlice"}))
    assert patch is not None and patch["from"] == before and patch["seq"] == cache.seq
    assert patch["edges"] == [["Service/backend-service", "Pod/b", "not-ready"]]
    assert patch["nodes"] == patch["pods"] == patch["removed_nodes"] == patch["removed_edges"] == []
    cache.apply("Pod", "DELETED", owned("a"), observed=3.0)
    patch = sent(stream.delta(view_of(cache), {"Pod"}))
    assert patch is not None
    # the pod and both its edges go (an endpoint of a deleted pod is not drawn)
    assert patch["removed_nodes"] == ["Pod/a"]
    assert patch["removed_edges"] == [["Service/backend-service", "Pod/a"]] and patch["pods"] == []
    # changes that do not touch the graph send nothing
    cache.apply("Event", "ADDED", {"metadata": {"name": "e1", "resourceVersion": "9"}}, observed=4.0)
    assert stream.delta(view_of(cache), {"Event"}) is None


def view_of(cache: ClusterCache) -> ViewInput:
    """The stream's input for the cache's current state (dashboard.stream)."""
    seq, objects = cache.snapshot()
    return ViewInput(objects, seq=seq, scope=SCOPE, now=NOW, timeline=[])


def test_frames_carry_the_topology_patch_the_page_script_reads() -> None:
    cache = seeded_cache()
    builder = FrameBuilder(SCOPE)
    html = "".join(builder.snapshot(view_of(cache)))
    found = re.search(r'<div id="topology-patch"[^>]*hx-swap-oob="true"[^>]*>(.*?)</div>', html, re.S)
    assert found is not None
    assert json.loads(found.group(1).replace("&quot;", '"'))["reset"] is True
    seq = cache.seq
    unready = owned("b", ready=False)
    unready["metadata"]["resourceVersion"] = "5"
    cache.apply("Pod", "MODIFIED", unready, observed=2.0)
    html = "".join(builder.delta(present(cache.changes_since(seq)), view_of(cache)))
    found = re.search(r'<div id="topology-patch"[^>]*>(.*?)</div>', html, re.S)
    assert found is not None
    patch = json.loads(found.group(1).replace("&quot;", '"'))
    assert patch["from"] == seq and patch["nodes"] == [] and len(patch["pods"]) == 1
    pod_b = dict(zip(topology.POD_FIELDS, patch["pods"][0], strict=True))
    assert (pod_b["name"], pod_b["ready"]) == ("b", False)


def test_cluster_strings_are_escaped_in_the_patch() -> None:
    cache = seeded_cache()
    hostile = owned("x")
    hostile["status"]["podIP"] = "</div><script>alert(1)</script>"
    cache.apply("Pod", "ADDED", hostile, observed=2.0)
    html = "".join(FrameBuilder(SCOPE).snapshot(view_of(cache)))
    assert "<script>" not in html and "&lt;script&gt;" in html


def test_unchanged_pods_are_not_rebuilt_and_a_snapshot_stays_small() -> None:
    cache = ClusterCache()
    pods = [owned(f"backend-{i:04d}") for i in range(1000)]
    for kind, items in objects(
        Pod=pods, EndpointSlice=[endpoint_slice({p["metadata"]["name"]: "ready" for p in pods})]
    ).items():
        cache.replace(kind, items, observed=1.0)
    state = topology.TopologyState(SCOPE)
    state.snapshot(view_of(cache))
    first = state.shown
    assert first is not None
    assert len(topology.encode(topology.reset_payload(first, seq=cache.seq))) < 200 * 1000
    changed = owned("backend-0007", ready=False)
    changed["metadata"]["resourceVersion"] = "2"
    cache.apply("Pod", "MODIFIED", changed, observed=2.0)
    state.delta(view_of(cache), {"Pod"})
    second = state.shown
    assert second is not None
    assert second.nodes["Pod/backend-0001"] is first.nodes["Pod/backend-0001"]
    assert second.nodes["Pod/backend-0007"]["ready"] is False
    diff = topology.graph_diff(first, second)
    assert [p[0] for p in diff["pods"]] == ["backend-0007"] and not diff["edges"]


def test_pods_follow_the_live_services_selector() -> None:
    cache = seeded_cache()
    cache.apply("Pod", "ADDED", pod("frontend", "1", labels={"app": "frontend"}, owner=""), observed=1.5)
    state = topology.TopologyState(SCOPE)
    state.snapshot(view_of(cache))
    before = state.shown
    assert before is not None
    assert before.nodes["Pod/a"]["selected"] and not before.nodes["Pod/frontend"]["selected"]
    moved = service(selector={"app": "frontend"})
    moved["metadata"]["resourceVersion"] = "2"
    cache.apply("Service", "MODIFIED", moved, observed=2.0)
    state.delta(view_of(cache), {"Service"})
    after = state.shown
    assert after is not None
    assert not after.nodes["Pod/a"]["selected"] and after.nodes["Pod/frontend"]["selected"]
