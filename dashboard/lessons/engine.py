"""The check engine: per-user lesson state, re-judged whenever the watched cluster changes.

One :class:`LessonEngine` per dashboard process, created with the watch hub and living on its
event loop. It registers two listeners and polls nothing:

- on the hub (``hub.add_listener``): every batch of watch changes goes into the
  :class:`~dashboard.lessons.history.ClusterHistory`, then each user's active lesson has its
  pending checks evaluated again;
- on the traffic runs (``dashboard.traffic.runs.finished_listeners``): a finished run of a user
  becomes a :class:`~dashboard.lessons.checks.RunRecord` for that user's checks.

Whatever changed a user's state (a check passing, an answer, a command logged) is written
through to the database (:mod:`dashboard.lessons.models`) and announced to that user's pages
only, on the channel-layer group ``lessons.user.<pk>`` as ``{"type": "lessons.changed"}``; the
lessons consumer then renders that user's rail. Users nobody has loaded cost nothing.

A check that passed stays passed (with the figure measured then); a failed one may still pass
later, when the behaviour is observed after all. A lesson is done when all its checks passed.

The database is reached through one hand-off only: :func:`db_call`, which runs a function in
the lessons' own database thread (one thread, so writes land in the order they were made and
a load sees every write made before it). Progress is copied on the loop when it changes and
written from that copy, never from the live object. Nothing here uses asgiref's
``sync_to_async``: a task created while a request (or an ``async_to_sync`` call) was running
inherits that request's thread-sensitive executor, which is gone once the request returned
("CurrentThreadExecutor already quit or is not running"), and the write was lost.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import copy
import dataclasses
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from channels.layers import get_channel_layer
from django.db import OperationalError, close_old_connections

from dashboard.hub import Hub, get_hub
from dashboard.lessons.checks import Context, PodServed, RunRecord
from dashboard.lessons.definitions import BY_ID, LESSONS
from dashboard.lessons.history import ClusterHistory
from dashboard.stream import settings_scope

log = logging.getLogger(__name__)

PENDING, ACTIVE, DONE = "pending", "active", "done"
COMMANDS_SHOWN = 40
RUNS_KEPT = 20


def user_group(user_id: int) -> str:
    """The channel-layer group of one user's open pages."""
    return f"lessons.user.{user_id}"


@dataclass
class Progress:
    """One user's state in one lesson (mirrors a LessonProgress row)."""

    lesson: str
    state: str = PENDING
    answer: int | None = None
    started_at: float | None = None
    finished_at: float | None = None
    checks: dict[str, dict[str, Any]] = field(default_factory=dict)

    def check_state(self, check_id: str) -> str:
        """pending / passed / failed."""
        return str(self.checks.get(check_id, {}).get("state", "pending"))


@dataclass
class UserLessons:
    """Everything the rail of one user shows."""

    user_id: int
    progress: dict[str, Progress]
    commands: list[tuple[float, str]]
    runs: list[RunRecord] = field(default_factory=list)
    current: str | None = None

    def active(self) -> Progress | None:
        """The lesson being worked on (the one started last), if it is in progress."""
        if self.current is None:
            return None
        progress = self.progress[self.current]
        return progress if progress.state == ACTIVE else None


def run_record(run: Any) -> RunRecord | None:
    """A finished TrafficRun as the checks see it (called in the run's thread, at its end)."""
    owner = str(run.owner)
    if not owner.startswith("user:") or not owner[5:].isdigit():
        return None
    stats = run.stats
    ended = time.time()
    started = ended - run.engine.elapsed()
    p_value = stats.evenness().get("p_value")
    errors = sum(stats.errors.values()) + stats.dropped
    return RunRecord(
        owner=int(owner[5:]),
        mode=run.spec.mode,
        conns=run.spec.conns,
        max_per_conn=run.spec.max_per_conn,
        service=str(run.resolved.option.service or ""),
        started=started,
        ended=ended,
        bucket=stats.bucket,
        requests=stats.requests,
        ok=stats.ok,
        failed=errors,
        connections=stats.connections,
        pods={
            name: PodServed(requests=row.requests, conns=row.conns, cells=dict(row.cells))
            for name, row in stats.rows.items()
            if row.requests
        },
        p_value=p_value if isinstance(p_value, float) else None,
        via=str(getattr(run.resolved, "via", "") or ""),
    )


class LessonEngine:
    """Per-user lesson state over one shared cluster history (see the module docstring)."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.loop = hub.loop
        self.history = ClusterHistory(scope=settings_scope())
        self.users: dict[int, UserLessons] = {}
        self._loading: dict[int, asyncio.Future[UserLessons]] = {}
        self._dirty: set[int] = set()
        self._flush_scheduled = False
        self.history.seed(hub.cache, time.time())
        hub.add_listener(self._on_changes)

    # --- users ------------------------------------------------------------------------------------
    async def user(self, user_id: int) -> UserLessons:
        """The user's lessons, loaded from the database on first use."""
        found = self.users.get(user_id)
        if found is not None:
            return found
        pending = self._loading.get(user_id)
        if pending is None:
            pending = self._loading[user_id] = self.loop.create_future()
            try:
                loaded = await asyncio.wrap_future(db_call(load_user, user_id))
            except Exception as exc:
                del self._loading[user_id]
                pending.set_exception(exc)
                raise
            self.users[user_id] = loaded
            del self._loading[user_id]
            pending.set_result(loaded)
            self._evaluate(loaded)
            return loaded
        return await pending

    async def start(self, user_id: int, lesson_id: str) -> Progress:
        """Start (or restart) a lesson: its checks start observing now, from pending."""
        user = await self.user(user_id)
        progress = user.progress[lesson_id]
        progress.state, progress.started_at, progress.finished_at = ACTIVE, time.time(), None
        progress.checks, progress.answer = {}, None
        user.current = lesson_id
        self._changed(user, progress)
        return progress

    async def answer(self, user_id: int, lesson_id: str, choice: int) -> Progress:
        """Keep the learner's prediction (before they act)."""
        user = await self.user(user_id)
        progress = user.progress[lesson_id]
        progress.answer = choice
        if progress.state == PENDING:
            progress.state, progress.started_at = ACTIVE, time.time()
        user.current = lesson_id
        self._changed(user, progress)
        return progress

    async def log_command(self, user_id: int, command: str) -> None:
        """Append an action's command-line equivalent to the user's command log."""
        user = await self.user(user_id)
        at = time.time()
        await asyncio.wrap_future(db_call(save_command, user_id, at, command))
        self.remember_command(user, at, command)

    def command_logged(self, user_id: int, at: float, command: str) -> None:
        """A command whose row a sync view already wrote (call on the loop): show it."""
        user = self.users.get(user_id)
        if user is not None:
            self.remember_command(user, at, command)

    def remember_command(self, user: UserLessons, at: float, command: str) -> None:
        """Keep a logged command in memory and tell the user's pages."""
        user.commands.append((at, command))
        user.commands.sort(key=lambda entry: entry[0])
        del user.commands[:-COMMANDS_SHOWN]
        self._announce(user.user_id)

    # --- observation ------------------------------------------------------------------------------
    def _on_changes(self, changes: list[Any], cache: Any) -> None:
        """Hub listener (on the loop): record, then re-judge every active lesson."""
        self.history.observe(changes, cache)
        for user in self.users.values():
            self._evaluate(user)

    def run_finished(self, run: Any) -> None:
        """Traffic-run listener (in the run's thread): hand the record to the loop."""
        record = run_record(run)
        if record is not None:
            self.loop.call_soon_threadsafe(self._on_run, record)

    def _on_run(self, record: RunRecord) -> None:
        user = self.users.get(record.owner)
        if user is None:
            return
        user.runs.append(record)
        del user.runs[:-RUNS_KEPT]
        self._evaluate(user)

    def _evaluate(self, user: UserLessons) -> None:
        """Ask the active lesson's checks again; persist and announce what changed."""
        progress = user.active()
        if progress is None or progress.started_at is None:
            return
        lesson = BY_ID[progress.lesson]
        ctx = Context(
            since=progress.started_at,
            now=time.time(),
            history=self.history,
            runs=[r for r in user.runs if r.started >= progress.started_at - 1.0],
        )
        changed = False
        for check in lesson.checks:
            if progress.check_state(check.id) == "passed":
                continue
            try:
                verdict = check.evaluate(ctx)
            except Exception:  # one broken check must not stop the others (or the hub)
                log.exception("lesson check %s/%s failed", lesson.id, check.id)
                continue
            if verdict is None:
                continue
            state = "passed" if verdict.passed else "failed"
            before = progress.checks.get(check.id, {})
            if before.get("state") != state or before.get("figure") != verdict.figure:
                progress.checks[check.id] = {"state": state, "figure": verdict.figure, "at": ctx.now}
                changed = True
        if all(progress.check_state(check.id) == "passed" for check in lesson.checks):
            progress.state, progress.finished_at = DONE, ctx.now
            changed = True
        if changed:
            self._changed(user, progress)

    # --- write-through and announcements ---------------------------------------------------------
    def _changed(self, user: UserLessons, progress: Progress) -> None:
        self._save(user.user_id, progress)
        self._announce(user.user_id)

    @staticmethod
    def _save(user_id: int, progress: Progress) -> concurrent.futures.Future[None]:
        """Queue the write of a copy of ``progress`` taken now (on the loop)."""
        snapshot = dataclasses.replace(progress, checks=copy.deepcopy(progress.checks))
        saved = db_call(save_progress, user_id, snapshot)

        def report(done: concurrent.futures.Future[None]) -> None:
            if not done.cancelled() and done.exception() is not None:
                log.error("could not save lesson progress of user %s: %s", user_id, done.exception())

        saved.add_done_callback(report)
        return saved

    def _announce(self, user_id: int) -> None:
        """Wake that user's pages once per loop iteration."""
        self._dirty.add(user_id)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self.loop.call_soon(lambda: self.loop.create_task(self._flush()))

    async def _flush(self) -> None:
        self._flush_scheduled = False
        dirty, self._dirty = self._dirty, set()
        layer = get_channel_layer()
        if layer is None:
            return
        for user_id in dirty:
            await layer.group_send(user_group(user_id), {"type": "lessons.changed"})


# --- database (run in the lessons' database thread) -------------------------------------------------
_T = TypeVar("_T")
DB_ATTEMPTS = 3  # a write that meets a locked database is tried again before it is reported
_db_thread = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="lessons-db")


def db_call(function: Callable[..., _T], *args: Any) -> concurrent.futures.Future[_T]:
    """Run ``function(*args)`` in the lessons' database thread, after every call queued before
    it; from any thread or loop (``asyncio.wrap_future`` to await it). The thread is joined
    at interpreter exit, so queued writes still land when the dashboard stops."""

    def call() -> _T:
        for attempt in range(DB_ATTEMPTS):
            close_old_connections()  # what Django does around a request: drop a broken connection
            try:
                return function(*args)
            except OperationalError:  # SQLite busy beyond its timeout ("database is locked")
                if attempt == DB_ATTEMPTS - 1:
                    raise
                time.sleep(0.5 * (attempt + 1))
            finally:
                close_old_connections()
        raise AssertionError("unreachable")

    return _db_thread.submit(call)


def load_user(user_id: int) -> UserLessons:
    """Read a user's progress and recent commands."""
    from dashboard.lessons.models import CommandLogEntry, LessonProgress

    progress = {lesson.id: Progress(lesson=lesson.id) for lesson in LESSONS}
    current, latest = None, -1.0
    for row in LessonProgress.objects.filter(user_id=user_id):
        if row.lesson not in progress:
            continue
        progress[row.lesson] = Progress(
            lesson=row.lesson,
            state=row.state,
            answer=row.answer,
            started_at=row.started_at,
            finished_at=row.finished_at,
            checks=dict(row.checks or {}),
        )
        if row.started_at is not None and row.started_at > latest:
            current, latest = row.lesson, row.started_at
    entries = list(CommandLogEntry.objects.filter(user_id=user_id).order_by("-id")[:COMMANDS_SHOWN])
    commands = [(e.at, e.command) for e in reversed(entries)]
    return UserLessons(user_id=user_id, progress=progress, commands=commands, current=current)


def save_progress(user_id: int, progress: Progress) -> None:
    """Write one lesson's progress."""
    from dashboard.lessons.models import LessonProgress

    LessonProgress.objects.update_or_create(
        user_id=user_id,
        lesson=progress.lesson,
        defaults={
            "state": progress.state,
            "answer": progress.answer,
            "started_at": progress.started_at,
            "finished_at": progress.finished_at,
            "checks": progress.checks,
        },
    )


def save_command(user_id: int, at: float, command: str) -> None:
    """Append one command to the log."""
    from dashboard.lessons.models import CommandLogEntry

    CommandLogEntry.objects.create(user_id=user_id, at=at, command=command)


_engine: LessonEngine | None = None
_engine_lock = threading.Lock()


def current_engine() -> LessonEngine | None:
    """The process's engine if it has been started (never starts one)."""
    return _engine


def get_engine() -> LessonEngine:
    """The process's engine, created on the hub's loop with the hub; call it on the event loop."""
    global _engine
    hub = get_hub()
    with _engine_lock:
        if _engine is None or _engine.hub is not hub:
            from dashboard.traffic import runs

            if _engine is not None and _engine.run_finished in runs.finished_listeners:
                runs.finished_listeners.remove(_engine.run_finished)
            _engine = LessonEngine(hub)
            runs.finished_listeners.append(_engine.run_finished)
        return _engine
