"""A deduplicating work queue with delayed re-adds (client-go's rate-limited workqueue).

A key is queued at most once; a key being processed that is added again is processed once
more after the current pass, never by two workers at the same time.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)


class WorkQueue:
    """Keys to reconcile, each at most once in the queue and once in flight."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._queue: asyncio.Queue[str] = asyncio.Queue()
        self._queued: set[str] = set()
        self._processing: set[str] = set()
        self._dirty: set[str] = set()
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._failures: dict[str, int] = {}

    def add(self, key: str) -> None:
        """Queue ``key`` (no-op if already queued; re-queued after if being processed)."""
        if key in self._processing:
            self._dirty.add(key)
            return
        if key not in self._queued:
            self._queued.add(key)
            self._queue.put_nowait(key)

    def add_after(self, key: str, delay: float) -> None:
        """Queue ``key`` after ``delay`` seconds (the earliest pending timer wins)."""
        loop = asyncio.get_running_loop()
        when = loop.time() + delay
        timer = self._timers.get(key)
        if timer is not None and not timer.cancelled() and timer.when() <= when:
            return
        if timer is not None:
            timer.cancel()
        self._timers[key] = loop.call_at(when, self._fire, key)

    def _fire(self, key: str) -> None:
        self._timers.pop(key, None)
        self.add(key)

    def add_rate_limited(self, key: str) -> None:
        """Re-queue a key whose reconcile failed, backing off 5 ms doubling to 30 s."""
        n = self._failures.get(key, 0)
        self._failures[key] = n + 1
        self.add_after(key, min(0.005 * 2**n, 30.0))

    def forget(self, key: str) -> None:
        """Reset the failure back-off of ``key``."""
        self._failures.pop(key, None)

    async def run(self, reconcile: Callable[[str], Awaitable[None]], *, workers: int = 1) -> None:
        """Process keys forever with ``workers`` concurrent workers."""
        await asyncio.gather(*(self._worker(reconcile) for _ in range(workers)))

    async def _worker(self, reconcile: Callable[[str], Awaitable[None]]) -> None:
        while True:
            key = await self._queue.get()
            self._queued.discard(key)
            self._processing.add(key)
            try:
                await reconcile(key)
                self.forget(key)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning(
                    "%s: reconcile of %s failed: %s",
                    self.name,
                    key,
                    exc,
                    exc_info=log.isEnabledFor(logging.DEBUG),
                )
                self.add_rate_limited(key)
            finally:
                self._processing.discard(key)
                if key in self._dirty:
                    self._dirty.discard(key)
                    self.add(key)
