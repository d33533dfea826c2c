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

from dashboard import objects

if TYPE_CHECKING:
    from dashboard.cache import Change, ClusterCache

# How long an entry without a replacement is shown (a scale-down never gets one).
PENDING_SECONDS = 15.0
STEPS = ("created", "scheduled", "running", "ready", "endpoint")


def ready_endpoint_pods(obj: dict[str, Any], kind: str) -> set[str]:
    """Names of pods listed as ready endpoints in an EndpointSlice or an Endpoints object."""
    return {pod for pod, state in objects.pod_states_of(obj, kind).items() if state == objects.READY}


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
        owner_rs = next((rs for rs in cache.list("ReplicaSet") if objects.uid(rs) == owner), None)
        if owner_rs is None:
            return True
        desired = objects.count(objects.spec(owner_rs).get("replicas"))
        remaining = sum(1 for p in cache.list("Pod")
                        if objects.controller_uid(p) == owner and objects.name(p) != name
                        and not objects.deleting(p))
        return desired > remaining

    def _observe_pod(self, change: Change, cache: ClusterCache) -> None:
        """Open an entry on a kill, match a replacement on a create, note its progress."""
        pod, name = change.obj, change.name
        owner = objects.controller_uid(pod)
        terminating = objects.deleting(pod) or change.event == "DELETED"
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
        if objects.spec(pod).get("nodeName"):
            entry.times.setdefault("scheduled", change.observed)
        if objects.pod_running(pod):
            entry.times.setdefault("running", change.observed)
        if objects.pod_ready(pod):
            entry.times.setdefault("ready", change.observed)
