"""The versioned object store behind the API server: memory for reads, SQLite for durability.

What it owns
- Every object of every resource, kept in memory (object dict + its JSON bytes, so lists are
  served without re-encoding) and persisted in SQLite (`STATE_DIR/store.sqlite3`, WAL).
- One global, strictly increasing resourceVersion across all kinds. It is stored with the
  objects, so after a restart it continues from where it stopped.
- Watches: a bounded in-memory history of change events (the last `history_size`) and the set
  of open watchers. A watcher asks to start after resourceVersion N; if events after N have
  already been dropped from the history it gets `Expired` (HTTP 410), exactly what makes
  informers relist.

Trade-off: the whole state lives in one process's memory and every mutation happens on the
event loop thread, so no locks are needed and list/watch are trivially consistent. Durability
is by group commit: mutations are applied in memory and queued; a single writer thread commits
everything queued so far in one transaction, and each writer awaits the commit of its batch
before the API acknowledges it. Readers and watchers may see a change a few milliseconds before
it is durable; if the process dies in that window the change is lost (it was never
acknowledged). So that a client that saw such a lost change cannot resume as if nothing
happened, a restart skips RESTART_GAP resourceVersions: a watch from inside the skipped range
gets 410 Expired and relists, while a watch from the last durable version simply continues.

Stored dicts are shared and must never be mutated: callers copy (`copy_object`) before editing.
The store is deliberately ignorant of Kubernetes semantics (validation, graceful deletion, GC);
those live in `registry.py`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from sandbox.statedir import STORE as DB_FILE  # noqa: F401 - re-exported: the file name has one definition

WATCH_QUEUE_LIMIT = 50_000
RESTART_GAP = 100_000


def encode(obj: dict) -> bytes:
    """Compact JSON bytes of an object."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


def copy_object(obj: dict) -> dict:
    """A private deep copy of a stored (JSON-only) object."""
    return json.loads(encode(obj))


class Expired(Exception):
    """The requested resourceVersion is older than the oldest event in the history."""

    def __init__(self, requested: int, oldest: int) -> None:
        super().__init__(f"too old resource version: {requested} ({oldest})")
        self.requested = requested
        self.oldest = oldest


@dataclass(frozen=True, slots=True)
class Entry:
    """A stored object and its encoded form."""

    obj: dict
    raw: bytes


@dataclass(frozen=True, slots=True)
class Event:
    """One change: ADDED, MODIFIED or DELETED, with the previous object for selector transitions."""

    rv: int
    key: str
    namespace: str
    type: str
    obj: dict
    raw: bytes
    old: dict | None = None


@dataclass(eq=False)
class Watcher:
    """An open watch: events for one resource key (optionally one namespace and a filter)."""

    key: str
    namespace: str | None
    predicate: Callable[[dict], bool] | None
    queue: asyncio.Queue = field(default_factory=asyncio.Queue)
    closed: bool = False

    def offer(self, event: Event) -> None:
        """Queue the event as this watcher sees it (selector transitions become ADDED/DELETED)."""
        if self.closed or (self.namespace is not None and event.namespace != self.namespace):
            return
        if self.predicate is not None:
            now = self.predicate(event.obj)
            before = event.old is not None and self.predicate(event.old)
            if event.type == "MODIFIED":
                if not now and not before:
                    return
                if now != before:
                    event = Event(event.rv, event.key, event.namespace, "ADDED" if now else "DELETED",
                                  event.obj, event.raw)
            elif not now:
                return
        if self.queue.qsize() >= WATCH_QUEUE_LIMIT:
            self.close()
            return
        self.queue.put_nowait(event)

    def close(self) -> None:
        """End the watch: the consumer sees `None` after the queued events."""
        if not self.closed:
            self.closed = True
            self.queue.put_nowait(None)


class Store:
    """Objects of all resources, the global resourceVersion, history and watchers."""

    def __init__(self, path: Path, *, history_size: int = 10_000) -> None:
        self.path = path
        self.history_size = history_size
        self._objects: dict[str, dict[str, dict[str, Entry]]] = {}
        self._rv = 0
        self._history: deque[Event] = deque()
        self._floor = 0
        self._gap_end = 0
        self._watchers: dict[str, set[Watcher]] = {}
        self._pending: list[tuple] = []
        self._waiters: list[asyncio.Future] = []
        self._wake: asyncio.Event | None = None
        self._committer: asyncio.Task | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="store-commit")
        self._db: sqlite3.Connection | None = None

    # ----- lifecycle -------------------------------------------------------------------------
    async def open(self) -> None:
        """Load every object from SQLite and start the group-commit writer."""
        loop = asyncio.get_running_loop()
        rows, rv = await loop.run_in_executor(self._executor, self._load)
        for key, namespace, name, data in rows:
            obj = json.loads(data)
            self._objects.setdefault(key, {}).setdefault(namespace, {})[name] = Entry(obj, encode(obj))
        self._floor = rv
        self._rv = self._gap_end = rv + RESTART_GAP if rv else 0
        self._wake = asyncio.Event()
        self._committer = asyncio.create_task(self._commit_loop(), name="store-commit")

    def _load(self) -> tuple[list[tuple], int]:
        """Open the database (creating the schema) and read everything; runs in the writer thread."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.execute("CREATE TABLE IF NOT EXISTS objects (resource TEXT NOT NULL, namespace TEXT NOT NULL, "
                   "name TEXT NOT NULL, data TEXT NOT NULL, PRIMARY KEY (resource, namespace, name)) "
                   "WITHOUT ROWID")
        db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        self._db = db
        rows = db.execute("SELECT resource, namespace, name, data FROM objects").fetchall()
        found = db.execute("SELECT value FROM meta WHERE key = 'resourceVersion'").fetchone()
        return rows, int(found[0]) if found else 0

    async def close(self) -> None:
        """Close every watcher, flush pending writes and close the database."""
        for watchers in self._watchers.values():
            for watcher in list(watchers):
                watcher.close()
        if self._committer is not None:
            await self.flush()
            self._committer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._committer
        loop = asyncio.get_running_loop()
        if self._db is not None:
            await loop.run_in_executor(self._executor, self._db.close)
        self._executor.shutdown(wait=True)

    # ----- durability ------------------------------------------------------------------------
    async def flush(self) -> None:
        """Wait until everything written so far is committed."""
        if self._pending:
            future = asyncio.get_running_loop().create_future()
            self._waiters.append(future)
            assert self._wake is not None
            self._wake.set()
            await future

    def _queue(self, op: tuple) -> asyncio.Future:
        """Queue one SQL operation; the returned future resolves once it is committed."""
        future = asyncio.get_running_loop().create_future()
        self._pending.append(op)
        self._waiters.append(future)
        assert self._wake is not None
        self._wake.set()
        return future

    async def _commit_loop(self) -> None:
        """Commit whatever is queued in one transaction, repeatedly (group commit)."""
        assert self._wake is not None
        loop = asyncio.get_running_loop()
        while True:
            await self._wake.wait()
            self._wake.clear()
            ops, waiters, rv = self._pending, self._waiters, self._rv
            self._pending, self._waiters = [], []
            if not waiters:
                continue
            try:
                await loop.run_in_executor(self._executor, self._commit, ops, rv)
            except Exception as exc:  # a disk error: every writer of the batch learns it
                for waiter in waiters:
                    if not waiter.done():
                        waiter.set_exception(exc)
                continue
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(None)

    def _commit(self, ops: list[tuple], rv: int) -> None:
        """Write one batch in a transaction; runs in the writer thread."""
        assert self._db is not None
        db = self._db
        db.execute("BEGIN")
        try:
            for op in ops:
                if op[0] == "put":
                    db.execute("INSERT OR REPLACE INTO objects VALUES (?, ?, ?, ?)", op[1:])
                else:
                    db.execute("DELETE FROM objects WHERE resource = ? AND namespace = ? AND name = ?",
                               op[1:])
            db.execute("INSERT OR REPLACE INTO meta VALUES ('resourceVersion', ?)", (str(rv),))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    # ----- reads -----------------------------------------------------------------------------
    @property
    def resource_version(self) -> int:
        """The latest resourceVersion handed out."""
        return self._rv

    def get(self, key: str, namespace: str, name: str) -> Entry | None:
        """The stored entry, or None."""
        return self._objects.get(key, {}).get(namespace, {}).get(name)

    def entries(self, key: str, namespace: str | None = None) -> list[Entry]:
        """Entries of a resource (one namespace, or all), sorted by namespace then name."""
        spaces = self._objects.get(key, {})
        if namespace is not None:
            objects = spaces.get(namespace, {})
            return [objects[n] for n in sorted(objects)]
        return [spaces[ns][n] for ns in sorted(spaces) for n in sorted(spaces[ns])]

    def entries_at(self, key: str, namespace: str | None, rv: int) -> list[Entry]:
        """Entries as they were at resourceVersion ``rv`` (what a continue page is served from,
        like etcd reading at the first page's revision): the current ones with every later
        change of the history rolled back. Raises Expired when the history no longer reaches
        back to ``rv`` (etcd's compaction)."""
        if rv >= self._rv:
            return self.entries(key, namespace)
        if rv < self._floor or self._floor < rv < self._gap_end:
            raise Expired(rv, self._floor)
        later = []
        for event in reversed(self._history):
            if event.rv <= rv:
                break
            if event.key == key and (namespace is None or event.namespace == namespace):
                later.append(event)
        if not later:
            return self.entries(key, namespace)
        spaces = self._objects.get(key, {})
        names = [namespace] if namespace is not None else list(spaces)
        current = {(ns, n): entry for ns in names for n, entry in spaces.get(ns, {}).items()}
        for event in later:  # newest first: each step undoes one change
            ident = (event.namespace, event.obj["metadata"]["name"])
            if event.type == "ADDED" or event.old is None:
                current.pop(ident, None)
            else:
                current[ident] = Entry(event.old, encode(event.old))
        return [current[ident] for ident in sorted(current)]

    def all_entries(self) -> Iterator[tuple[str, Entry]]:
        """(resource key, entry) of every object, in no particular order (the garbage
        collector's pass; nothing may change the store while it iterates)."""
        for key, spaces in self._objects.items():
            for objects in spaces.values():
                for entry in objects.values():
                    yield key, entry

    def count(self, key: str, namespace: str) -> int:
        """How many objects of a resource a namespace holds."""
        return len(self._objects.get(key, {}).get(namespace, {}))

    def total(self, key: str) -> int:
        """How many objects of a resource the store holds (`apiserver_storage_objects`)."""
        return sum(len(objects) for objects in self._objects.get(key, {}).values())

    @property
    def is_open(self) -> bool:
        """Whether the database is open and its writer running (the `etcd` health check)."""
        return self._db is not None and self._committer is not None and not self._committer.done()

    def keys(self) -> list[str]:
        """Resource keys that have (or had) objects."""
        return list(self._objects)

    # ----- writes ----------------------------------------------------------------------------
    def put(self, key: str, obj: dict) -> tuple[Entry, asyncio.Future]:
        """Store a new or changed object (it becomes shared: never mutate it after this).

        Assigns the next resourceVersion, notifies watchers and queues the SQL write. Returns
        the entry and a future that resolves when the write is durable.
        """
        meta = obj["metadata"]
        namespace, name = meta.get("namespace", ""), meta["name"]
        self._rv += 1
        meta["resourceVersion"] = str(self._rv)
        entry = Entry(obj, encode(obj))
        spaces = self._objects.setdefault(key, {}).setdefault(namespace, {})
        old = spaces.get(name)
        spaces[name] = entry
        self._emit(Event(self._rv, key, namespace, "MODIFIED" if old else "ADDED", obj, entry.raw,
                         old.obj if old else None))
        return entry, self._queue(("put", key, namespace, name, entry.raw.decode()))

    def remove(self, key: str, namespace: str, name: str) -> tuple[Entry, asyncio.Future] | None:
        """Delete an object; the DELETED event carries it with a fresh resourceVersion."""
        spaces = self._objects.get(key, {}).get(namespace, {})
        old = spaces.pop(name, None)
        if old is None:
            return None
        self._rv += 1
        obj = copy_object(old.obj)
        obj["metadata"]["resourceVersion"] = str(self._rv)
        entry = Entry(obj, encode(obj))
        self._emit(Event(self._rv, key, namespace, "DELETED", obj, entry.raw, old.obj))
        return entry, self._queue(("del", key, namespace, name))

    def _emit(self, event: Event) -> None:
        """Record the event in the bounded history and hand it to the watchers."""
        self._history.append(event)
        if len(self._history) > self.history_size:
            self._floor = self._history.popleft().rv
        for watcher in self._watchers.get(event.key, ()):
            watcher.offer(event)

    # ----- watch -----------------------------------------------------------------------------
    def watch(self, key: str, *, namespace: str | None, predicate: Callable[[dict], bool] | None,
              since: int, initial: list[Entry] | None = None) -> Watcher:
        """Open a watcher that sees `initial` as ADDED events, then every change after `since`.

        Raises Expired when changes after `since` are no longer in the history.
        """
        if since < self._floor or self._floor < since < self._gap_end:
            raise Expired(since, self._gap_end + 1)
        watcher = Watcher(key, namespace, predicate)
        for entry in initial or ():
            meta = entry.obj["metadata"]
            watcher.queue.put_nowait(Event(int(meta["resourceVersion"]), key, meta.get("namespace", ""),
                                           "ADDED", entry.obj, entry.raw))
        if since < self._rv:
            replay = []
            for event in reversed(self._history):
                if event.rv <= since:
                    break
                if event.key == key:
                    replay.append(event)
            for event in reversed(replay):
                watcher.offer(event)
        self._watchers.setdefault(key, set()).add(watcher)
        return watcher

    def unwatch(self, watcher: Watcher) -> None:
        """Forget a watcher (its consumer has gone)."""
        watcher.closed = True
        self._watchers.get(watcher.key, set()).discard(watcher)
