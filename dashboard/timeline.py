"""The self-healing timeline: how long the cluster took to replace a killed pod, step by step.

When a pod owned by a ReplicaSet starts terminating (or vanishes) while that ReplicaSet still
wants as many pods as before (a kill, not a scale-down), the timeline opens an entry; the next
pod that the same ReplicaSet creates is its replacement, and the entry records when the
dashboard saw that replacement created, scheduled onto a node, running, ready, and finally
listed as a ready endpoint of a Service. Times are the dashboard's own observation times
(millisecond resolution), measured from the moment the kill was seen —
Kubernetes timestamps only have whole seconds.

Fed by the hub on the event loop with every batch of cache changes; pure data.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dashboard.cache import Change, ClusterCache

# How long an entry without a replacement is shown (a scale-down never gets one).
PENDING_SECONDS = 15.0
STEPS = ("created", "scheduled", "running", "ready", "endpoint")


def controller_uid(pod: dict[str, Any]) -> str:
    """The uid of the pod's controlling owner (its ReplicaSet), or ''."""
    for ref in (pod.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("controller"):
            return str(ref.get("uid") or "")
    return ""


def pod_is_running(pod: dict[str, Any]) -> bool:
    """Phase Running with at least one running container."""
    status = pod.get("status") or {}
    return status.get("phase") == "Running" and any(
        "running" in (cs.get("state") or {}) for cs in status.get("containerStatuses") or [])


def pod_is_ready(pod: dict[str, Any]) -> bool:
    """The pod's Ready condition is True."""
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (pod.get("status") or {}).get("conditions") or [])


def ready_endpoint_pods(obj: dict[str, Any], kind: str) -> set[str]:
    """Names of pods listed as ready endpoints in an EndpointSlice or an Endpoints object."""
    names: set[str] = set()
    if kind == "EndpointSlice":
        for endpoint in obj.get("endpoints") or []:
            ready = (endpoint.get("conditions") or {}).get("ready")
            ref = endpoint.get("targetRef") or {}
            if ready is not False and ref.get("kind") == "Pod":
                names.add(str(ref.get("name")))
    else:
        for subset in obj.get("subsets") or []:
            for address in subset.get("addresses") or []:
                ref = address.get("targetRef") or {}
                if ref.get("kind") == "Pod":
                    names.add(str(ref.get("name")))
    return names


@dataclass
class Healing:
    """One killed pod and the measured life of its replacement."""

    killed: str
    owner: str
    killed_at: float
    replacement: str | None = None
    times: dict[str, float] = field(default_factory=dict)

    def offsets_ms(self) -> dict[str, int]:
        """Milliseconds from the kill to each step seen so far."""
        return {step: round((self.times[step] - self.killed_at) * 1000)
                for step in STEPS if step in self.times}

    @property
    def complete(self) -> bool:
        """Every step has been seen."""
        return all(step in self.times for step in STEPS)


class Timeline:
    """The last few healings, newest first."""

    def __init__(self, *, keep: int = 6) -> None:
        self.entries: deque[Healing] = deque(maxlen=keep)

    def visible(self, now: float) -> list[Healing]:
        """Entries worth showing: replaced ones, and recent kills still waiting for a replacement."""
        return [e for e in self.entries if e.replacement or now - e.killed_at < PENDING_SECONDS]

    def _entry_for_killed(self, name: str) -> Healing | None:
        return next((e for e in self.entries if e.killed == name), None)

    def _entry_for_replacement(self, name: str) -> Healing | None:
        return next((e for e in self.entries if e.replacement == name), None)

    def observe(self, changes: list[Change], cache: ClusterCache) -> None:
        """Update the entries from one batch of applied changes."""
        for change in changes:
            if change.kind == "Pod":
                self._observe_pod(change, cache)
            elif change.kind in {"EndpointSlice", "Endpoints"} and change.event != "DELETED":
                ready = ready_endpoint_pods(change.obj, change.kind)
                for entry in self.entries:
                    if entry.replacement in ready and "endpoint" not in entry.times:
                        entry.times["endpoint"] = change.observed

    @staticmethod
    def _replacement_expected(name: str, owner: str, cache: ClusterCache) -> bool:
        """Whether the owning ReplicaSet wants more pods than remain without this one (a kill),
        rather than fewer (a scale-down, which gets no replacement and no entry)."""
        owner_rs = next((rs for rs in cache.list("ReplicaSet")
                         if (rs.get("metadata") or {}).get("uid") == owner), None)
        if owner_rs is None:
            return True
        desired = int((owner_rs.get("spec") or {}).get("replicas") or 0)
        remaining = sum(1 for p in cache.list("Pod")
                        if controller_uid(p) == owner and (p.get("metadata") or {}).get("name") != name
                        and not (p.get("metadata") or {}).get("deletionTimestamp"))
        return desired > remaining

    def _observe_pod(self, change: Change, cache: ClusterCache) -> None:
        """Open an entry on a kill, match a replacement on a create, note its progress."""
        pod, name = change.obj, change.name
        owner = controller_uid(pod)
        terminating = bool((pod.get("metadata") or {}).get("deletionTimestamp")) or change.event == "DELETED"
        if terminating:
            if (owner and self._entry_for_killed(name) is None
                    and self._replacement_expected(name, owner, cache)):
                self.entries.appendleft(Healing(killed=name, owner=owner, killed_at=change.observed))
            return
        entry = self._entry_for_replacement(name)
        if entry is None and change.event == "ADDED" and owner:
            waiting = (e for e in reversed(self.entries) if e.owner == owner and e.replacement is None)
            entry = next(waiting, None)
            if entry is not None:
                entry.replacement = name
                entry.times["created"] = change.observed
        if entry is None:
            return
        if (pod.get("spec") or {}).get("nodeName"):
            entry.times.setdefault("scheduled", change.observed)
        if pod_is_running(pod):
            entry.times.setdefault("running", change.observed)
        if pod_is_ready(pod):
            entry.times.setdefault("ready", change.observed)
