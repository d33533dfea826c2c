"""Pure functions that turn cached cluster objects into what the page shows.

Nothing here does I/O or touches the cache: functions take plain object dicts (as the API
returns them) and return small frozen dataclasses the templates render. The same functions
serve the first page load and every websocket frame, so both always agree.

What an object means (pod STATUS as kubectl prints it, endpoint states, selectors, owners,
ages) comes from dashboard.objects; this module only arranges it for the page. Building a
view never fails because of one object: a pod, ReplicaSet or event that cannot be shown is
logged and left out, and the rest of the page still renders.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from dashboard import objects
from dashboard.objects import Selector
from dashboard.timeline import STEPS, Healing

log = logging.getLogger(__name__)

Obj = dict[str, Any]

UNSCHEDULED = "(not scheduled)"
EVENTS_SHOWN = 30


T = TypeVar("T")


def each(build: Callable[[Obj], T | None], objs: Iterable[Obj], what: str) -> list[T]:
    """``build`` applied to every object; one that fails is logged and skipped, never fatal."""
    out: list[T] = []
    for obj in objs:
        try:
            built = build(obj)
        except Exception:
            log.exception("cannot show %s %r; leaving it out", what, objects.name(obj))
            continue
        if built is not None:
            out.append(built)
    return out


def status_class(status: str) -> str:
    """A CSS class for a pod status: ok, pending, terminating, bad or other."""
    if status == "Running":
        return "ok"
    if status in {"Pending", "ContainerCreating", "PodInitializing"} or status.startswith("Init:"):
        return "pending"
    if status == "Terminating":
        return "terminating"
    if status in {"CrashLoopBackOff", "ImagePullBackOff", "ErrImagePull", "Error", "OOMKilled",
                  "CreateContainerConfigError", "InvalidImageName", "Failed", "Unknown", "NotReady"}:
        return "bad"
    return "other"


def dom_slug(name: str) -> str:
    """A DOM-id-safe form of a name ([a-z0-9-]) with a short hash so distinct names stay distinct."""
    digest = hashlib.sha1(name.encode()).hexdigest()[:6]
    return f"{re.sub(r'[^a-z0-9-]+', '-', name.lower()).strip('-')[:40]}-{digest}"


@dataclass(frozen=True)
class PodCard:
    """One pod as its card shows it."""

    uid: str
    name: str
    ip: str
    node: str
    phase: str
    status: str
    status_class: str
    ready: str
    is_ready: bool
    restarts: int
    age: str
    created: str
    labels: tuple[str, ...]
    selected: bool
    endpoint: str
    group_id: str
    leaving: bool = False
    owner: str = ""  # the controlling owner's name (a ReplicaSet for the Deployment's pods)
    app: str = ""  # the ``app`` label, which groups pods outside the selector

    @property
    def sort_key(self) -> tuple[int, str, str]:
        """Order within a group (its window shows the first): :func:`attention` first, then
        oldest first, then by name (as :func:`created_key`)."""
        return attention(self.status_class, self.is_ready), self.created, self.name

    @property
    def dom_id(self) -> str:
        """The card's DOM id: ``pod-<uid>`` (uids are UUIDs; anything else is slugged)."""
        safe = re.fullmatch(r"[A-Za-z0-9-]+", self.uid)
        return f"pod-{self.uid if safe else dom_slug(self.uid)}"


def attention(status_class: str, ready: bool) -> int:
    """How much a pod needs looking at: 0 failing (CrashLoopBackOff, Error…), 1 not ready
    (starting, unready, terminating), 2 ready. A group's window shows the lowest first, so a new
    crash-looping pod in a 4,500-pod group is a card on the page, not only a count."""
    if status_class == "bad":
        return 0
    return 2 if ready and status_class == "ok" else 1


def endpoint_states(slices: list[Obj], endpoints: list[Obj], service: str) -> dict[str, str]:
    """Pod name -> "ready" | "not-ready" | "terminating" for the Service's endpoints."""
    return objects.endpoint_states(slices, endpoints, service)


def node_group_id(node: str) -> str:
    """DOM id of a node's group of selected pods (its heading is ``head-<id>``)."""
    return f"pods-{dom_slug(node)}"


OTHER_GROUP_ID = "pods-other"
NO_APP = "(no app label)"


def pod_group_id(*, selected: bool, node: str, owner: str, app: str) -> str:
    """DOM id of the card container of a pod's group: node and owner for selected pods, the
    ``app`` label for the others (see dashboard.podgroups)."""
    if selected:
        return f"{node_group_id(node)}-{dom_slug(owner or '-')}"
    return f"{OTHER_GROUP_ID}-{dom_slug(app or NO_APP)}"


def pod_owner(pod: Obj) -> str:
    """The name of the pod's controlling owner ("" for a bare pod)."""
    return objects.text(objects.mapping(objects.controller_ref(pod)).get("name"))


def pod_group_of(pod: Obj, selector: Selector) -> str:
    """The group id of a pod without building its card (cheap: for lookups over every pod)."""
    labels = objects.labels(pod)
    return pod_group_id(selected=selector.matches(labels),
                        node=objects.text(objects.spec(pod).get("nodeName")) or UNSCHEDULED,
                        owner=pod_owner(pod), app=labels.get("app", ""))


def pod_card(pod: Obj, *, now: datetime, selector: Selector, endpoints: dict[str, str],
             leaving: bool = False) -> PodCard:
    """Build the card of one pod: READY, STATUS and RESTARTS as kubectl prints them."""
    metadata, spec, status = objects.metadata(pod), objects.spec(pod), objects.status(pod)
    printed = objects.print_pod(pod)
    labels = objects.labels(pod)
    selected = selector.matches(labels)
    node = objects.text(spec.get("nodeName")) or UNSCHEDULED
    name = objects.name(pod)
    owner, app = pod_owner(pod), labels.get("app", "")
    return PodCard(
        uid=objects.uid(pod) or name, name=name, ip=objects.text(status.get("podIP")), node=node,
        phase=objects.text(status.get("phase")) or "Unknown",
        status=printed.status, status_class=status_class(printed.status),
        ready=f"{printed.ready}/{printed.total}", is_ready=objects.pod_ready(pod), restarts=printed.restarts,
        age=objects.age(pod, now), created=objects.text(metadata.get("creationTimestamp")),
        labels=tuple(f"{k}={v}" for k, v in sorted(labels.items())), selected=selected,
        endpoint=endpoints.get(name, "none"),
        group_id=pod_group_id(selected=selected, node=node, owner=owner, app=app), leaving=leaving,
        owner=owner, app=app,
    )


def aged(card: PodCard, now: datetime) -> PodCard:
    """The card with its AGE as of ``now`` (a card remembered since an earlier render)."""
    age = objects.human_age(objects.parse_time(card.created), now)
    return card if age == card.age else dataclasses.replace(card, age=age)


def pod_cards(pods: Iterable[Obj], *, now: datetime, selector: Selector,
              endpoints: dict[str, str]) -> list[PodCard]:
    """Cards of pods, oldest first; a pod that cannot be shown is logged and left out."""
    return each(lambda p: pod_card(p, now=now, selector=selector, endpoints=endpoints),
                sorted(pods, key=created_key), "pod")


def created_key(pod: Obj) -> tuple[str, str]:
    """Sort key: oldest first, then by name."""
    return objects.text(objects.metadata(pod).get("creationTimestamp")), objects.name(pod)


@dataclass(frozen=True)
class NodeGroup:
    """A node and the backend pods on it."""

    name: str
    group_id: str
    ready: bool
    pods: tuple[PodCard, ...]


def node_groups(nodes: list[Obj], cards: list[PodCard]) -> list[NodeGroup]:
    """Backend pod cards grouped by node: every known node, plus nodes only pods mention."""
    by_node: dict[str, list[PodCard]] = {}
    for card in cards:
        by_node.setdefault(card.node, []).append(card)
    ready = {objects.name(n): objects.condition_true(n, "Ready") for n in nodes if objects.name(n)}
    names = sorted(set(ready) | (set(by_node) - {UNSCHEDULED}))
    names.append(UNSCHEDULED)
    return [NodeGroup(name=n, group_id=node_group_id(n), ready=ready.get(n, True),
                      pods=tuple(by_node.get(n, ()))) for n in names]


# --- workloads ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class DeploymentView:
    """The Deployment's desired and actual replica counts."""

    name: str
    exists: bool
    desired: int = 0
    current: int = 0
    updated: int = 0
    ready: int = 0
    available: int = 0
    image: str = ""
    strategy: str = ""
    selector: str = ""
    max_replicas: int = 10


def first_image(template_spec: Obj) -> str:
    """The first container's image of a pod spec."""
    containers = objects.dicts(objects.mapping(template_spec).get("containers"))
    return objects.text(containers[0].get("image")) if containers else ""


def template_spec(obj: Obj) -> Obj:
    """spec.template.spec of a Deployment or ReplicaSet."""
    return objects.spec(objects.mapping(objects.spec(obj).get("template")))


def deployment_view(deployments: list[Obj], *, name: str, max_replicas: int) -> DeploymentView:
    """The configured Deployment, or a placeholder saying it does not exist."""
    found = next((d for d in deployments if objects.name(d) == name), None)
    if found is None:
        return DeploymentView(name=name, exists=False, max_replicas=max_replicas)
    spec, status = objects.spec(found), objects.status(found)
    return DeploymentView(
        name=name, exists=True, desired=objects.count(spec.get("replicas")),
        current=objects.count(status.get("replicas")), updated=objects.count(status.get("updatedReplicas")),
        ready=objects.count(status.get("readyReplicas")),
        available=objects.count(status.get("availableReplicas")),
        image=first_image(template_spec(found)),
        strategy=objects.text(objects.mapping(spec.get("strategy")).get("type")),
        selector=str(objects.selector_from_label_selector(spec.get("selector"))), max_replicas=max_replicas,
    )


@dataclass(frozen=True)
class ReplicaSetView:
    """One ReplicaSet of the Deployment."""

    name: str
    revision: str
    template_hash: str
    image: str
    desired: int
    current: int
    ready: int
    active: bool


def replicaset_view(rs: Obj) -> ReplicaSetView:
    """One ReplicaSet; a revision annotation that is not a number shows as written."""
    spec, status = objects.spec(rs), objects.status(rs)
    number = objects.revision(rs)
    desired = objects.count(spec.get("replicas"))
    return ReplicaSetView(
        name=objects.name(rs),
        revision=(str(number) if number is not None
                  else objects.annotations_of(rs).get(objects.REVISION_ANNOTATION, "")),
        template_hash=objects.labels(rs).get("pod-template-hash", ""),
        image=first_image(template_spec(rs)), desired=desired, current=objects.count(status.get("replicas")),
        ready=objects.count(status.get("readyReplicas")), active=desired > 0,
    )


def replicaset_views(replicasets: list[Obj], *, deployment: str) -> list[ReplicaSetView]:
    """The Deployment's ReplicaSets, newest revision first (unnumbered ones last)."""
    mine = [rs for rs in replicasets if objects.owned_by(rs, kind="Deployment", owner=deployment)]
    views = each(replicaset_view, mine, "ReplicaSet")
    order = {objects.name(rs): objects.revision(rs) for rs in mine}
    return sorted(views, key=lambda v: (-(order.get(v.name) or 0), v.name))


# --- service and endpoints ------------------------------------------------------------------------
@dataclass(frozen=True)
class ServicePortView:
    """One port of the Service, as `kubectl get svc` prints it (PORT(S) ``80:30080/TCP``) and spelt out."""

    name: str
    port: int
    protocol: str
    target: str
    target_number: int | None
    node_port: int | None

    @property
    def kubectl(self) -> str:
        """kubectl's PORT(S) entry: ``port[:nodePort]/protocol``."""
        node = f":{self.node_port}" if self.node_port else ""
        return f"{self.port}{node}/{self.protocol}"

    @property
    def target_text(self) -> str:
        """The targetPort, a named one with the container port it resolves to: ``http (8080)``."""
        if self.target_number is not None and self.target != str(self.target_number):
            return f"{self.target} ({self.target_number})"
        return self.target


@dataclass(frozen=True)
class ServiceView:
    """The Service: its type, stable address, ports and how it selects pods."""

    name: str
    exists: bool
    type: str = ""
    cluster_ip: str = ""
    ports: tuple[ServicePortView, ...] = ()
    selector: str = ""

    @property
    def kubectl_ports(self) -> str:
        """kubectl's PORT(S) column: ``80:30080/TCP,443:30443/TCP``."""
        return ",".join(p.kubectl for p in self.ports) or "<none>"


def service_selector(service: Obj | None) -> Selector:
    """The pods a Service selects (none when it has no selector)."""
    return objects.selector_from_map(objects.spec(service).get("selector"))


def find(objs: Iterable[Obj], name: str) -> Obj | None:
    """The object called ``name``."""
    return next((o for o in objs if objects.name(o) == name), None)


def service_port_view(port: Obj, resolved: dict[str, int]) -> ServicePortView:
    """One Service port; a named targetPort is resolved through the endpoints when they say."""
    number = objects.count(port.get("port"))
    raw_target = port.get("targetPort", number)
    target = objects.text(raw_target) or str(number)
    target_number = objects.whole_number(raw_target)
    if target_number is None:
        target_number = resolved.get(objects.text(port.get("name")))
    node_port = objects.count(port.get("nodePort"))
    return ServicePortView(name=objects.text(port.get("name")), port=number,
                           protocol=objects.text(port.get("protocol")) or "TCP", target=target,
                           target_number=target_number, node_port=node_port or None)


def service_view(services: list[Obj], *, name: str, slices: list[Obj] | None = None,
                 endpoints: list[Obj] | None = None) -> ServiceView:
    """The configured Service, or a placeholder saying it does not exist; a named targetPort is
    resolved through the Service's EndpointSlices (or legacy Endpoints) when they are given."""
    found = find(services, name)
    if found is None:
        return ServiceView(name=name, exists=False)
    spec = objects.spec(found)
    resolved = objects.resolved_ports(slices or [], endpoints or [], name)
    selector = service_selector(found)
    return ServiceView(name=name, exists=True, type=objects.text(spec.get("type")) or "ClusterIP",
                       cluster_ip=objects.text(spec.get("clusterIP")),
                       ports=tuple(each(lambda p: service_port_view(p, resolved),
                                        objects.dicts(spec.get("ports")), "Service port")),
                       selector="" if selector.nothing else str(selector))


@dataclass(frozen=True)
class EndpointView:
    """One endpoint address of the Service."""

    ip: str
    port: str
    pod: str
    node: str


@dataclass(frozen=True)
class EndpointsView:
    """The Service's endpoints split by condition."""

    source: str
    ready: tuple[EndpointView, ...] = ()
    not_ready: tuple[EndpointView, ...] = ()
    terminating: tuple[EndpointView, ...] = ()


def endpoints_view(slices: list[Obj], endpoints: list[Obj], *, service: str) -> EndpointsView:
    """Ready / not ready / terminating endpoints from EndpointSlices (or legacy Endpoints)."""
    source, addresses = objects.service_endpoints(slices, endpoints, service)
    buckets: dict[str, list[EndpointView]] = {state: [] for state in objects.ENDPOINT_STATES}
    for e in addresses:
        buckets[e.state].append(EndpointView(ip=e.ip, port=e.ports, pod=e.pod, node=e.node))

    def ordered(found: list[EndpointView]) -> tuple[EndpointView, ...]:
        return tuple(sorted(found, key=lambda e: (e.pod, e.ip)))

    return EndpointsView(source=source, ready=ordered(buckets[objects.READY]),
                         not_ready=ordered(buckets[objects.NOT_READY]),
                         terminating=ordered(buckets[objects.TERMINATING]))


# --- events and timeline -----------------------------------------------------------------------------
@dataclass(frozen=True)
class EventView:
    """One line of the events feed (like `kubectl get events`): repeats are one line with a count."""

    type: str
    reason: str
    object: str
    message: str
    count: int
    age: str
    sort_key: tuple[str, int]
    over: str = ""  # kubectl's "(x3 over 20s)": how long the repeats have gone on

    @property
    def repeats(self) -> str:
        """``(x3 over 20s)`` for a repeated event, empty for a single one."""
        if self.count <= 1:
            return ""
        return f"(x{self.count} over {self.over})" if self.over else f"(x{self.count})"


def resource_version_number(obj: Obj) -> int:
    """The resourceVersion as a number where it is one (it orders events within a second)."""
    return objects.count(objects.metadata(obj).get("resourceVersion"))


def _event_line(item: Obj) -> tuple[tuple[str, str, str, str], int, str, tuple[str, int]]:
    """An Event's (type, reason, object, message), count, first occurrence and sort key."""
    involved = objects.mapping(item.get("involvedObject") or item.get("regarding"))
    stamps = [objects.text(item.get(k)) for k in ("lastTimestamp", "eventTime", "firstTimestamp")]
    last = next((t for t in stamps if t), "") or objects.text(objects.metadata(item).get("creationTimestamp"))
    first = objects.text(item.get("firstTimestamp")) or objects.text(item.get("eventTime")) or last
    obj = f"{objects.text(involved.get('kind')).lower()}/{objects.text(involved.get('name'))}"
    key = (objects.text(item.get("type")) or "Normal", objects.text(item.get("reason")), obj,
           objects.text(item.get("message")) or objects.text(item.get("note")))
    series = objects.mapping(item.get("series"))
    count = objects.count(series.get("count")) or objects.count(item.get("count")) or 1
    return key, count, first, (last, resource_version_number(item))


def event_views(events: list[Obj], *, now: datetime, limit: int = EVENTS_SHOWN) -> list[EventView]:
    """At most ``limit`` lines, newest first. Events with the same type, reason, object and
    message are one line whose count is their summed counts (the recorder already counts
    repeats into one Event; this also merges repeats written as separate Events, e.g. across a
    recorder restart), stamped with the latest occurrence."""
    merged: dict[tuple[str, str, str, str], dict[str, Any]] = {}
    for key, count, first, sort_key in each(_event_line, events, "Event"):
        entry = merged.get(key)
        if entry is None:
            merged[key] = {"count": count, "first": first, "sort_key": sort_key}
        else:
            entry["count"] += count
            entry["first"] = min(filter(None, (entry["first"], first)), default="")
            entry["sort_key"] = max(entry["sort_key"], sort_key)
    views = []
    for (type_, reason, obj, message), entry in merged.items():
        last_at, first_at = objects.parse_time(entry["sort_key"][0]), objects.parse_time(entry["first"])
        over = (objects.human_age(first_at, last_at) if entry["count"] > 1 and first_at and last_at
                and last_at > first_at else "")
        views.append(EventView(type=type_, reason=reason, object=obj, message=message, count=entry["count"],
                               age=objects.human_age(last_at, now), sort_key=entry["sort_key"], over=over))
    views.sort(key=lambda e: e.sort_key, reverse=True)
    return views[:limit]


@dataclass(frozen=True)
class HealingStep:
    """One step of a healing and the milliseconds since the kill (None: not seen yet)."""

    label: str
    ms: int | None


@dataclass(frozen=True)
class HealingView:
    """A killed pod and its replacement's measured steps."""

    killed: str
    replacement: str
    steps: tuple[HealingStep, ...]
    complete: bool


STEP_LABELS = {"created": "replacement created", "scheduled": "scheduled", "running": "running",
               "ready": "ready", "endpoint": "in endpoints"}


def healing_views(entries: list[Healing]) -> list[HealingView]:
    """The timeline entries as the page shows them."""
    views = []
    for entry in entries:
        offsets = entry.offsets_ms()
        views.append(HealingView(
            killed=entry.killed, replacement=entry.replacement or "",
            steps=tuple(HealingStep(STEP_LABELS[s], offsets.get(s)) for s in STEPS), complete=entry.complete))
    return views


# --- the whole page ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class ClusterView:
    """Everything the page shows, built from one consistent snapshot."""

    seq: int
    namespace: str
    deployment: DeploymentView
    replicasets: tuple[ReplicaSetView, ...]
    groups: tuple[NodeGroup, ...]
    other_pods: tuple[PodCard, ...]
    service: ServiceView
    endpoints: EndpointsView
    events: tuple[EventView, ...]
    timeline: tuple[HealingView, ...]
    pod_count: int = 0
    synced: bool = True
    selector: str = ""


@dataclass(frozen=True)
class Scope:
    """What the dashboard looks at: from settings, passed explicitly to keep this module pure.
    ``selector`` (LBDEMO_SELECTOR) only stands in for the Service's own selector while the
    Service does not exist: the cards always follow the live Service."""

    namespace: str
    deployment: str
    service: str
    selector: Selector
    max_replicas: int


def selector_text(selector: Selector) -> str:
    """How the page names a selector (``app=backend``; ``<none>`` selects nothing)."""
    return str(selector) or "(everything)"


def effective_selector(services: Iterable[Obj], scope: Scope) -> Selector:
    """The pods the page calls "selected": the live Service's selector, else LBDEMO_SELECTOR."""
    found = find(services, scope.service)
    return scope.selector if found is None else service_selector(found)


def cluster_view(objects_by_kind: dict[str, list[Obj]], *, seq: int, scope: Scope, now: datetime,
                 timeline: list[Healing], synced: bool = True) -> ClusterView:
    """Build the whole page's view from a snapshot of the cache."""
    slices, legacy = objects_by_kind.get("EndpointSlice", []), objects_by_kind.get("Endpoints", [])
    services = objects_by_kind.get("Service", [])
    endpoints = endpoint_states(slices, legacy, scope.service)
    pods = objects_by_kind.get("Pod", [])
    selector = effective_selector(services, scope)
    cards = pod_cards(pods, now=now, selector=selector, endpoints=endpoints)
    return ClusterView(
        seq=seq, namespace=scope.namespace,
        deployment=deployment_view(objects_by_kind.get("Deployment", []), name=scope.deployment,
                                   max_replicas=scope.max_replicas),
        replicasets=tuple(replicaset_views(objects_by_kind.get("ReplicaSet", []),
                                           deployment=scope.deployment)),
        groups=tuple(node_groups(objects_by_kind.get("Node", []), [c for c in cards if c.selected])),
        other_pods=tuple(c for c in cards if not c.selected),
        service=service_view(services, name=scope.service, slices=slices, endpoints=legacy),
        endpoints=endpoints_view(slices, legacy, service=scope.service),
        events=tuple(event_views(objects_by_kind.get("Event", []), now=now)),
        timeline=tuple(healing_views(timeline)), pod_count=len(pods), synced=synced,
        selector=selector_text(selector),
    )


def utcnow() -> datetime:
    """The current time, timezone-aware."""
    return datetime.now(UTC)
