"""Pure functions that turn cached cluster objects into what the page shows.

Nothing here does I/O or touches the cache: functions take plain object dicts (as the API
returns them) and return small frozen dataclasses the templates render. The same functions
serve the first page load and every websocket frame, so both always agree.

Pod status follows kubectl's STATUS column exactly (kubectl's printPod): the pod's phase,
overridden by its status reason, then by each container's waiting reason (ContainerCreating,
CrashLoopBackOff, ImagePullBackOff, ErrImagePull, ...) or terminated reason, and finally
"Terminating" once the pod has a deletionTimestamp.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from dashboard.timeline import STEPS, Healing

Obj = dict[str, Any]

UNSCHEDULED = "(not scheduled)"
EVENTS_SHOWN = 30


# --- label selectors -------------------------------------------------------------------------
def parse_selector(text: str) -> list[tuple[str, str, str]]:
    """Parse an equality-based label selector ("app=backend,tier!=db") into (key, op, value)."""
    terms: list[tuple[str, str, str]] = []
    for raw in text.split(","):
        term = raw.strip()
        if not term:
            continue
        match = re.fullmatch(r"([A-Za-z0-9./_-]+)\s*(==|!=|=)\s*([A-Za-z0-9._-]*)", term)
        if match is None:
            raise ValueError(f"unsupported label selector term {term!r}")
        key, op, value = match.groups()
        terms.append((key, "!=" if op == "!=" else "=", value))
    return terms


def selector_matches(labels: dict[str, str] | None, terms: list[tuple[str, str, str]]) -> bool:
    """True if ``labels`` satisfy every selector term (an empty selector matches nothing)."""
    if not terms:
        return False
    labels = labels or {}
    return all((labels.get(key) == value) == (op == "=") for key, op, value in terms)


def labels_of(obj: Obj) -> dict[str, str]:
    """metadata.labels (never None)."""
    return dict((obj.get("metadata") or {}).get("labels") or {})


# --- time --------------------------------------------------------------------------------------
def parse_time(value: str | None) -> datetime | None:
    """Parse a Kubernetes RFC 3339 timestamp ('2026-11-24T21:00:00Z', optional fraction)."""
    if not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def human_age(created: datetime | None, now: datetime) -> str:
    """kubectl's AGE column (apimachinery's HumanDuration)."""
    if created is None:
        return "<unknown>"
    seconds = int((now - created).total_seconds())
    if seconds < -1:
        return "<invalid>"
    seconds = max(seconds, 0)
    minutes, hours = seconds // 60, seconds // 3600
    if seconds < 120:
        return f"{seconds}s"
    if minutes < 10:
        return f"{minutes}m{seconds % 60}s" if seconds % 60 else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    if hours < 8:
        return f"{hours}h{minutes % 60}m" if minutes % 60 else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        return f"{hours // 24}d{hours % 24}h" if hours % 24 else f"{hours // 24}d"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        years = hours // 24 // 365
        return f"{years}y{(hours // 24) % 365}d" if (hours // 24) % 365 else f"{years}y"
    return f"{hours // 24 // 365}y"


# --- pods ----------------------------------------------------------------------------------------
def pod_status(pod: Obj) -> str:
    """The STATUS kubectl prints for a pod."""
    metadata, status = pod.get("metadata") or {}, pod.get("status") or {}
    reason = status.get("phase") or "Unknown"
    if status.get("reason"):
        reason = status["reason"]
    initializing = False
    init_statuses = status.get("initContainerStatuses") or []
    for index, container in enumerate(init_statuses):
        state = container.get("state") or {}
        terminated, waiting = state.get("terminated"), state.get("waiting")
        if terminated and terminated.get("exitCode") == 0:
            continue
        if terminated:
            reason = "Init:" + (terminated.get("reason") or (f"Signal:{terminated['signal']}"
                                                             if terminated.get("signal")
                                                             else f"ExitCode:{terminated.get('exitCode')}"))
        elif waiting and waiting.get("reason") and waiting["reason"] != "PodInitializing":
            reason = "Init:" + waiting["reason"]
        else:
            reason = f"Init:{index}/{len(init_statuses)}"
        initializing = True
        break
    if not initializing:
        has_running = False
        for container in reversed(status.get("containerStatuses") or []):
            state = container.get("state") or {}
            waiting, terminated = state.get("waiting"), state.get("terminated")
            if waiting and waiting.get("reason"):
                reason = waiting["reason"]
            elif terminated and terminated.get("reason"):
                reason = terminated["reason"]
            elif terminated:
                reason = (f"Signal:{terminated['signal']}" if terminated.get("signal")
                          else f"ExitCode:{terminated.get('exitCode')}")
            elif container.get("ready") and state.get("running") is not None:
                has_running = True
        if reason == "Completed" and has_running:
            reason = "Running" if condition_true(pod, "Ready") else "NotReady"
    if metadata.get("deletionTimestamp") and status.get("reason") == "NodeLost":
        return "Unknown"
    if metadata.get("deletionTimestamp"):
        return "Terminating"
    return reason


def condition_true(obj: Obj, kind: str) -> bool:
    """True if status.conditions has ``kind`` with status "True"."""
    return any(c.get("type") == kind and c.get("status") == "True"
               for c in (obj.get("status") or {}).get("conditions") or [])


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

    @property
    def dom_id(self) -> str:
        """The card's DOM id: ``pod-<uid>`` (uids are UUIDs; anything else is slugged)."""
        safe = re.fullmatch(r"[A-Za-z0-9-]+", self.uid)
        return f"pod-{self.uid if safe else dom_slug(self.uid)}"


def endpoint_states(slices: list[Obj], endpoints: list[Obj], service: str) -> dict[str, str]:
    """Pod name -> "ready" | "not-ready" | "terminating" for the Service's endpoints."""
    states: dict[str, str] = {}
    for item in slices:
        if labels_of(item).get("kubernetes.io/service-name") != service:
            continue
        for endpoint in item.get("endpoints") or []:
            ref = endpoint.get("targetRef") or {}
            if ref.get("kind") != "Pod" or not ref.get("name"):
                continue
            conditions = endpoint.get("conditions") or {}
            if conditions.get("terminating"):
                states[ref["name"]] = "terminating"
            elif conditions.get("ready") is False:
                states[ref["name"]] = "not-ready"
            else:
                states[ref["name"]] = "ready"
    for item in endpoints:
        if (item.get("metadata") or {}).get("name") != service:
            continue
        for subset in item.get("subsets") or []:
            for key, state in (("addresses", "ready"), ("notReadyAddresses", "not-ready")):
                for address in subset.get(key) or []:
                    ref = address.get("targetRef") or {}
                    if ref.get("kind") == "Pod" and ref.get("name"):
                        states[ref["name"]] = state
    return states


def node_group_id(node: str) -> str:
    """DOM id of the card container of a node's backend pods."""
    return f"pods-{dom_slug(node)}"


OTHER_GROUP_ID = "pods-other"


def pod_card(pod: Obj, *, now: datetime, selector: list[tuple[str, str, str]], endpoints: dict[str, str],
             leaving: bool = False) -> PodCard:
    """Build the card of one pod."""
    metadata, spec, status = pod.get("metadata") or {}, pod.get("spec") or {}, pod.get("status") or {}
    containers = status.get("containerStatuses") or []
    total = len(spec.get("containers") or []) or len(containers)
    ready = sum(1 for c in containers if c.get("ready"))
    text = pod_status(pod)
    labels = labels_of(pod)
    selected = selector_matches(labels, selector)
    node = spec.get("nodeName") or UNSCHEDULED
    name = str(metadata.get("name") or "")
    return PodCard(
        uid=str(metadata.get("uid") or name), name=name, ip=str(status.get("podIP") or ""), node=node,
        phase=str(status.get("phase") or "Unknown"),
        status=text, status_class=status_class(text), ready=f"{ready}/{total}",
        is_ready=condition_true(pod, "Ready"),
        restarts=sum(int(c.get("restartCount") or 0) for c in containers),
        age=human_age(parse_time(metadata.get("creationTimestamp")), now),
        created=str(metadata.get("creationTimestamp") or ""),
        labels=tuple(f"{k}={v}" for k, v in sorted(labels.items())), selected=selected,
        endpoint=endpoints.get(name, "none"),
        group_id=node_group_id(node) if selected else OTHER_GROUP_ID, leaving=leaving,
    )


def created_key(pod: Obj) -> tuple[str, str]:
    """Sort key: oldest first, then by name."""
    metadata = pod.get("metadata") or {}
    return str(metadata.get("creationTimestamp") or ""), str(metadata.get("name") or "")


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
    ready = {str((n.get("metadata") or {}).get("name")): condition_true(n, "Ready") for n in nodes}
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
    containers = template_spec.get("containers") or []
    return str(containers[0].get("image") or "") if containers else ""


def deployment_view(deployments: list[Obj], *, name: str, max_replicas: int) -> DeploymentView:
    """The configured Deployment, or a placeholder saying it does not exist."""
    found = next((d for d in deployments if (d.get("metadata") or {}).get("name") == name), None)
    if found is None:
        return DeploymentView(name=name, exists=False, max_replicas=max_replicas)
    spec, status = found.get("spec") or {}, found.get("status") or {}
    match_labels = (spec.get("selector") or {}).get("matchLabels") or {}
    return DeploymentView(
        name=name, exists=True, desired=int(spec.get("replicas") or 0),
        current=int(status.get("replicas") or 0),
        updated=int(status.get("updatedReplicas") or 0), ready=int(status.get("readyReplicas") or 0),
        available=int(status.get("availableReplicas") or 0),
        image=first_image(((spec.get("template") or {}).get("spec")) or {}),
        strategy=str((spec.get("strategy") or {}).get("type") or ""),
        selector=",".join(f"{k}={v}" for k, v in sorted(match_labels.items())), max_replicas=max_replicas,
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


def replicaset_views(replicasets: list[Obj], *, deployment: str) -> list[ReplicaSetView]:
    """The Deployment's ReplicaSets, newest revision first."""
    views = []
    for rs in replicasets:
        metadata, spec, status = rs.get("metadata") or {}, rs.get("spec") or {}, rs.get("status") or {}
        owners = metadata.get("ownerReferences") or []
        if not any(o.get("kind") == "Deployment" and o.get("name") == deployment for o in owners):
            continue
        desired = int(spec.get("replicas") or 0)
        views.append(ReplicaSetView(
            name=str(metadata.get("name")),
            revision=str((metadata.get("annotations") or {}).get("deployment.kubernetes.io/revision") or ""),
            template_hash=str(labels_of(rs).get("pod-template-hash") or ""),
            image=first_image(((spec.get("template") or {}).get("spec")) or {}),
            desired=desired, current=int(status.get("replicas") or 0),
            ready=int(status.get("readyReplicas") or 0),
            active=desired > 0,
        ))
    return sorted(views, key=lambda v: (-int(v.revision or 0), v.name))


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


def resolved_target_ports(slices: list[Obj], endpoints: list[Obj], *, service: str) -> dict[str, int]:
    """Service port name -> the container port its targetPort resolves to, as the endpoints
    controller published it (EndpointSlice/Endpoints ports carry the Service port's name and
    the resolved number)."""
    resolved: dict[str, int] = {}
    for item in endpoints:
        if (item.get("metadata") or {}).get("name") == service:
            for subset in item.get("subsets") or []:
                for port in subset.get("ports") or []:
                    if port.get("port"):
                        resolved[str(port.get("name") or "")] = int(port["port"])
    for item in slices:
        if labels_of(item).get("kubernetes.io/service-name") == service:
            for port in item.get("ports") or []:
                if port.get("port"):
                    resolved[str(port.get("name") or "")] = int(port["port"])
    return resolved


def service_view(services: list[Obj], *, name: str, slices: list[Obj] | None = None,
                 endpoints: list[Obj] | None = None) -> ServiceView:
    """The configured Service, or a placeholder saying it does not exist; a named targetPort is
    resolved through the Service's EndpointSlices (or legacy Endpoints) when they are given."""
    found = next((s for s in services if (s.get("metadata") or {}).get("name") == name), None)
    if found is None:
        return ServiceView(name=name, exists=False)
    spec = found.get("spec") or {}
    resolved = resolved_target_ports(slices or [], endpoints or [], service=name)
    ports = []
    for port in spec.get("ports") or []:
        number = int(port.get("port") or 0)
        target = port.get("targetPort", number)
        if isinstance(target, int) or str(target).isdigit():
            target_number: int | None = int(target)
        else:
            target_number = resolved.get(str(port.get("name") or ""))
        ports.append(ServicePortView(
            name=str(port.get("name") or ""), port=number, protocol=str(port.get("protocol") or "TCP"),
            target=str(target), target_number=target_number,
            node_port=int(port["nodePort"]) if port.get("nodePort") else None))
    return ServiceView(name=name, exists=True, type=str(spec.get("type") or "ClusterIP"),
                       cluster_ip=str(spec.get("clusterIP") or ""), ports=tuple(ports),
                       selector=",".join(f"{k}={v}" for k, v in sorted((spec.get("selector") or {}).items())))


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
    buckets: dict[str, list[EndpointView]] = {"ready": [], "not-ready": [], "terminating": []}
    mine = [s for s in slices if labels_of(s).get("kubernetes.io/service-name") == service]
    for item in mine:
        ports = ",".join(str(p.get("port")) for p in item.get("ports") or [] if p.get("port"))
        for endpoint in item.get("endpoints") or []:
            conditions = endpoint.get("conditions") or {}
            state = ("terminating" if conditions.get("terminating")
                     else "not-ready" if conditions.get("ready") is False else "ready")
            ref = endpoint.get("targetRef") or {}
            for address in endpoint.get("addresses") or []:
                buckets[state].append(EndpointView(ip=str(address), port=ports,
                                                   pod=str(ref.get("name") or ""),
                                                   node=str(endpoint.get("nodeName") or "")))
    source = "EndpointSlice"
    if not mine:
        source = "Endpoints"
        for item in endpoints:
            if (item.get("metadata") or {}).get("name") != service:
                continue
            for subset in item.get("subsets") or []:
                ports = ",".join(str(p.get("port")) for p in subset.get("ports") or [] if p.get("port"))
                for key, state in (("addresses", "ready"), ("notReadyAddresses", "not-ready")):
                    for address in subset.get(key) or []:
                        ref = address.get("targetRef") or {}
                        buckets[state].append(EndpointView(ip=str(address.get("ip") or ""), port=ports,
                                                           pod=str(ref.get("name") or ""),
                                                           node=str(address.get("nodeName") or "")))
    def ordered(items: list[EndpointView]) -> tuple[EndpointView, ...]:
        return tuple(sorted(items, key=lambda e: (e.pod, e.ip)))

    return EndpointsView(source=source, ready=ordered(buckets["ready"]),
                         not_ready=ordered(buckets["not-ready"]), terminating=ordered(buckets["terminating"]))


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
    rv = str((obj.get("metadata") or {}).get("resourceVersion") or "")
    return int(rv) if rv.isdigit() else 0


def event_views(events: list[Obj], *, now: datetime, limit: int = EVENTS_SHOWN) -> list[EventView]:
    """At most ``limit`` lines, newest first. Events with the same type, reason, object and
    message are one line whose count is their summed counts (the recorder already counts
    repeats into one Event; this also merges repeats written as separate Events, e.g. across a
    recorder restart), stamped with the latest occurrence."""
    merged: dict[tuple[str, str, str, str], dict[str, Any]] = {}
    for item in events:
        involved = item.get("involvedObject") or item.get("regarding") or {}
        last = str(item.get("lastTimestamp") or item.get("eventTime") or item.get("firstTimestamp")
                   or (item.get("metadata") or {}).get("creationTimestamp") or "")
        first = str(item.get("firstTimestamp") or item.get("eventTime") or last)
        type_ = str(item.get("type") or "Normal")
        reason = str(item.get("reason") or "")
        obj = f"{str(involved.get('kind') or '').lower()}/{involved.get('name') or ''}"
        message = str(item.get("message") or item.get("note") or "")
        key = (type_, reason, obj, message)
        series = item.get("series") or {}
        count = int(series.get("count") or item.get("count") or 1)
        sort_key = (last, resource_version_number(item))
        entry = merged.get(key)
        if entry is None:
            merged[key] = {"count": count, "first": first, "sort_key": sort_key}
        else:
            entry["count"] += count
            entry["first"] = min(filter(None, (entry["first"], first)), default="")
            entry["sort_key"] = max(entry["sort_key"], sort_key)
    views = []
    for (type_, reason, obj, message), entry in merged.items():
        last_at, first_at = parse_time(entry["sort_key"][0]), parse_time(entry["first"])
        over = (human_age(first_at, last_at) if entry["count"] > 1 and first_at and last_at
                and last_at > first_at else "")
        views.append(EventView(type=type_, reason=reason, object=obj, message=message, count=entry["count"],
                               age=human_age(last_at, now), sort_key=entry["sort_key"], over=over))
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


@dataclass(frozen=True)
class Scope:
    """What the dashboard looks at: from settings, passed explicitly to keep this module pure."""

    namespace: str
    deployment: str
    service: str
    selector: list[tuple[str, str, str]]
    max_replicas: int


def cluster_view(objects: dict[str, list[Obj]], *, seq: int, scope: Scope, now: datetime,
                 timeline: list[Healing], synced: bool = True) -> ClusterView:
    """Build the whole page's view from a snapshot of the cache."""
    endpoints = endpoint_states(objects.get("EndpointSlice", []), objects.get("Endpoints", []), scope.service)
    pods = sorted(objects.get("Pod", []), key=created_key)
    cards = [pod_card(p, now=now, selector=scope.selector, endpoints=endpoints) for p in pods]
    return ClusterView(
        seq=seq, namespace=scope.namespace,
        deployment=deployment_view(objects.get("Deployment", []), name=scope.deployment,
                                   max_replicas=scope.max_replicas),
        replicasets=tuple(replicaset_views(objects.get("ReplicaSet", []), deployment=scope.deployment)),
        groups=tuple(node_groups(objects.get("Node", []), [c for c in cards if c.selected])),
        other_pods=tuple(c for c in cards if not c.selected),
        service=service_view(objects.get("Service", []), name=scope.service,
                             slices=objects.get("EndpointSlice", []), endpoints=objects.get("Endpoints", [])),
        endpoints=endpoints_view(objects.get("EndpointSlice", []), objects.get("Endpoints", []),
                                 service=scope.service),
        events=tuple(event_views(objects.get("Event", []), now=now)),
        timeline=tuple(healing_views(timeline)), pod_count=len(pods), synced=synced,
    )


def utcnow() -> datetime:
    """The current time, timezone-aware."""
    return datetime.now(UTC)
