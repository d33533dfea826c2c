"""The informer cache: the dashboard's copy of the watched cluster objects, as plain dicts.

The watch hub (dashboard.hub) feeds it; pages and websocket consumers read it. It is pure
data with no I/O and no locks because it is only ever touched on the event loop: the hub's
threads hand their results over at one point (``loop.call_soon_threadsafe``).

Every change gets the next number of one sequence and is kept in a bounded change log, so a
consumer that has shown the state up to sequence N asks for "what changed since N" and
renders only that; when N has already fallen out of the log (a slow or reconnecting client)
the answer is None and the consumer sends a full snapshot instead.

A relist (after a 410 Gone, a reconnect, a stall) replaces one kind's objects wholesale and
reports the difference as ordinary changes: DELETED for objects that vanished while the
watch was down, ADDED for new ones, MODIFIED for those whose resourceVersion moved. That is
how the cache converges to a fresh LIST with no stale and no missing object.

Objects are kept without ``metadata.managedFields``, as client-go informers keep them with
``TransformStripManagedFields``: the page never reads them, and they are often the largest part
of an object (at 10,000 pods, megabytes of the dashboard's memory).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

from dashboard import objects

Obj = dict[str, Any]
Objects = list[Obj]  # named outside ClusterCache, whose method `list` shadows the builtin there

ADDED, MODIFIED, DELETED = "ADDED", "MODIFIED", "DELETED"


def without_managed_fields(obj: Obj) -> Obj:
    """The object as the cache keeps it: its managedFields dropped (in place; the object is the
    cache's own copy, decoded from the API's answer)."""
    metadata = obj.get("metadata")
    if isinstance(metadata, dict):
        metadata.pop("managedFields", None)
    return obj


def obj_name(obj: Obj) -> str:
    """The object's metadata.name ('' if it has none, or is not an object at all)."""
    return objects.name(obj)


def obj_rv(obj: Obj) -> str:
    """The object's metadata.resourceVersion ('' if it has none)."""
    return objects.text(objects.metadata(obj).get("resourceVersion"))


@dataclass(frozen=True, slots=True)
class Change:
    """One applied change: ``obj`` is the new object, or the last known one for DELETED."""

    seq: int
    kind: str
    event: str
    name: str
    obj: Obj
    observed: float


@dataclass
class ClusterCache:
    """Objects by kind and name, a sequence number and a bounded log of recent changes."""

    history: int = 2000
    seq: int = 0
    objects: dict[str, dict[str, Obj]] = field(default_factory=dict)
    synced: set[str] = field(default_factory=set)
    log: deque[Change] = field(init=False)

    def __post_init__(self) -> None:
        self.log = deque(maxlen=self.history)

    def _record(self, kind: str, event: str, name: str, obj: Obj, observed: float) -> Change:
        """Number a change and remember it in the log."""
        self.seq += 1
        change = Change(self.seq, kind, event, name, obj, observed)
        self.log.append(change)
        return change

    def apply(self, kind: str, event: str, obj: Obj, *, observed: float) -> Change | None:
        """Apply one watch event; returns the change, or None if it changed nothing."""
        name = obj_name(obj)
        if not name or not isinstance(obj, dict) or event not in {ADDED, MODIFIED, DELETED}:
            return None
        objects = self.objects.setdefault(kind, {})
        if event == DELETED:
            last = objects.pop(name, None)
            if last is None:
                return None
            return self._record(kind, DELETED, name, without_managed_fields(obj), observed)
        old = objects.get(name)
        if old is not None and obj_rv(old) == obj_rv(obj) and obj_rv(obj):
            return None
        objects[name] = without_managed_fields(obj)
        return self._record(kind, ADDED if old is None else MODIFIED, name, obj, observed)

    def replace(self, kind: str, items: Iterable[Obj], *, observed: float) -> list[Change]:
        """Replace a kind's objects with a fresh LIST and return the difference as changes."""
        fresh = {obj_name(obj): without_managed_fields(obj)
                 for obj in items if isinstance(obj, dict) and obj_name(obj)}
        objects = self.objects.setdefault(kind, {})
        changes = [self._record(kind, DELETED, name, old, observed)
                   for name, old in list(objects.items()) if name not in fresh]
        for name, obj in fresh.items():
            old = objects.get(name)
            if old is None:
                changes.append(self._record(kind, ADDED, name, obj, observed))
            elif obj_rv(old) != obj_rv(obj) or not obj_rv(obj):
                changes.append(self._record(kind, MODIFIED, name, obj, observed))
        self.objects[kind] = fresh
        self.synced.add(kind)
        return changes

    def changes_since(self, seq: int) -> list[Change] | None:
        """Changes after ``seq`` in order, or None if some of them are no longer in the log."""
        if seq >= self.seq:
            return []
        if not self.log or self.log[0].seq > seq + 1:
            return None
        return list(islice(self.log, seq + 1 - self.log[0].seq, None))

    def list(self, kind: str) -> list[Obj]:
        """All objects of a kind (a new list; the objects are never mutated in place)."""
        return list(self.objects.get(kind, {}).values())

    def get(self, kind: str, name: str) -> Obj | None:
        """One object by kind and name."""
        return self.objects.get(kind, {}).get(name)

    def named(self, kind: str) -> dict[str, Obj]:
        """A copy of a kind's objects by name (a C-speed dict copy: the renderer's index of 10,000
        pods without a Python loop over them), taken with :meth:`snapshot` on the loop."""
        return dict(self.objects.get(kind, {}))

    def snapshot(self) -> tuple[int, dict[str, Objects]]:
        """A consistent copy of everything: (seq, kind -> objects), safe to read on any thread."""
        return self.seq, {kind: list(objects.values()) for kind, objects in self.objects.items()}
