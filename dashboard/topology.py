"""The live topology's graph model: the seed's mental model as nodes and edges, from the cache.

``topology_graph`` is a pure function from the informer cache's objects to a :class:`Graph`:

    HorizontalPodAutoscaler --scales--> Deployment --owns--> ReplicaSets --owns--> Pods
    Ingress --routes--> Service --(EndpointSlice membership)--> Pods

Nodes and edges are plain JSON-able dicts keyed by an id (``Kind/name`` for nodes,
``<from>><to>`` for edges), so the page can diff and draw them without knowing Kubernetes.
An endpoint edge's ``state`` is the EndpointSlice condition of that pod: ``ready``, ``not-ready``
or ``terminating``; ownership edges are ``owns``. Pods carry ``selected`` (they match the
dashboard's selector, like the pod cards) so the page draws the others outside the selection.
Layout is the page's job (dashboard/static/dashboard/topology.js): the model has no positions.

Adding a kind is one builder in ``KIND_BUILDERS`` (objects -> nodes and edges) plus one row in
topology.js's ``ROWS`` table.

Clients (the traffic lab's connections and request rates) are not in this model: the page gets
them from the traffic socket it already has and draws them over this graph.

:class:`TopologyStream` is one page's memory of the graph it was sent; each frame carries only
the nodes and edges that changed (a full model on a snapshot). The graph of one cache state is
computed once for all pages (``graph_of``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from dashboard import presenters
from dashboard.cache import ClusterCache
from dashboard.objects import Selector, condition_true, pod_status
from dashboard.objects import labels as labels_of
from dashboard.presenters import Scope

Obj = dict[str, Any]
Node = dict[str, Any]
Edge = dict[str, Any]

# Kinds whose changes can change the graph (Events and the rest never do).
GRAPH_KINDS = frozenset(
    {
        "Pod",
        "ReplicaSet",
        "Deployment",
        "Service",
        "EndpointSlice",
        "Endpoints",
        "Node",
        "Ingress",
        "HorizontalPodAutoscaler",
    }
)


@dataclass(frozen=True)
class Graph:
    """Nodes and edges by id."""

    nodes: dict[str, Node]
    edges: dict[str, Edge]


def node_id(kind: str, name: str) -> str:
    """A node's id: ``Kind/name``."""
    return f"{kind}/{name}"


def _edge(source: str, target: str, state: str) -> Edge:
    return {"id": f"{source}>{target}", "from": source, "to": target, "state": state}


def _meta(obj: Obj) -> Obj:
    return obj.get("metadata") or {}


def _name(obj: Obj) -> str:
    return str(_meta(obj).get("name") or "")


def _controller(obj: Obj, kind: str) -> str:
    """The name of the object's controlling owner of ``kind`` ('' if none)."""
    for ref in _meta(obj).get("ownerReferences") or []:
        if ref.get("kind") == kind and ref.get("controller", True):
            return str(ref.get("name") or "")
    return ""


# --- builders, one per kind ---------------------------------------------------------------------------
@dataclass
class _Parts:
    """What the builders have produced so far (later builders link to earlier nodes)."""

    nodes: dict[str, Node] = field(default_factory=dict)
    edges: dict[str, Edge] = field(default_factory=dict)

    def add(self, node: Node) -> None:
        self.nodes[node["id"]] = node

    def link(self, source: str, target: str, state: str) -> None:
        if source in self.nodes and target in self.nodes:
            edge = _edge(source, target, state)
            self.edges[edge["id"]] = edge


def _deployment(objects: dict[str, list[Obj]], scope: Scope, parts: _Parts) -> None:
    view = presenters.deployment_view(
        objects.get("Deployment", []), name=scope.deployment, max_replicas=scope.max_replicas
    )
    if view.exists:
        parts.add(
            {
                "id": node_id("Deployment", view.name),
                "kind": "Deployment",
                "name": view.name,
                "desired": view.desired,
                "current": view.current,
                "ready": view.ready,
                "updated": view.updated,
                "image": view.image,
            }
        )


def _replicasets(objects: dict[str, list[Obj]], scope: Scope, parts: _Parts) -> None:
    """The Deployment's ReplicaSets that want or still have pods (old revisions scaled to 0 and
    emptied are history, not topology)."""
    owned = {_controller(p, "ReplicaSet") for p in objects.get("Pod", [])}
    deployment = node_id("Deployment", scope.deployment)
    for view in presenters.replicaset_views(objects.get("ReplicaSet", []), deployment=scope.deployment):
        if not (view.desired or view.current or view.name in owned):
            continue
        rid = node_id("ReplicaSet", view.name)
        parts.add(
            {
                "id": rid,
                "kind": "ReplicaSet",
                "name": view.name,
                "revision": view.revision,
                "hash": view.template_hash,
                "image": view.image,
                "desired": view.desired,
                "current": view.current,
                "ready": view.ready,
            }
        )
        parts.link(deployment, rid, "owns")


def _nodes(objects: dict[str, list[Obj]], scope: Scope, parts: _Parts) -> None:
    """The cluster's nodes (the boxes pods are drawn in; a node with no pod still shows)."""
    for item in sorted(objects.get("Node", []), key=_name):
        parts.add(
            {
                "id": node_id("Node", _name(item)),
                "kind": "Node",
                "name": _name(item),
                "ready": condition_true(item, "Ready"),
            }
        )


def pod_node(pod: Obj, *, selector: Selector) -> Node:
    """One pod: where it runs, its kubectl STATUS and a colour class, readiness, selection."""
    metadata, spec, status = _meta(pod), pod.get("spec") or {}, pod.get("status") or {}
    name = str(metadata.get("name") or "")
    text = pod_status(pod)
    labels = labels_of(pod)
    return {
        "id": node_id("Pod", name),
        "kind": "Pod",
        "name": name,
        "node": str(spec.get("nodeName") or presenters.UNSCHEDULED),
        "phase": str(status.get("phase") or "Unknown"),
        "status": text,
        "tone": presenters.status_class(text),
        "ready": condition_true(pod, "Ready"),
        "selected": selector.matches(labels),
        "app": labels.get("app", ""),
        "owner": _controller(pod, "ReplicaSet"),
        "ip": str(status.get("podIP") or ""),
        "created": str(metadata.get("creationTimestamp") or ""),
    }


def _pods(objects: dict[str, list[Obj]], scope: Scope, parts: _Parts) -> None:
    selector = presenters.effective_selector(objects.get("Service", []), scope)
    for pod in sorted(objects.get("Pod", []), key=presenters.created_key):
        node = pod_node(pod, selector=selector)
        parts.add(node)
        if node["owner"]:
            parts.link(node_id("ReplicaSet", node["owner"]), node["id"], "owns")


def drawn_services(services: list[Obj], *, configured: str) -> list[Obj]:
    """The configured Service, then every other Service that selects pods, by name."""
    chosen = [s for s in services if _name(s) == configured or (s.get("spec") or {}).get("selector")]
    return sorted(chosen, key=lambda s: (_name(s) != configured, _name(s)))


def _services(objects: dict[str, list[Obj]], scope: Scope, parts: _Parts) -> None:
    """Each Service and its EndpointSlice membership: one edge per endpoint pod, in its state."""
    slices, endpoints = objects.get("EndpointSlice", []), objects.get("Endpoints", [])
    for service in drawn_services(objects.get("Service", []), configured=scope.service):
        name = _name(service)
        view = presenters.service_view([service], name=name, slices=slices, endpoints=endpoints)
        sid = node_id("Service", name)
        parts.add(
            {
                "id": sid,
                "kind": "Service",
                "name": name,
                "type": view.type,
                "clusterIP": view.cluster_ip,
                "ports": view.kubectl_ports,
                "selector": view.selector,
            }
        )
        for pod, state in sorted(presenters.endpoint_states(slices, endpoints, name).items()):
            parts.link(sid, node_id("Pod", pod), state)


def _ingresses(objects: dict[str, list[Obj]], scope: Scope, parts: _Parts) -> None:
    """Ingresses that route to a drawn Service (rules' backends and the default backend)."""
    for ingress in sorted(objects.get("Ingress", []), key=_name):
        spec = ingress.get("spec") or {}
        backends = [spec.get("defaultBackend") or {}]
        hosts = []
        for rule in spec.get("rules") or []:
            if rule.get("host"):
                hosts.append(str(rule["host"]))
            backends.extend(path.get("backend") or {} for path in (rule.get("http") or {}).get("paths") or [])
        targets = {str((b.get("service") or {}).get("name") or "") for b in backends} - {""}
        address = [
            str(i.get("ip") or i.get("hostname") or "")
            for i in ((ingress.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
        ]
        iid = node_id("Ingress", _name(ingress))
        parts.add(
            {
                "id": iid,
                "kind": "Ingress",
                "name": _name(ingress),
                "ingressClass": str(spec.get("ingressClassName") or ""),
                "hosts": ",".join(hosts) or "*",
                "address": ",".join(a for a in address if a),
            }
        )
        for target in sorted(targets):
            parts.link(iid, node_id("Service", target), "routes")


def _autoscalers(objects: dict[str, list[Obj]], scope: Scope, parts: _Parts) -> None:
    """HorizontalPodAutoscalers and the workload each one scales."""
    for hpa in sorted(objects.get("HorizontalPodAutoscaler", []), key=_name):
        spec, status = hpa.get("spec") or {}, hpa.get("status") or {}
        ref = spec.get("scaleTargetRef") or {}
        current = ""
        for metric in status.get("currentMetrics") or []:
            utilization = ((metric.get("resource") or {}).get("current") or {}).get("averageUtilization")
            if utilization is not None:
                current = f"{utilization}%"
        if not current and status.get("currentCPUUtilizationPercentage") is not None:
            current = f"{status['currentCPUUtilizationPercentage']}%"
        target = ""
        for metric in spec.get("metrics") or []:
            utilization = ((metric.get("resource") or {}).get("target") or {}).get("averageUtilization")
            if utilization is not None:
                target = f"{utilization}%"
        if not target and spec.get("targetCPUUtilizationPercentage") is not None:
            target = f"{spec['targetCPUUtilizationPercentage']}%"
        hid = node_id("HorizontalPodAutoscaler", _name(hpa))
        parts.add(
            {
                "id": hid,
                "kind": "HorizontalPodAutoscaler",
                "name": _name(hpa),
                "min": int(spec.get("minReplicas") or 1),
                "max": int(spec.get("maxReplicas") or 0),
                "replicas": int(status.get("currentReplicas") or 0),
                "desired": int(status.get("desiredReplicas") or 0),
                "utilization": current,
                "target": target,
            }
        )
        parts.link(hid, node_id(str(ref.get("kind") or ""), str(ref.get("name") or "")), "scales")


Builder = Callable[[dict[str, list[Obj]], Scope, _Parts], None]
# In order: a builder may link only to nodes of builders before it.
KIND_BUILDERS: tuple[Builder, ...] = (
    _deployment,
    _replicasets,
    _nodes,
    _pods,
    _services,
    _ingresses,
    _autoscalers,
)


def topology_graph(objects: dict[str, list[Obj]], *, scope: Scope) -> Graph:
    """The graph of one consistent snapshot of the cache."""
    parts = _Parts()
    for build in KIND_BUILDERS:
        build(objects, scope, parts)
    return Graph(nodes=parts.nodes, edges=parts.edges)


# --- one graph per cache state, shared by every page ---------------------------------------------------
_last: tuple[ClusterCache, int, Scope, Graph] | None = None


def graph_of(cache: ClusterCache, *, scope: Scope) -> Graph:
    """The graph of the cache's current state (computed once per sequence number for all pages).
    Must run on the event loop that owns the cache."""
    global _last
    if _last is not None and _last[0] is cache and _last[1] == cache.seq and _last[2] == scope:
        return _last[3]
    graph = topology_graph({kind: list(objs.values()) for kind, objs in cache.objects.items()}, scope=scope)
    _last = (cache, cache.seq, scope, graph)
    return graph


def graph_diff(before: Graph, after: Graph) -> dict[str, list[Any]]:
    """What turns ``before`` into ``after``: nodes and edges to upsert, ids to remove."""
    return {
        "nodes": [n for i, n in after.nodes.items() if before.nodes.get(i) != n],
        "edges": [e for i, e in after.edges.items() if before.edges.get(i) != e],
        "removed_nodes": [i for i in before.nodes if i not in after.nodes],
        "removed_edges": [i for i in before.edges if i not in after.edges],
    }


def reset_payload(graph: Graph, *, seq: int) -> dict[str, Any]:
    """The whole graph, for a page load or a snapshot frame."""
    return {
        "reset": True,
        "seq": seq,
        "nodes": list(graph.nodes.values()),
        "edges": list(graph.edges.values()),
    }


def encode(payload: dict[str, Any]) -> str:
    """Compact JSON (the page parses it from the patch element's text)."""
    return json.dumps(payload, separators=(",", ":"))


@dataclass
class TopologyStream:
    """One page's memory of the graph it shows, turning cache states into patches."""

    scope: Scope
    shown: Graph | None = None
    seq: int = 0

    def snapshot(self, cache: ClusterCache) -> dict[str, Any]:
        """The full graph; what the page shows from now on."""
        self.shown = graph_of(cache, scope=self.scope)
        self.seq = cache.seq
        return reset_payload(self.shown, seq=self.seq)

    def delta(self, cache: ClusterCache, kinds: Iterable[str]) -> dict[str, Any] | None:
        """The patch bringing the page to the cache's state, or None when the graph is unchanged."""
        if self.shown is None:
            return self.snapshot(cache)
        if not GRAPH_KINDS.intersection(kinds):
            return None
        graph = graph_of(cache, scope=self.scope)
        diff = graph_diff(self.shown, graph)
        if not any(diff.values()):
            return None
        payload = {"reset": False, "from": self.seq, "seq": cache.seq, **diff}
        self.shown, self.seq = graph, cache.seq
        return payload
