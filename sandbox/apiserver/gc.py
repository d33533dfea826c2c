"""The garbage collector: ownerReferences, propagation policies and namespace termination.

In Kubernetes this is a controller in kube-controller-manager; here it runs inside the API
server process against the in-memory store, which makes it simple and exact. It is
level-triggered: every pass compares the objects with their owners and repairs what it finds,
so a pass missed (or a restart in the middle) is made up by the next one. A pass runs shortly
after any deletion and every few seconds anyway.

- An object whose owners (by uid) are all gone is deleted (background propagation; pods get
  their graceful termination). Dangling references next to live owners are dropped.
- An owner deleted with propagationPolicy=Foreground keeps the `foregroundDeletion` finalizer
  until its dependents are gone; with Orphan, the `orphan` finalizer until its dependents no
  longer reference it.
- A namespace being deleted has its content deleted, then disappears itself.
- Events expire an hour after they last changed (the real API server gives them a TTL), so a
  long-running lab does not accumulate them forever.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Sequence
from datetime import UTC, datetime, timedelta

from .errors import ApiError
from .kinds import event
from .registry import NAMESPACES, Registry
from .resources import BY_KEY
from .store import Entry, copy_object

log = logging.getLogger(__name__)

EVENTS = event.RESOURCE
EVENT_TTL = timedelta(hours=1)


def _parse_time(stamp: str) -> datetime | None:
    """An RFC 3339 timestamp (seconds or microseconds), or None when unparsable."""
    for layout in ("%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%dT%H:%M:%S.%fZ"):
        try:
            return datetime.strptime(stamp, layout).replace(tzinfo=UTC)
        except ValueError:
            continue
    return None


async def _quietly(operations: Sequence[Awaitable[object]]) -> None:
    """Run cleanups concurrently; an object that changed or vanished meanwhile is fine."""
    for result in await asyncio.gather(*operations, return_exceptions=True):
        if isinstance(result, Exception) and not isinstance(result, ApiError):
            raise result


class GarbageCollector:
    """Deletes dependents of deleted owners and resolves deletion finalizers."""

    def __init__(self, registry: Registry, *, interval: float = 5.0) -> None:
        self.registry = registry
        self.interval = interval
        self._wake = asyncio.Event()
        registry.on_delete = self.kick

    def kick(self) -> None:
        """Ask for a pass soon (called after every deletion)."""
        self._wake.set()

    async def run(self) -> None:
        """Run passes forever: after a kick (coalesced), soon after a pass that acted, or every
        `interval` seconds."""
        busy = False
        next_expiry = 0.0
        while True:
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=0.5 if busy else self.interval)
                await asyncio.sleep(0.05)
            except TimeoutError:
                pass
            self._wake.clear()
            try:
                busy = await self.sweep()
                if time.monotonic() >= next_expiry:
                    await self.expire_events()
                    next_expiry = time.monotonic() + 60
            except Exception:
                log.exception("garbage collection pass failed; retrying on the next pass")

    async def sweep(self) -> bool:
        """One level-triggered pass over every object; returns whether it had anything to do."""
        # One pass over every object, unsorted (at 10,000 pods and their Events this pass runs
        # every few seconds on the API server's loop: sorting and a second full pass cost it
        # tens of milliseconds of latency for every other request); then only the objects that
        # have owners or are being deleted are looked at again.
        live: set[str | None] = set()
        dependents: dict[str, list[tuple[str, Entry]]] = {}
        candidates: list[tuple[str, Entry]] = []
        for key, entry in self.registry.store.all_entries():
            meta = entry.obj["metadata"]
            live.add(meta.get("uid"))
            refs = meta.get("ownerReferences")
            if refs:
                for ref in refs:
                    dependents.setdefault(ref.get("uid"), []).append((key, entry))
            if refs or meta.get("deletionTimestamp"):
                candidates.append((key, entry))
        work: list[Awaitable] = []
        for key, entry in candidates:
            meta = entry.obj["metadata"]
            if meta.get("deletionTimestamp"):
                work.extend(self._finalize(key, entry, dependents.get(meta.get("uid"), [])))
            refs = meta.get("ownerReferences") or []
            dangling = [r for r in refs if r.get("uid") not in live]
            if not dangling:
                continue
            if len(dangling) == len(refs):
                if not meta.get("deletionTimestamp"):
                    work.append(self._delete(key, entry, "Background"))
            else:
                work.append(self._drop_refs(key, entry, {r.get("uid") for r in dangling}))
        await _quietly(work)
        return bool(work)

    async def expire_events(self, *, now: datetime | None = None) -> int:
        """Delete Events whose last change is older than EVENT_TTL; returns how many."""
        cutoff = (now or datetime.now(UTC)) - EVENT_TTL
        work = []
        for entry in self.registry.store.entries(EVENTS.key):
            obj = entry.obj
            meta = obj["metadata"]
            stamps = (obj.get("lastTimestamp"), obj.get("eventTime"), meta.get("creationTimestamp"))
            times = [t for t in (_parse_time(s) for s in stamps if isinstance(s, str)) if t is not None]
            latest = max(times, default=None)
            if latest is not None and latest < cutoff:
                work.append(self._delete(EVENTS.key, entry, "Background"))
        await _quietly(work)
        return len(work)

    def _finalize(self, key: str, entry: Entry, deps: list[tuple[str, Entry]]) -> list[Awaitable]:
        """Work for an owner that is being deleted."""
        meta = entry.obj["metadata"]
        res, uid = BY_KEY[key], meta.get("uid")
        finalizers = meta.get("finalizers") or []
        if res is NAMESPACES:
            return [self._terminate_namespace(meta["name"])]
        work: list[Awaitable] = []
        if "orphan" in finalizers:
            if deps:
                work.extend(self._drop_refs(k, e, {uid}) for k, e in deps)
            else:
                work.append(self.registry.remove_finalizer(res, meta.get("namespace", ""), meta["name"],
                                                           "orphan"))
        elif "foregroundDeletion" in finalizers:
            if deps:
                work.extend(self._delete(k, e, "Foreground") for k, e in deps
                            if not e.obj["metadata"].get("deletionTimestamp"))
            else:
                work.append(self.registry.remove_finalizer(res, meta.get("namespace", ""), meta["name"],
                                                           "foregroundDeletion"))
        return work

    async def _delete(self, key: str, entry: Entry, policy: str) -> None:
        """Delete a dependent, guarded by its uid so a recreated namesake survives."""
        meta = entry.obj["metadata"]
        await self.registry.delete(BY_KEY[key], meta.get("namespace", ""), meta["name"],
                                   {"propagationPolicy": policy, "preconditions": {"uid": meta.get("uid")}})

    async def _drop_refs(self, key: str, entry: Entry, uids: set) -> None:
        """Remove owner references to `uids` from one object."""
        obj = copy_object(entry.obj)
        meta = obj["metadata"]
        meta["ownerReferences"] = [r for r in meta.get("ownerReferences") or [] if r.get("uid") not in uids]
        if not meta["ownerReferences"]:
            del meta["ownerReferences"]
        res = BY_KEY[key]
        await self.registry.update(res, meta.get("namespace", ""), meta["name"], obj)

    async def _terminate_namespace(self, namespace: str) -> None:
        """Delete everything in a terminating namespace; remove the namespace once empty."""
        store = self.registry.store
        work, remaining = [], 0
        for key in store.keys():  # noqa: SIM118
            res = BY_KEY[key]
            if not res.namespaced:
                continue
            for entry in store.entries(key, namespace):
                remaining += 1
                if not entry.obj["metadata"].get("deletionTimestamp"):
                    work.append(self._delete(key, entry, "Background"))
        if work:
            await _quietly(work)
        elif remaining == 0:
            removed = store.remove(NAMESPACES.key, "", namespace)
            if removed is not None:
                await removed[1]
