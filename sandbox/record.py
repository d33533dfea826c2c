"""The event recorder every sandbox component uses to write core/v1 Events (client-go's `record`).

`kubectl describe` and the dashboard show these Events, so they carry what Kubernetes' own
carry: reason, message, type, involvedObject (with fieldPath such as
``spec.containers{backend}``), source and reportingComponent. Like client-go's correlator, a
repeat of the same event (same object, reason, message, source) is aggregated into the
existing Event: its count goes up and its lastTimestamp moves, instead of a new object.
Writes go through a bounded queue drained by one task, so recording never blocks a caller.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime
from typing import Any

from sandbox.client import EVENTS, ApiClient, ApiError, Obj

log = logging.getLogger(__name__)

NORMAL = "Normal"
WARNING = "Warning"


def object_reference(obj: Obj, *, field_path: str | None = None) -> Obj:
    """An ObjectReference to ``obj`` as an Event's involvedObject."""
    meta = obj.get("metadata", {})
    ref = {
        "kind": obj.get("kind"),
        "apiVersion": obj.get("apiVersion"),
        "name": meta.get("name"),
        "namespace": meta.get("namespace"),
        "uid": meta.get("uid"),
        "resourceVersion": meta.get("resourceVersion"),
    }
    if field_path:
        ref["fieldPath"] = field_path
    return {k: v for k, v in ref.items() if v}


class EventRecorder:
    """Records Events for one component (``kubelet`` on a host, ``default-scheduler``, ...)."""

    def __init__(self, client: ApiClient, *, component: str, host: str | None = None) -> None:
        self.client = client
        self.component = component
        self.host = host
        self._queue: asyncio.Queue[tuple[Obj, str, str, str, str | None, int]] = asyncio.Queue(maxsize=1000)
        self._seen: dict[tuple[Any, ...], tuple[str, str, int]] = {}
        self._task: asyncio.Task | None = None

    def event(
        self,
        obj: Obj,
        type_: str,
        reason: str,
        message: str,
        *,
        field_path: str | None = None,
        when_ns: int | None = None,
    ) -> None:
        """Record an event about ``obj`` that happened now (or at ``when_ns``); never blocks, and is
        dropped with a log line if the queue is full."""
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(
                self._drain(), name=f"events:{self.component}"
            )
        try:
            self._queue.put_nowait((obj, type_, reason, message, field_path, when_ns or time.time_ns()))
        except asyncio.QueueFull:
            log.warning("event queue full, dropping %s %s", reason, message)

    async def flush(self, *, timeout: float) -> None:
        """Wait until every event recorded so far is written (a component about to exit calls
        this); raises TimeoutError after ``timeout`` seconds."""
        async with asyncio.timeout(timeout):
            await self._queue.join()

    async def _drain(self) -> None:
        while True:
            item = await self._queue.get()
            try:
                await self._write(*item)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.info("could not record event %s: %s", item[2], exc)
            finally:
                self._queue.task_done()

    async def _write(
        self, obj: Obj, type_: str, reason: str, message: str, field_path: str | None, when_ns: int
    ) -> None:
        """Create the Event, or count a repeat; times are those of the `event()` call, so events
        of different components sort in the order they happened, not the order they were written."""
        ref = object_reference(obj, field_path=field_path)
        namespace = ref.get("namespace") or "default"
        key = (ref.get("uid"), ref.get("name"), field_path, type_, reason, message)
        stamp = datetime.fromtimestamp(when_ns / 1e9, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        seen = self._seen.get(key)
        if seen is not None:
            name, ns, count = seen
            try:
                await self.client.patch(
                    EVENTS, name, {"count": count + 1, "lastTimestamp": stamp}, namespace=ns
                )
                self._seen[key] = (name, ns, count + 1)
                return
            except ApiError as exc:
                if not exc.not_found:
                    raise
        name = f"{ref.get('name', 'unknown')}.{when_ns:x}"
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": name, "namespace": namespace},
            "involvedObject": ref,
            "reason": reason,
            "message": message,
            "type": type_,
            "source": {"component": self.component, **({"host": self.host} if self.host else {})},
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
            "count": 1,
            "reportingComponent": self.component,
            "reportingInstance": self.host or self.component,
        }
        await self.client.create(EVENTS, event, namespace=namespace)
        if len(self._seen) > 4096:
            self._seen.clear()
        self._seen[key] = (name, namespace, 1)
