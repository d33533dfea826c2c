"""What one open page is sent: a full snapshot, then deltas as htmx out-of-band swaps.

A :class:`FrameBuilder` belongs to one websocket. It remembers what that page currently
shows (which pod card sits in which group, the last card of each pod), so a batch of cache
changes becomes the smallest set of swaps that brings the page up to date:

- a section whose kind changed (Deployment, ReplicaSets, Service, endpoints, events,
  timeline, status) is re-rendered whole from the same partial the page load used;
- a pod card is replaced in place, appended to its node's group (new pod, or one that was
  just scheduled or relabelled), or replaced by a "leaving" copy the page's script fades
  out and removes (pod deleted);
- a pod whose endpoint condition changed gets its card re-rendered;
- an unknown group (a node that appeared), or a change of the Service's selector (which
  decides the pods the page calls selected), re-renders both pod sections whole.

Building fragments reads the cache and must run on the event loop; rendering them
(:func:`render_fragments`) is pure template work that may run in a worker thread.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.conf import settings
from django.template.loader import render_to_string

from dashboard import beyond, objects, presenters, topology
from dashboard.cache import Change, ClusterCache
from dashboard.objects import Selector
from dashboard.presenters import ClusterView, PodCard, Scope, ServiceView
from dashboard.timeline import Healing
from dashboard.topology import TopologyStream

ENDPOINT_KINDS = {"EndpointSlice", "Endpoints"}


@dataclass(frozen=True)
class Fragment:
    """One out-of-band swap: a template and its context."""

    template: str
    context: dict[str, Any]


def settings_scope() -> Scope:
    """The namespace, Deployment, Service and selector the dashboard is configured for."""
    return Scope(namespace=settings.LBDEMO_NAMESPACE, deployment=settings.LBDEMO_DEPLOYMENT,
                 service=settings.LBDEMO_SERVICE, max_replicas=settings.LBDEMO_MAX_REPLICAS,
                 selector=objects.parse_selector(settings.LBDEMO_SELECTOR))


def section_fragments(view: ClusterView) -> list[Fragment]:
    """Every section of the page, each as an out-of-band replacement."""
    return [
        status_fragment(seq=view.seq, pod_count=view.pod_count, synced=view.synced),
        oob("_deployment.html", deployment=view.deployment),
        oob("_replicasets.html", replicasets=view.replicasets),
        oob("_selector.html", selector=view.selector),
        oob("_nodes.html", groups=view.groups),
        oob("_other_pods.html", other_pods=view.other_pods),
        oob("_service.html", service=view.service),
        oob("_endpoints.html", endpoints=view.endpoints),
        oob("_events.html", events=view.events),
        oob("_timeline.html", timeline=view.timeline),
    ]


def beyond_fragments(ingresses: list[dict[str, Any]], hpas: list[dict[str, Any]],
                     events: list[dict[str, Any]], *, now: datetime) -> list[Fragment]:
    """The Ingress and autoscaling panels (dashboard.beyond)."""
    return [oob("_ingresses.html", ingresses=beyond.ingress_views(ingresses, now=now)),
            oob("_hpas.html", hpas=beyond.hpa_views(hpas, events, now=now))]


def status_fragment(*, seq: int, pod_count: int, synced: bool) -> Fragment:
    """The live indicator, carrying the sequence number the frame brings the page to."""
    return oob("_status.html", seq=seq, pod_count=pod_count, synced=synced)


def topology_fragment(payload: dict[str, Any]) -> Fragment:
    """The topology view's patch (dashboard.topology), read by topology.js after each frame."""
    return oob("_topology_patch.html", seq=payload["seq"], payload=topology.encode(payload))


def oob(template: str, **context: Any) -> Fragment:
    """A partial of dashboard/ rendered as an out-of-band replacement of its element."""
    return Fragment(f"dashboard/{template}", {**context, "oob": "true"})


def render_fragments(fragments: list[Fragment]) -> str:
    """Render fragments into one websocket frame (pure; safe in any thread)."""
    return "".join(render_to_string(f.template, f.context) for f in fragments)


@dataclass
class FrameBuilder:
    """Per-page memory of what is shown, turning cache changes into swaps."""

    scope: Scope
    cards: dict[str, PodCard] = field(default_factory=dict)
    groups: set[str] = field(default_factory=set)
    service: ServiceView | None = None
    selector: Selector | None = None
    topology: TopologyStream | None = None

    def snapshot(self, cache: ClusterCache, timeline: list[Healing], *, now: datetime,
                 synced: bool = True) -> tuple[int, list[Fragment]]:
        """The whole page; resets what this page is known to show."""
        seq, objects = cache.snapshot()
        view = presenters.cluster_view(objects, seq=seq, scope=self.scope, now=now, timeline=timeline,
                                       synced=synced)
        self._remember(view)
        self.selector = presenters.effective_selector(objects.get("Service", []), self.scope)
        extra = beyond_fragments(objects.get("Ingress", []), objects.get("HorizontalPodAutoscaler", []),
                                 objects.get("Event", []), now=now)
        return seq, [*section_fragments(view), *extra, topology_fragment(self._topology().snapshot(cache))]

    def _topology(self) -> TopologyStream:
        """This page's topology stream (dashboard.topology), created on first use."""
        if self.topology is None:
            self.topology = topology.TopologyStream(self.scope)
        return self.topology

    def _remember(self, view: ClusterView) -> None:
        """Record the cards and groups a freshly rendered page (or node section) shows."""
        self.service = view.service
        self.groups = {g.group_id for g in view.groups} | {presenters.OTHER_GROUP_ID}
        self.cards = {c.uid: c for g in view.groups for c in g.pods}
        self.cards.update({c.uid: c for c in view.other_pods})

    def delta(self, changes: list[Change], cache: ClusterCache, timeline: list[Healing], *,
              now: datetime) -> list[Fragment]:
        """The swaps that bring the page from before ``changes`` to the cache's current state."""
        kinds = {c.kind for c in changes}
        scope = self.scope
        out: list[Fragment] = []
        if "Deployment" in kinds:
            out.append(oob("_deployment.html", deployment=presenters.deployment_view(
                cache.list("Deployment"), name=scope.deployment, max_replicas=scope.max_replicas)))
        if "ReplicaSet" in kinds:
            out.append(oob("_replicasets.html", replicasets=presenters.replicaset_views(
                cache.list("ReplicaSet"), deployment=scope.deployment)))
        if "Service" in kinds or kinds & ENDPOINT_KINDS:  # endpoints resolve a named targetPort
            service = presenters.service_view(cache.list("Service"), name=scope.service,
                                              slices=cache.list("EndpointSlice"),
                                              endpoints=cache.list("Endpoints"))
            if service != self.service:
                out.append(oob("_service.html", service=service))
                self.service = service
        if kinds & ENDPOINT_KINDS:
            out.append(oob("_endpoints.html", endpoints=presenters.endpoints_view(
                cache.list("EndpointSlice"), cache.list("Endpoints"), service=scope.service)))
        if "Event" in kinds:
            out.append(oob("_events.html", events=presenters.event_views(cache.list("Event"), now=now)))
        if kinds & ({"Pod", "Node", "Service"} | ENDPOINT_KINDS):
            out.extend(self._pod_fragments(changes, cache, kinds, now=now))
            out.append(oob("_timeline.html", timeline=presenters.healing_views(timeline)))
        if "Ingress" in kinds:
            out.append(oob("_ingresses.html", ingresses=beyond.ingress_views(cache.list("Ingress"), now=now)))
        if "HorizontalPodAutoscaler" in kinds or ("Event" in kinds and cache.list("HorizontalPodAutoscaler")):
            out.append(oob("_hpas.html", hpas=beyond.hpa_views(cache.list("HorizontalPodAutoscaler"),
                                                               cache.list("Event"), now=now)))
        patch = self._topology().delta(cache, kinds)
        if patch is not None:
            out.append(topology_fragment(patch))
        return out

    def _pod_fragments(self, changes: list[Change], cache: ClusterCache, kinds: set[str], *,
                       now: datetime) -> list[Fragment]:
        """Swaps for pod cards and node groups."""
        endpoints = presenters.endpoint_states(cache.list("EndpointSlice"), cache.list("Endpoints"),
                                               self.scope.service)
        selector = presenters.effective_selector(cache.list("Service"), self.scope)
        if self.selector is not None and selector != self.selector:
            return self._regroup(cache, now=now, endpoints=endpoints)
        self.selector = selector

        def card_of(pod: dict[str, Any]) -> PodCard:
            return presenters.pod_card(pod, now=now, selector=selector, endpoints=endpoints)

        current: dict[str, dict[str, Any]] = {}
        gone: set[str] = set()
        for change in changes:
            if change.kind != "Pod":
                continue
            uid = str((change.obj.get("metadata") or {}).get("uid") or change.name)
            pod = cache.get("Pod", change.name)
            if pod is None or str((pod.get("metadata") or {}).get("uid") or change.name) != uid:
                gone.add(uid)
            if pod is not None:
                current[change.name] = pod
        fresh = {card.uid: card for card in map(card_of, current.values())}
        if "Endpoints" in kinds or "EndpointSlice" in kinds:
            for uid, card in self.cards.items():
                if uid not in fresh and card.endpoint != endpoints.get(card.name, "none"):
                    pod = cache.get("Pod", card.name)
                    if pod is not None:
                        fresh[uid] = card_of(pod)
        wanted_groups = {c.group_id for c in fresh.values()}
        if "Node" in kinds or not wanted_groups <= self.groups:
            return self._regroup(cache, now=now, endpoints=endpoints)
        out: list[Fragment] = []
        for uid in gone - fresh.keys():
            last = self.cards.pop(uid, None)
            if last is not None:
                ghost = PodCard(**{**last.__dict__, "leaving": True})
                out.append(oob("_pod_card.html", card=ghost))
        for uid, card in fresh.items():
            before = self.cards.get(uid)
            if before is not None and before.group_id == card.group_id:
                out.append(oob("_pod_card.html", card=card))
            else:
                if before is not None:
                    out.append(Fragment("dashboard/_oob_delete.html", {"dom_id": card.dom_id}))
                out.append(Fragment("dashboard/_oob_append.html", {"group_id": card.group_id, "card": card}))
            self.cards[uid] = card
        return out

    def _regroup(self, cache: ClusterCache, *, now: datetime, endpoints: dict[str, str]) -> list[Fragment]:
        """Re-render both pod sections whole (the set of nodes or the Service's selector changed)."""
        self.selector = presenters.effective_selector(cache.list("Service"), self.scope)
        cards = presenters.pod_cards(cache.list("Pod"), now=now, selector=self.selector, endpoints=endpoints)
        groups = presenters.node_groups(cache.list("Node"), [c for c in cards if c.selected])
        others = [c for c in cards if not c.selected]
        self.groups = {g.group_id for g in groups} | {presenters.OTHER_GROUP_ID}
        self.cards = {c.uid: c for c in cards}
        return [oob("_selector.html", selector=presenters.selector_text(self.selector)),
                oob("_nodes.html", groups=groups), oob("_other_pods.html", other_pods=others)]
