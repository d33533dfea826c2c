"""The dashboard's traffic runs: at most one per user, capped, each on its own event-loop thread.

A run's load must not share the dashboard's event loop (thousands of requests a second would
delay every websocket), so each :class:`TrafficRun` owns a thread with its own loop (uvloop when
installed) running the engine and a ticker that turns the stats into frames eight times a second.
What the run knows of the cluster is pushed in by the watch hub's traffic feed
(dashboard.traffic.cluster): :meth:`TrafficRun.cluster_update` hands each new view to the run's
loop, where it becomes endpoint rows and heatmap marks. No run calls the Kubernetes API.

Viewers (the websocket consumer) never touch the stats directly: they ask for a snapshot (computed
on the run's loop, so consistent) and then for the frames after the sequence number they hold;
a viewer that fell behind the frame ring gets a fresh snapshot instead (gap -> resync). They are
not polled either: :meth:`RunRegistry.watch` calls a viewer back whenever its owner's run cut a
frame or a new run started, and the viewer hands that wake-up to its own loop.

The registry is process-wide memory: one dashboard process owns its runs (like the watch hub).
Per-run caps come from settings LBDEMO_TRAFFIC_MAX_RPS / _MAX_CONNS / _MAX_SECONDS; the load of
all runs together is capped by LBDEMO_TRAFFIC_TOTAL_RPS and LBDEMO_TRAFFIC_TOTAL_CONNS (a run
that would exceed them is refused with :class:`LoadCapReached`, saying how much is left).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import logging
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from django.conf import settings

from dashboard.traffic.cluster import ClusterView, describe_changes, feed_for
from dashboard.traffic.engine import LoadSpec, SpecError, TrafficEngine, new_event_loop
from dashboard.traffic.stats import TrafficStats
from dashboard.traffic.targets import ResolvedTarget, resolve_target

if TYPE_CHECKING:
    from dashboard.hub import Hub

log = logging.getLogger(__name__)

FRAME_INTERVAL = 0.125
FRAME_RING = 80
BUCKET_SECONDS = 0.25
# Longest number a form field may hold (the caps are at most six digits).
MAX_FIELD_DIGITS = 7
_run_ids = itertools.count(1)
# Called with each TrafficRun once it has ended (in the run's thread; hand off to your own loop).
# The lessons rail registers here to judge its traffic checks by the run's statistics.
finished_listeners: list[Callable[[TrafficRun], None]] = []


class RunConflict(Exception):
    """The user already has a traffic run in progress."""


class LoadCapReached(Exception):
    """All runs together would exceed the dashboard's total traffic cap."""


def traffic_limits() -> dict[str, int]:
    """The caps every run from the page is checked against."""
    return {"max_rps": settings.LBDEMO_TRAFFIC_MAX_RPS, "max_conns": settings.LBDEMO_TRAFFIC_MAX_CONNS,
            "max_seconds": settings.LBDEMO_TRAFFIC_MAX_SECONDS}


def _int_field(data: Mapping[str, str], name: str, label: str, *, default: int | None = None) -> int:
    """A form field as a whole number: ASCII digits only (``²`` and other scripts' digits are
    not numbers here) and at most MAX_FIELD_DIGITS of them; SpecError says what is wrong."""
    raw = (data.get(name) or "").strip()
    if not raw:
        if default is None:
            raise SpecError(f"{label} is required")
        return default
    if not re.fullmatch(r"-?[0-9]+", raw):
        raise SpecError(f"{label} must be a whole number (digits 0-9), not {raw[:20]!r}")
    if len(raw.lstrip("-")) > MAX_FIELD_DIGITS:
        raise SpecError(f"{label} must be a whole number of at most {MAX_FIELD_DIGITS} digits, "
                        f"not one of {len(raw.lstrip('-'))} digits")
    return int(raw)


def parse_run_form(data: Mapping[str, str]) -> tuple[str, LoadSpec]:
    """Validate the panel's form: (target id, checked LoadSpec), or SpecError with the reason."""
    target = (data.get("target") or "").strip()
    if not target:
        raise SpecError("choose a target service")
    mode = (data.get("mode") or "keepalive").strip()
    spec = LoadSpec(mode=mode, conns=_int_field(data, "conns", "connections"),
                    rps=float(_int_field(data, "rps", "rate")),
                    duration=float(_int_field(data, "duration", "duration")),
                    max_per_conn=_int_field(data, "max_per_conn", "max requests per connection", default=0),
                    timeout=5.0)
    limits = traffic_limits()
    return target, spec.check(max_rps=limits["max_rps"], max_conns=limits["max_conns"],
                              max_seconds=limits["max_seconds"])


class TrafficRun:
    """One run from the page: the engine, its stats, its frames and its lifecycle."""

    def __init__(self, *, owner: str, resolved: ResolvedTarget, spec: LoadSpec,
                 on_frame: Callable[[], None] | None = None) -> None:
        self.id = next(_run_ids)
        self.owner = owner
        self.resolved = resolved
        self.spec = spec
        self.stats = TrafficStats(bucket=BUCKET_SECONDS)
        self.engine = TrafficEngine(resolved.target, spec, self.stats)
        self.state = "starting"
        self.error = ""
        self.started_at = time.time()
        self._on_frame = on_frame or (lambda: None)
        self._lock = threading.Lock()
        self._frames: deque[dict[str, Any]] = deque(maxlen=FRAME_RING)
        self._seq = 0
        self._final: dict[str, Any] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._early_views: list[ClusterView] = []
        self._stop_requested = False
        self._view: ClusterView | None = None
        self._thread = threading.Thread(target=self._main, name=f"traffic-run-{self.id}", daemon=True)

    @property
    def service(self) -> str | None:
        """The Service the run's target stands for (its endpoints are followed)."""
        return self.resolved.option.service

    # --- lifecycle -----------------------------------------------------------------------------
    def start(self) -> None:
        """Start the run's thread; returns at once, the run is running from now on (its loop
        comes up in the thread, and stops or cluster views sent meanwhile are kept for it)."""
        self.state = "running"
        self._thread.start()

    def stop(self) -> None:
        """Ask the run to end early (safe from any thread, also before its loop is up)."""
        with self._lock:
            self._stop_requested = True
            loop = self._loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed in between: the run has ended
                loop.call_soon_threadsafe(self.engine.stop)

    def cluster_update(self, view: ClusterView) -> None:
        """A new cluster view from the hub's feed (safe from any thread): applied on the run's loop."""
        with self._lock:
            loop = self._loop
            if loop is None:
                self._early_views.append(view)
                return
        if not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self._apply_view, view)

    @property
    def active(self) -> bool:
        """True until the run has finished (or failed)."""
        return self.state in {"starting", "running"}

    @property
    def load(self) -> tuple[float, int]:
        """The requests/s and connections this run asks for."""
        return float(self.spec.rps or 0), self.spec.conns

    def join(self, timeout: float | None = None) -> None:
        """Wait for the run's thread to end."""
        self._thread.join(timeout)

    def _main(self) -> None:
        loop = new_event_loop()
        try:
            loop.run_until_complete(self._run(loop))
        except Exception as error:  # the run must end visibly, never silently
            log.exception("traffic run %s failed", self.id)
            self.error = str(error) or type(error).__name__
            self.state = "failed"
            with self._lock:
                self._final = self._snapshot_now()
            self._on_frame()
        finally:
            loop.close()

    async def _run(self, loop: asyncio.AbstractEventLoop) -> None:
        with self._lock:
            self._loop = loop
            early, self._early_views = self._early_views, []
            stop = self._stop_requested
        for view in early:
            self._apply_view(view)
        engine_task = asyncio.ensure_future(self.engine.run())
        if stop:
            self.engine.stop()
        ticker = asyncio.ensure_future(self._ticker())
        try:
            await engine_task
        finally:
            ticker.cancel()
            await asyncio.gather(ticker, return_exceptions=True)
            if self.state == "running":
                self.state = "stopped" if self.engine.stopped_early else "finished"
            self._emit()
            with self._lock:
                self._final = self._snapshot_now()
            self._on_frame()
            for listener in list(finished_listeners):
                try:
                    listener(self)
                except Exception:  # a listener's bug must not hide the run's end
                    log.exception("traffic run %s: a finished-run listener failed", self.id)

    async def _ticker(self) -> None:
        while True:
            await asyncio.sleep(FRAME_INTERVAL)
            self._emit()

    def _apply_view(self, view: ClusterView) -> None:
        """On the run's loop: endpoint rows and heatmap marks from a new cluster view."""
        t = self.engine.elapsed()
        changes = self.stats.set_endpoints(t, view.endpoints)
        if self._view is not None:
            for kind, label in describe_changes(self._view, view, changes):
                self.stats.add_marker(t, label, kind=kind)
        self._view = view

    # --- frames --------------------------------------------------------------------------------
    def meta(self) -> dict[str, Any]:
        """What the page shows about the run itself: target, settings, state, progress."""
        progress = self.engine.progress()
        spec = self.spec
        return {"id": self.id, "state": self.state, "error": self.error,
                "target": self.resolved.option.label, "address": self.resolved.target.url,
                "via": self.resolved.via,
                "mode": spec.mode, "conns": spec.conns, "rps": spec.rps, "duration": spec.duration,
                "max_per_conn": spec.max_per_conn,
                "progress": {"elapsed": round(progress.elapsed, 3), "fraction": round(progress.fraction, 4),
                             "sent": progress.sent, "done": progress.done, "planned": progress.planned}}

    def _emit(self) -> None:
        """Called on the run's loop: cut a delta frame from the stats and wake the viewers."""
        with self._lock:
            self._seq += 1
            frame = {"type": "delta", "seq": self._seq, "run": self.meta(), **self.stats.take_delta()}
            self._frames.append(frame)
        self._on_frame()

    def _snapshot_now(self) -> dict[str, Any]:
        return {"type": "snapshot", "seq": self._seq, "run": self.meta(), **self.stats.snapshot()}

    async def snapshot(self) -> dict[str, Any]:
        """A consistent full view, computed on the run's loop while it runs."""
        with self._lock:
            if self._final is not None:
                return self._final
            loop = self._loop
            if loop is None:  # not started yet: nothing touches the stats
                return self._snapshot_now()

        async def take() -> dict[str, Any]:
            with self._lock:
                return self._final or self._snapshot_now()

        try:
            return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(take(), loop))
        except RuntimeError:  # the loop closed meanwhile: the final snapshot is there
            with self._lock:
                return self._final or self._snapshot_now()

    def frames_since(self, seq: int) -> list[dict[str, Any]] | None:
        """Frames after ``seq``; None when some were already dropped (the viewer must resync)."""
        with self._lock:
            if seq >= self._seq:
                return []
            if not self._frames or self._frames[0]["seq"] > seq + 1:
                return None
            return [frame for frame in self._frames if frame["seq"] > seq]


class RunRegistry:
    """Process-wide runs by owner: one active run per user; the last one stays viewable."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._runs: dict[str, TrafficRun] = {}
        self._viewers: dict[str, set[Callable[[], None]]] = {}

    def start(self, *, owner: str, resolved: ResolvedTarget, spec: LoadSpec) -> TrafficRun:
        """Start a run for ``owner`` (returns at once); RunConflict if one is still going,
        LoadCapReached if all runs together would exceed the total caps."""
        total_rps, total_conns = settings.LBDEMO_TRAFFIC_TOTAL_RPS, settings.LBDEMO_TRAFFIC_TOTAL_CONNS
        with self._lock:
            current = self._runs.get(owner)
            if current is not None and current.active:
                raise RunConflict("a traffic run is already in progress; stop it first")
            active = [run for run in self._runs.values() if run.active]
            used_rps = sum(run.load[0] for run in active)
            used_conns = sum(run.load[1] for run in active)
            if used_rps + (spec.rps or 0) > total_rps:
                raise LoadCapReached(
                    f"the dashboard sends at most {total_rps} requests/s in all; {len(active)} other "
                    f"run(s) already use {used_rps:g}: ask for at most {max(0, total_rps - used_rps):g}, "
                    "or wait for one to end")
            if used_conns + spec.conns > total_conns:
                raise LoadCapReached(
                    f"the dashboard opens at most {total_conns} connections in all; {len(active)} other "
                    f"run(s) already use {used_conns}: ask for at most {max(0, total_conns - used_conns)}, "
                    "or wait for one to end")
            run = TrafficRun(owner=owner, resolved=resolved, spec=spec, on_frame=lambda: self._wake(owner))
            self._runs[owner] = run
        run.start()
        self._wake(owner)
        return run

    def watch(self, owner: str, wake: Callable[[], None]) -> Callable[[], None]:
        """Call ``wake()`` (from any thread; it must only hand over) whenever the owner's run cut
        a frame, ended, or a new run started. Returns the function that stops it."""
        with self._lock:
            self._viewers.setdefault(owner, set()).add(wake)

        def unwatch() -> None:
            with self._lock:
                self._viewers.get(owner, set()).discard(wake)
        return unwatch

    def _wake(self, owner: str) -> None:
        with self._lock:
            viewers = list(self._viewers.get(owner, ()))
        for wake in viewers:
            try:
                wake()
            except Exception:
                log.exception("a traffic viewer's wake-up failed")

    def get(self, owner: str) -> TrafficRun | None:
        """The owner's current or most recent run."""
        with self._lock:
            return self._runs.get(owner)

    def stop(self, owner: str) -> bool:
        """Stop the owner's run; False if nothing was running."""
        run = self.get(owner)
        if run is None or not run.active:
            return False
        run.stop()
        return True

    def active_runs(self) -> list[TrafficRun]:
        """Runs still in progress (all users)."""
        with self._lock:
            return [run for run in self._runs.values() if run.active]

    def stop_all(self, *, timeout: float = 10.0) -> None:
        """Stop every run and wait for them (tests, shutdown)."""
        runs = self.active_runs()
        for run in runs:
            run.stop()
        for run in runs:
            run.join(timeout)


registry = RunRegistry()


async def run_start(*, owner: str, target_id: str, spec: LoadSpec, hub: Hub | None,
                    runs: RunRegistry | None = None, path: str = "/") -> TrafficRun:
    """Resolve a target id against the hub's cache, start the owner's run and let the hub's
    feed follow it (call on the hub's loop). Raises SpecError (TargetError) for a bad target,
    RunConflict, or LoadCapReached — what the traffic panel and the lessons rail both answer.
    ``path`` replaces the target's request path (a lesson's CPU-heavy ``/work?ms=10``)."""
    cache = hub.cache if hub is not None else None
    resolved = await resolve_target(target_id, cache.list("Service") if cache else [],
                                    cache.list("Ingress") if cache else [])
    if path != "/":
        resolved = dataclasses.replace(resolved, target=dataclasses.replace(resolved.target, path=path))
    run = (runs or registry).start(owner=owner, resolved=resolved, spec=spec)
    if hub is not None:
        feed_for(hub).follow(run)
    return run
