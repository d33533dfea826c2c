"""What the lessons remember of the watched cluster: a short, timestamped history.

The lesson checks must judge behaviour *observed* during a lesson ("the replacement was Ready
3.2 s after the kill", "the pod got no request while it was not ready"), which the informer
cache alone cannot answer: it only holds the present. So one :class:`ClusterHistory` per process
is registered on the watch hub as a listener (``hub.add_listener``) and records, with the
dashboard's observation times (``Change.observed``, unix seconds):

- every pod it sees, by uid: when it was created, started terminating and vanished, its
  labels, owner, IP, image, kubectl STATUS, Ready condition and its state in the Service's
  endpoints (ready / not-ready / terminating / none) — each as a list of (time, value) steps;
- the configured Deployment's spec.replicas, generation, template image and ready count;
- each ReplicaSet's desired and ready counts;
- the number of ready endpoints of the configured Service;
- Events (reason, object, message).

It reads nothing but the hub's changes (no API call, ever), so a change made with kubectl is
recorded exactly like one made from the page. Pure data, touched only on the event loop; pods
gone for longer than ``keep_seconds`` are forgotten.
"""

from __future__ import annotations

import hashlib
import json
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from dashboard.cache import Change, ClusterCache, Obj
from dashboard.objects import (
    controller_uid,
    endpoint_states,
    labels,
    metadata,
    name,
    parse_time,
    pod_ready,
    pod_status,
    uid,
)
from dashboard.presenters import Scope, first_image

T = TypeVar("T")


@dataclass
class Steps(Generic[T]):
    """A value over time: (time, value) steps, appended only when the value changes."""

    steps: list[tuple[float, T]] = field(default_factory=list)

    def record(self, t: float, value: T) -> bool:
        """Note ``value`` at ``t``; True if it changed."""
        if self.steps and self.steps[-1][1] == value:
            return False
        self.steps.append((t, value))
        return True

    def at(self, t: float, default: T) -> T:
        """The value in effect at ``t``."""
        value = default
        for since, item in self.steps:
            if since > t:
                break
            value = item
        return value

    @property
    def last(self) -> T | None:
        """The current value (None if never recorded)."""
        return self.steps[-1][1] if self.steps else None

    def first_time(self, value: T, *, after: float = 0.0) -> float | None:
        """When the value first became ``value`` at or after ``after``."""
        return next((t for t, item in self.steps if item == value and t >= after), None)

    def intervals(self, predicate: Any, *, until: float) -> list[tuple[float, float]]:
        """Stretches of time (start, end) during which ``predicate(value)`` held, up to ``until``."""
        out: list[tuple[float, float]] = []
        for index, (t, value) in enumerate(self.steps):
            if not predicate(value):
                continue
            end = self.steps[index + 1][0] if index + 1 < len(self.steps) else until
            out.append((t, min(end, until)))
        return out


@dataclass
class PodTrack:
    """One pod's life as the dashboard watched it."""

    uid: str
    name: str
    created: float
    selected: Steps[bool] = field(default_factory=Steps)
    labels: Steps[str] = field(default_factory=Steps)
    owner: Steps[str] = field(default_factory=Steps)
    status: Steps[str] = field(default_factory=Steps)
    ready: Steps[bool] = field(default_factory=Steps)
    endpoint: Steps[str] = field(default_factory=Steps)
    ip: str = ""
    image: str = ""
    template_hash: str = ""
    terminating: float | None = None
    deleted: float | None = None
    pull_errors: list[float] = field(default_factory=list)

    @property
    def alive(self) -> bool:
        """Not deleted and not terminating."""
        return self.deleted is None and self.terminating is None


@dataclass
class EventRecord:
    """One Event as first seen (or seen again with a higher count)."""

    t: float
    reason: str
    kind: str
    name: str
    message: str
    count: int


def template_digest(template: Obj) -> str:
    """A short digest of a pod template, to tell two versions of a Deployment apart."""
    return hashlib.sha1(json.dumps(template, sort_keys=True).encode()).hexdigest()[:10]


@dataclass
class ClusterHistory:
    """The recorded history (see the module docstring); fed by :meth:`observe`."""

    scope: Scope
    keep_seconds: float = 900.0
    pods: dict[str, PodTrack] = field(default_factory=dict)
    replicas: Steps[int] = field(default_factory=Steps)
    ready_replicas: Steps[int] = field(default_factory=Steps)
    generation: Steps[int] = field(default_factory=Steps)
    template: Steps[str] = field(default_factory=Steps)
    image: Steps[str] = field(default_factory=Steps)
    service_spec: Steps[str] = field(default_factory=Steps)
    ready_endpoints: Steps[int] = field(default_factory=Steps)
    replicasets: dict[str, tuple[Steps[int], Steps[int]]] = field(default_factory=dict)
    events: list[EventRecord] = field(default_factory=list)
    listeners: list[Any] = field(default_factory=list)
    _event_counts: dict[str, int] = field(default_factory=dict)
    # Deleted pods in deletion order, so forgetting the old ones never walks every pod (10,000).
    _deleted: deque[tuple[float, str]] = field(default_factory=deque)

    # --- feeding --------------------------------------------------------------------------------
    def observe(self, changes: list[Change], cache: ClusterCache) -> None:
        """The hub's listener: record one batch of changes, then tell the listeners."""
        endpoints_changed = False
        now = max((c.observed for c in changes), default=0.0)
        for change in changes:
            if change.kind == "Pod":
                self._pod(change)
            elif change.kind == "Deployment" and change.name == self.scope.deployment:
                self._deployment(change)
            elif change.kind == "ReplicaSet":
                self._replicaset(change)
            elif change.kind == "Service" and change.name == self.scope.service:
                spec = (change.obj.get("spec") or {}) if change.event != "DELETED" else {}
                self.service_spec.record(change.observed, json.dumps(spec, sort_keys=True))
            elif change.kind in {"EndpointSlice", "Endpoints"}:
                endpoints_changed = True
            elif change.kind == "Event" and change.event != "DELETED":
                self._event(change)
        if endpoints_changed:
            self._endpoints(cache, now)
        self._forget(now)
        for listener in self.listeners:
            listener()

    def seed(self, cache: ClusterCache, now: float) -> None:
        """Record the cache's present state (the history starts when the lessons do). The pods
        already there were not seen being created: their creation time is their
        creationTimestamp (whole seconds, and never later than ``now``), so none of them can pass
        for a pod created during a lesson."""
        changes = [
            Change(0, kind, "ADDED", name, obj, now)
            for kind, objects in cache.objects.items()
            for name, obj in objects.items()
        ]
        self.observe(changes, cache)
        for pod in cache.list("Pod"):
            track = self.pods.get(uid(pod) or name(pod))
            created = parse_time(metadata(pod).get("creationTimestamp"))
            if track is not None:
                track.created = min(now - 1.0, created.timestamp() if created else now - 1.0)

    def _pod(self, change: Change) -> None:
        pod, t = change.obj, change.observed
        metadata = pod.get("metadata") or {}
        uid = str(metadata.get("uid") or change.name)
        track = self.pods.get(uid)
        if track is None:
            track = self.pods[uid] = PodTrack(uid=uid, name=change.name, created=t)
        if change.event == "DELETED":
            if track.deleted is None:
                self._deleted.append((t, uid))
            track.deleted = track.deleted or t
            track.terminating = track.terminating or t
            return
        pod_labels = labels(pod)
        track.selected.record(t, self.scope.selector.matches(pod_labels))
        track.labels.record(t, ",".join(f"{k}={v}" for k, v in sorted(pod_labels.items())))
        track.owner.record(t, controller_uid(pod))
        status = pod_status(pod)
        track.status.record(t, status)
        if status in {"ErrImagePull", "ImagePullBackOff"}:
            track.pull_errors.append(t)
        track.ready.record(t, pod_ready(pod))
        track.ip = str((pod.get("status") or {}).get("podIP") or track.ip)
        track.image = first_image(pod.get("spec") or {})
        track.template_hash = pod_labels.get("pod-template-hash", "")
        if metadata.get("deletionTimestamp") and track.terminating is None:
            track.terminating = t

    def _deployment(self, change: Change) -> None:
        t = change.observed
        if change.event == "DELETED":
            return
        obj = change.obj
        spec, status = obj.get("spec") or {}, obj.get("status") or {}
        self.replicas.record(t, int(spec.get("replicas") or 0))
        self.ready_replicas.record(t, int(status.get("readyReplicas") or 0))
        self.generation.record(t, int((obj.get("metadata") or {}).get("generation") or 0))
        template = spec.get("template") or {}
        self.template.record(t, template_digest(template))
        self.image.record(t, first_image(template.get("spec") or {}))

    def _replicaset(self, change: Change) -> None:
        desired, ready = self.replicasets.setdefault(change.name, (Steps(), Steps()))
        if change.event == "DELETED":
            desired.record(change.observed, 0)
            ready.record(change.observed, 0)
            return
        desired.record(change.observed, int((change.obj.get("spec") or {}).get("replicas") or 0))
        ready.record(change.observed, int((change.obj.get("status") or {}).get("readyReplicas") or 0))

    def _event(self, change: Change) -> None:
        obj = change.obj
        key = str((obj.get("metadata") or {}).get("uid") or change.name)
        count = int(obj.get("count") or (obj.get("series") or {}).get("count") or 1)
        if self._event_counts.get(key, 0) >= count:
            return
        self._event_counts[key] = count
        involved = obj.get("involvedObject") or obj.get("regarding") or {}
        self.events.append(
            EventRecord(
                t=change.observed,
                reason=str(obj.get("reason") or ""),
                kind=str(involved.get("kind") or ""),
                name=str(involved.get("name") or ""),
                message=str(obj.get("message") or obj.get("note") or ""),
                count=count,
            )
        )
        del self.events[:-500]

    def _endpoints(self, cache: ClusterCache, t: float) -> None:
        states = endpoint_states(cache.list("EndpointSlice"), cache.list("Endpoints"), self.scope.service)
        self.ready_endpoints.record(t, sum(1 for state in states.values() if state == "ready"))
        for track in self.pods.values():
            if track.deleted is None or track.endpoint.last not in {None, "none"}:
                track.endpoint.record(t, states.get(track.name, "none") if track.deleted is None else "none")

    def _forget(self, now: float) -> None:
        """Drop the pods deleted more than ``keep_seconds`` ago (oldest deletions first)."""
        while self._deleted and now - self._deleted[0][0] > self.keep_seconds:
            _, key = self._deleted.popleft()
            track = self.pods.get(key)
            if track is not None and track.deleted is not None and now - track.deleted > self.keep_seconds:
                del self.pods[key]

    # --- questions the checks ask ----------------------------------------------------------------
    def backend_pods(self) -> list[PodTrack]:
        """Pods that were selected by the backend selector at some point, oldest first."""
        return sorted(
            (p for p in self.pods.values() if any(v for _, v in p.selected.steps)), key=lambda p: p.created
        )

    def by_name(self, name: str) -> PodTrack | None:
        """The newest pod of that name."""
        found = [p for p in self.pods.values() if p.name == name]
        return max(found, key=lambda p: p.created) if found else None

    def replicaset_of(self, track: PodTrack) -> str:
        """The name of the ReplicaSet a pod belongs (or belonged) to: ``<deployment>-<hash>``."""
        return f"{self.scope.deployment}-{track.template_hash}" if track.template_hash else ""

    def min_ready_endpoints(self, start: float, end: float) -> int:
        """The fewest ready endpoints the Service had at any moment in [start, end]."""
        values = [self.ready_endpoints.at(start, 0)]
        values += [v for t, v in self.ready_endpoints.steps if start < t <= end]
        return min(values)
