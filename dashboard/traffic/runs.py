"""The dashboard's traffic runs: at most one per user, capped, each on its own event-loop thread.

A run's load must not share the dashboard's event loop (thousands of requests a second would
delay every websocket), so each :class:`TrafficRun` owns a thread with its own loop (uvloop when
installed) running the engine, a ticker that turns the stats into frames eight times a second, and
a cluster poller (blocking client calls in a worker thread) feeding endpoint rows and marks.

Viewers (the websocket consumer) never touch the stats directly: they ask for a snapshot (computed
on the run's loop, so consistent) and then for the frames after the sequence number they hold;
a viewer that fell behind the frame ring gets a fresh snapshot instead (gap -> resync).

The registry is process-wide memory: one dashboard process owns its runs (like the watch hub).
Caps come from settings LBDEMO_TRAFFIC_MAX_RPS / _MAX_CONNS / _MAX_SECONDS.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import itertools
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

from django.conf import settings

from dashboard.traffic.cluster import ClusterView, describe_changes, poll_cluster
from dashboard.traffic.engine import LoadSpec, SpecError, TrafficEngine, new_event_loop
from dashboard.traffic.stats import TrafficStats
from dashboard.traffic.targets import ResolvedTarget

log = logging.getLogger(__name__)

FRAME_INTERVAL = 0.125
FRAME_RING = 80
POLL_INTERVAL = 1.0
BUCKET_SECONDS = 0.25
_run_ids = itertools.count(1)
# Called with each TrafficRun once it has ended (in the run's thread; hand off to your own loop).
# The lessons rail registers here to judge its traffic checks by the run's statistics.
finished_listeners: list[Callable[[TrafficRun], None]] = []


class RunConflict(Exception):
    """The user already has a traffic run in progress."""


def traffic_limits() -> dict[str, int]:
    """The caps every run from the page is checked against."""
    return {"max_rps": settings.LBDEMO_TRAFFIC_MAX_RPS, "max_conns": settings.LBDEMO_TRAFFIC_MAX_CONNS,
            "max_seconds": settings.LBDEMO_TRAFFIC_MAX_SECONDS}


def _int_field(data: Mapping[str, str], name: str, label: str, *, default: int | None = None) -> int:
    raw = (data.get(name) or "").strip()
    if not raw:
        if default is None:
            raise SpecError(f"{label} is required")
        return default
    try:
        return int(raw)
    except ValueError:
        raise SpecError(f"{label} must be a whole number, not {raw[:20]!r}") from None


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

    def __init__(self, *, owner: str, resolved: ResolvedTarget, spec: LoadSpec, namespace: str,
                 poll: Callable[..., ClusterView] = poll_cluster) -> None:
        self.id = next(_run_ids)
        self.owner = owner
        self.resolved = resolved
        self.spec = spec
        self.namespace = namespace
        self.stats = TrafficStats(bucket=BUCKET_SECONDS)
        self.engine = TrafficEngine(resolved.target, spec, self.stats)
        self.state = "starting"
        self.error = ""
        self.started_at = time.time()
        self._poll = poll
        self._lock = threading.Lock()
        self._frames: deque[dict[str, Any]] = deque(maxlen=FRAME_RING)
        self._seq = 0
        self._final: dict[str, Any] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._main, name=f"traffic-run-{self.id}", daemon=True)

    # --- lifecycle -----------------------------------------------------------------------------
    def start(self) -> None:
        """Start the run's thread and return once its loop is up."""
        self._thread.start()
        self._ready.wait(timeout=10)

    def stop(self) -> None:
        """Ask the run to end early (safe from any thread)."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed in between: the run has ended
                loop.call_soon_threadsafe(self.engine.stop)

    def poke(self) -> None:
        """The cluster changed (a hub event): poll endpoints now (safe from any thread)."""
        loop, wake = self._loop, self._wake
        if loop is not None and wake is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(wake.set)

    @property
    def active(self) -> bool:
        """True until the run has finished (or failed)."""
        return self.state in {"starting", "running"}

    def join(self, timeout: float | None = None) -> None:
        """Wait for the run's thread to end."""
        self._thread.join(timeout)

    def _main(self) -> None:
        loop = self._loop = new_event_loop()
        try:
            loop.run_until_complete(self._run())
        except Exception as error:  # the run must end visibly, never silently
            log.exception("traffic run %s failed", self.id)
            self.error = str(error) or type(error).__name__
            self.state = "failed"
        finally:
            self._ready.set()
            loop.close()

    async def _run(self) -> None:
        self._wake = asyncio.Event()
        executor = concurrent.futures.ThreadPoolExecutor(max_workers=1,
                                                         thread_name_prefix=f"traffic-poll-{self.id}")
        self.state = "running"
        self._ready.set()
        engine_task = asyncio.ensure_future(self.engine.run())
        ticker = asyncio.ensure_future(self._ticker())
        poller = asyncio.ensure_future(self._poller(executor))
        try:
            await engine_task
        finally:
            ticker.cancel()
            poller.cancel()
            await asyncio.gather(ticker, poller, return_exceptions=True)
            executor.shutdown(wait=False, cancel_futures=True)
            if self.state == "running":
                self.state = "stopped" if self.engine.stopped_early else "finished"
            self._emit()
            with self._lock:
                self._final = self._snapshot_now()
            for listener in list(finished_listeners):
                try:
                    listener(self)
                except Exception:  # a listener's bug must not hide the run's end
                    log.exception("traffic run %s: a finished-run listener failed", self.id)

    async def _ticker(self) -> None:
        while True:
            await asyncio.sleep(FRAME_INTERVAL)
            self._emit()

    async def _poller(self, executor: concurrent.futures.Executor) -> None:
        loop = asyncio.get_running_loop()
        service = self.resolved.option.service
        if not service:
            return
        previous: ClusterView | None = None
        assert self._wake is not None
        while True:
            try:
                view = await loop.run_in_executor(executor, lambda: self._poll(
                    service=service, selector=self.resolved.selector, namespace=self.namespace))
            except Exception as error:
                log.warning("traffic run %s: cluster poll failed: %s", self.id, error)
            else:
                t = self.engine.elapsed()
                changes = self.stats.set_endpoints(t, view.endpoints)
                if previous is not None:
                    for kind, label in describe_changes(previous, view, changes):
                        self.stats.add_marker(t, label, kind=kind)
                previous = view
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), POLL_INTERVAL)
                await asyncio.sleep(0.1)  # let a burst of cluster events settle into one poll
            except TimeoutError:
                pass

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
        """Called on the run's loop: cut a delta frame from the stats."""
        with self._lock:
            self._seq += 1
            frame = {"type": "delta", "seq": self._seq, "run": self.meta(), **self.stats.take_delta()}
            self._frames.append(frame)

    def _snapshot_now(self) -> dict[str, Any]:
        return {"type": "snapshot", "seq": self._seq, "run": self.meta(), **self.stats.snapshot()}

    async def snapshot(self) -> dict[str, Any]:
        """A consistent full view, computed on the run's loop while it runs."""
        with self._lock:
            if self._final is not None:
                return self._final
        loop = self._loop
        if loop is None or loop.is_closed():
            return await asyncio.to_thread(self._wait_final)

        async def take() -> dict[str, Any]:
            with self._lock:
                return self._snapshot_now()

        try:
            return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(take(), loop))
        except RuntimeError:
            return await asyncio.to_thread(self._wait_final)

    def _wait_final(self) -> dict[str, Any]:
        self._thread.join(timeout=10)
        with self._lock:
            return self._final or {"type": "snapshot", "seq": self._seq, "run": self.meta(),
                                   **self.stats.snapshot()}

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

    def start(self, *, owner: str, resolved: ResolvedTarget, spec: LoadSpec, namespace: str,
              poll: Callable[..., ClusterView] = poll_cluster) -> TrafficRun:
        """Start a run for ``owner``; RunConflict if one is still going."""
        with self._lock:
            current = self._runs.get(owner)
            if current is not None and current.active:
                raise RunConflict("a traffic run is already in progress; stop it first")
            run = TrafficRun(owner=owner, resolved=resolved, spec=spec, namespace=namespace, poll=poll)
            self._runs[owner] = run
        run.start()
        return run

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
