"""The live topology's graph model: the seed's mental model as nodes and edges, from the cache.

``topology_graph`` is a pure function from the informer cache's objects to a :class:`Graph`:

    HorizontalPodAutoscaler --scales--> Deployment --owns--> ReplicaSets --(pod's owner)--> Pods
    Ingress --routes--> Service --(EndpointSlice membership)--> Pods

Nodes and edges are plain JSON-able dicts keyed by an id (``Kind/name`` for nodes,
``<from>><to>`` for edges), so the page can diff and draw them without knowing Kubernetes.
An endpoint edge's ``state`` is the EndpointSlice condition of that pod: ``ready``, ``not-ready``
or ``terminating``; ownership edges are ``owns``, except ReplicaSet → pod, which is the pod's
``owner`` field (one edge per pod would double what a snapshot carries). Pods carry ``selected``
(they match the dashboard's selector, like the pod cards) so the page draws the others outside
the selection. Layout is the page's job (dashboard/static/dashboard/topology.js): the model has
no positions.

On the wire (:func:`reset_payload`, :func:`graph_diff`) a pod is one array of ``POD_FIELDS``
and an edge ``[from, to, state]``: about 150 bytes per pod, so a 1,000-pod snapshot is ~150 KiB.

Adding a kind is one builder in ``KIND_BUILDERS`` (objects -> nodes and edges) plus one row in
topology.js's ``ROWS`` table.

Clients (the traffic lab's connections and request rates) are not in this model: the page gets
them from the traffic socket it already has and draws them over this graph.

:class:`TopologyState` is the live stream's memory of the graph it sent (dashboard.stream
registers it as the topology section's state); each frame carries only the nodes and edges that
changed (a full model on a snapshot).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from dashboard import presenters
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
    return {"from": source, "to": target, "state": state}


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
    pod_memo: dict[str, tuple[str, Selector, Node]] = field(default_factory=dict)
    live: set[str] = field(default_factory=set)  # names of the pods in the snapshot

    def add(self, node: Node) -> None:
        self.nodes[node["id"]] = node

    def link(self, source: str, target: str, state: str) -> None:
        if source in self.nodes and target in self.nodes:
            self.edges[f"{source}>{target}"] = _edge(source, target, state)


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


def _fast_meta(pod: Obj) -> Obj:
    meta = pod.get("metadata") if isinstance(pod, dict) else None
    return meta if isinstance(meta, dict) else {}


def _owner(pod: Obj, memo: dict[str, tuple[str, Selector, Node]]) -> str:
    """A pod's ReplicaSet, from the memo when the pod is unchanged (a frame at 10,000 pods must
    not read every pod's owner references again)."""
    meta = _fast_meta(pod)
    known = memo.get(str(meta.get("name") or ""))
    if known is not None and known[0] == str(meta.get("resourceVersion") or ""):
        return str(known[2]["owner"])
    return _controller(pod, "ReplicaSet")


def _replicasets(objects: dict[str, list[Obj]], scope: Scope, parts: _Parts) -> None:
    """The Deployment's ReplicaSets that want or still have pods (old revisions scaled to 0 and
    emptied are history, not topology)."""
    owned = {_owner(p, parts.pod_memo) for p in objects.get("Pod", [])}
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


# A pod's fields, in the order the wire format sends them (one array per pod). ``count`` is 1,
# except for the node that stands for a crowd's folded pods (see _fold_crowds), which also
# carries ``tally``: [ready, starting, terminating, failing].
POD_FIELDS = ("name", "node", "status", "tone", "ready", "selected", "app", "owner", "ip", "count", "tally")
# A group (node and ReplicaSet, or app label outside the selector) of more than FOLD_AT pods
# sends its oldest FOLD_KEEP pods and one node standing for the rest: at 10,000 pods a snapshot
# stays a few KiB (the page groups them anyway) instead of 1.6 MB, over the 1 MiB a message carries.
FOLD_AT = 50
FOLD_KEEP = 20


def pod_node(pod: Obj, *, selector: Selector) -> Node:
    """One pod: where it runs, its kubectl STATUS and a colour class, readiness, selection, and
    the ReplicaSet that owns it (the ReplicaSet → pod edge: the page draws it from ``owner``)."""
    metadata, spec, status = _meta(pod), pod.get("spec") or {}, pod.get("status") or {}
    text = pod_status(pod)
    labels = labels_of(pod)
    return {
        "id": node_id("Pod", str(metadata.get("name") or "")),
        "kind": "Pod",
        "name": str(metadata.get("name") or ""),
        "node": str(spec.get("nodeName") or presenters.UNSCHEDULED),
        "status": text,
        "tone": presenters.status_class(text),
        "ready": condition_true(pod, "Ready"),
        "selected": selector.matches(labels),
        "app": labels.get("app", ""),
        "owner": _controller(pod, "ReplicaSet"),
        "ip": str(status.get("podIP") or ""),
        "count": 1,
        "tally": None,
    }


def _crowd_key(pod: Node) -> tuple[bool, str, str]:
    return (True, pod["node"], pod["owner"]) if pod["selected"] else (False, "", pod["app"])


def _tally_index(pod: Node) -> int:
    tone = pod["tone"]
    if tone == "terminating":
        return 2
    if tone == "bad":
        return 3
    return 0 if tone == "ok" and pod["ready"] else 1


def _fold_crowds(objects: dict[str, list[Obj]], scope: Scope, parts: _Parts) -> None:
    """Fold every group of more than FOLD_AT pods into its oldest FOLD_KEEP and one node with
    the count and states of the rest; their endpoint edges become one edge to that node (in the
    most common state)."""
    groups: dict[tuple[bool, str, str], list[Node]] = {}
    for node in parts.nodes.values():
        if node["kind"] == "Pod":
            groups.setdefault(_crowd_key(node), []).append(node)
    for (selected, where, owner_or_app), pods in groups.items():
        if len(pods) <= FOLD_AT:
            continue
        rest = pods[FOLD_KEEP:]
        tally = [0, 0, 0, 0]
        for pod in rest:
            tally[_tally_index(pod)] += 1
        folded = {pod["id"] for pod in rest}
        label = f"{where}/{owner_or_app or '-'}" if selected else f"app={owner_or_app or '-'}"
        name = f"{len(rest)} more · {label}"
        tones = ("ok", "pending", "terminating", "bad")
        aggregate = {"id": node_id("Pod", name), "kind": "Pod", "name": name,
                     "node": where if selected else rest[0]["node"], "status": f"{len(rest)} more",
                     "tone": tones[max(range(4), key=lambda i: tally[i])], "ready": tally[0] == len(rest),
                     "selected": selected, "app": rest[0]["app"], "owner": owner_or_app if selected else "",
                     "ip": "", "count": len(rest), "tally": tally}
        for pid in folded:
            del parts.nodes[pid]
        parts.add(aggregate)
        states: dict[tuple[str, str], int] = {}
        for key, edge in list(parts.edges.items()):
            if edge["to"] in folded:
                del parts.edges[key]
                states[(edge["from"], edge["state"])] = states.get((edge["from"], edge["state"]), 0) + 1
        for source in {src for src, _ in states}:
            state = max((st for src, st in states if src == source), key=lambda st: states[(source, st)])
            parts.link(source, aggregate["id"], state)


def _pods(objects: dict[str, list[Obj]], scope: Scope, parts: _Parts) -> None:
    """Pods, oldest first, selected by the live Service's selector (LBDEMO_SELECTOR without one);
    a pod unchanged since the last graph (same resourceVersion and selector) reuses its node, so
    a frame costs little more than the pods that changed (and one sort of plain tuples)."""
    selector = presenters.effective_selector(objects.get("Service", []), scope)
    memo = parts.pod_memo
    entries: list[tuple[str, str, Node]] = []
    for pod in objects.get("Pod", []):
        meta = _fast_meta(pod)
        name, rv = str(meta.get("name") or ""), str(meta.get("resourceVersion") or "")
        known = memo.get(name)
        if known is not None and rv and known[0] == rv and (known[1] is selector or known[1] == selector):
            node = known[2]
        else:
            node = pod_node(pod, selector=selector)
            memo[name] = (rv, selector, node)
        entries.append((str(meta.get("creationTimestamp") or ""), name, node))
    entries.sort(key=lambda e: (e[0], e[1]))
    for _, _, node in entries:
        parts.add(node)
    parts.live = {e[1] for e in entries}


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
        address = []
        for entry in ((ingress.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []:
            host = str(entry.get("ip") or entry.get("hostname") or "")
            ports = [
                int(p["port"]) for p in entry.get("ports") or [] if p.get("port") and int(p["port"]) != 80
            ]
            address.append(f"{host}:{ports[0]}" if host and ports else host)
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
    _fold_crowds,
    _ingresses,
    _autoscalers,
)


def topology_graph(
    objects: dict[str, list[Obj]],
    *,
    scope: Scope,
    pod_memo: dict[str, tuple[str, Selector, Node]] | None = None,
) -> Graph:
    """The graph of one consistent snapshot of the cache (``pod_memo``: pod nodes of an earlier
    graph by name, with their resourceVersion, reused when unchanged)."""
    parts = _Parts(pod_memo={} if pod_memo is None else pod_memo)
    for build in KIND_BUILDERS:
        build(objects, scope, parts)
    for name in [name for name in parts.pod_memo if name not in parts.live]:  # folded ones stay
        del parts.pod_memo[name]
    return Graph(nodes=parts.nodes, edges=parts.edges)


_page_memo: dict[str, tuple[str, Selector, Node]] = {}
_page_source = ""
_page_lock = threading.Lock()


def page_graph(objects: Mapping[str, list[Obj]], *, scope: Scope, source: str) -> Graph:
    """The graph for a first page load, reusing the pod nodes of the last page load from the same
    cluster (``source``, the hub's epoch; '' for a state built by hand, drawn afresh). Request
    threads share that memo, hence the lock: at 10,000 pods drawing every pod again was a
    sixth of the page's render."""
    global _page_source
    if not source:
        return topology_graph(dict(objects), scope=scope)
    with _page_lock:
        if source != _page_source:
            _page_source = source
            _page_memo.clear()
        return topology_graph(dict(objects), scope=scope, pod_memo=_page_memo)


# --- one graph per cache state, shared by every page ---------------------------------------------------
def _changed(before: dict[str, Any], after: dict[str, Any]) -> list[Any]:
    return [v for k, v in after.items() if (old := before.get(k)) is not v and old != v]


def graph_diff(before: Graph, after: Graph) -> dict[str, list[Any]]:
    """What turns ``before`` into ``after``, in the wire format: nodes and edges to upsert,
    node ids (``Kind/name``) and edges (``[from, to]``) to remove."""
    return {
        "nodes": [wire_node(n) for n in _changed(before.nodes, after.nodes) if n["kind"] != "Pod"],
        "pods": [wire_pod(n) for n in _changed(before.nodes, after.nodes) if n["kind"] == "Pod"],
        "edges": [wire_edge(e) for e in _changed(before.edges, after.edges)],
        "removed_nodes": [i for i in before.nodes if i not in after.nodes],
        "removed_edges": [[e["from"], e["to"]] for i, e in before.edges.items() if i not in after.edges],
    }


# --- the wire format: compact, because a snapshot carries every pod ------------------------------------
def wire_node(node: Node) -> Node:
    """A non-pod node as sent: its fields without the id (the page derives ``Kind/name``)."""
    return {k: v for k, v in node.items() if k != "id"}


def wire_pod(node: Node) -> list[Any]:
    """A pod as sent: its POD_FIELDS values in order (``pod_fields`` in a reset names them)."""
    return [node[f] for f in POD_FIELDS]


def wire_edge(edge: Edge) -> list[str]:
    """An edge as sent: ``[from, to, state]``."""
    return [edge["from"], edge["to"], edge["state"]]


def reset_payload(graph: Graph, *, seq: int) -> dict[str, Any]:
    """The whole graph, for a page load or a snapshot frame."""
    return {
        "reset": True,
        "seq": seq,
        "pod_fields": list(POD_FIELDS),
        "nodes": [wire_node(n) for n in graph.nodes.values() if n["kind"] != "Pod"],
        "pods": [wire_pod(n) for n in graph.nodes.values() if n["kind"] == "Pod"],
        "edges": [wire_edge(e) for e in graph.edges.values()],
    }


def encode(payload: dict[str, Any]) -> str:
    """Compact JSON (the page parses it from the patch element's text)."""
    return json.dumps(payload, separators=(",", ":"))


class TopologyState:
    """The live stream's memory of the graph the pages show (the topology section's state in
    dashboard.stream): the whole graph on a snapshot, then patches of what changed. Pods unchanged
    since the last graph (same resourceVersion and selector) reuse their node, so a frame costs
    little more than the pods that changed."""

    def __init__(self, scope: Scope) -> None:
        self.scope = scope
        self.shown: Graph | None = None
        self.seq = 0
        self.pod_memo: dict[str, tuple[str, Selector, Node]] = {}

    def _graph(self, objects: Mapping[str, list[Obj]]) -> Graph:
        return topology_graph(dict(objects), scope=self.scope, pod_memo=self.pod_memo)

    def snapshot(self, view: Any) -> dict[str, Any]:
        """The whole graph of ``view`` (a dashboard.stream.ViewInput): the patch element's context."""
        self.shown, self.seq = self._graph(view.objects), view.seq
        return {"seq": view.seq, "payload": encode(reset_payload(self.shown, seq=view.seq))}

    def delta(self, view: Any, kinds: Iterable[str], *,
              changes: Iterable[Any] | None = None) -> dict[str, Any] | None:
        """The patch from the graph shown to ``view``'s, or None when the graph is unchanged."""
        if self.shown is None:
            return self.snapshot(view)
        if not GRAPH_KINDS.intersection(kinds):
            return None
        if changes is not None and set(kinds) <= {"Pod"} and self._pods_unchanged(view, changes):
            return None
        return self._delta(view)

    def _pods_unchanged(self, view: Any, changes: Iterable[Any]) -> bool:
        """True if the changed pods draw exactly as before (an annotation, a label the graph does
        not show): the graph of 10,000 pods is then not rebuilt for them."""
        selector = presenters.effective_selector(view.list("Service"), self.scope)
        updates = {}
        for change in changes:
            pod = view.pods_by_name.get(change.name)
            known = self.pod_memo.get(change.name)
            if pod is None or known is None or known[1] != selector:
                return False
            node = pod_node(pod, selector=selector)
            if node != known[2]:
                return False
            updates[change.name] = (str(_fast_meta(pod).get("resourceVersion") or ""), selector, known[2])
        self.pod_memo.update(updates)  # the next rebuild reuses them
        return True

    def _delta(self, view: Any) -> dict[str, Any] | None:
        assert self.shown is not None
        graph = self._graph(view.objects)
        diff = graph_diff(self.shown, graph)
        if not any(diff.values()):
            return None
        payload = {"reset": False, "from": self.seq, "seq": view.seq, **diff}
        self.shown, self.seq = graph, view.seq
        return {"seq": view.seq, "payload": encode(payload)}
