"""The traffic lab's websocket: pushes the user's run to the page as the run cuts its frames.

On connect (and whenever a new run starts) the page gets a full ``snapshot``; then ``frames``
messages carry the deltas the run cuts eight times a second (heatmap cells, lanes, per-pod
totals against the even share, latency, errors, progress). A page that fell behind the run's
frame ring gets a fresh snapshot. Nothing is polled: the run registry wakes the socket
(:meth:`RunRegistry.watch`) when its owner's run cut a frame, ended or was replaced, and the
wake-up is handed to this socket's loop with ``call_soon_threadsafe``.

What the page may send: a text frame of at most 1 KiB holding ``{"type": "resync"}`` (answered
with a snapshot). Any other JSON — or text that is not JSON, empty or nested too deeply — is
answered with ``{"type": "error", "message": ...}`` and changes nothing. A binary frame or a
text frame over 1 KiB closes the socket with 4400 (bad input), never with 1011.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any

from channels.generic.websocket import AsyncWebsocketConsumer

from dashboard.auth import AuthenticatedConsumerMixin
from dashboard.traffic.runs import registry

log = logging.getLogger(__name__)

WS_CLOSE_BAD_INPUT = 4400
MAX_CLIENT_FRAME = 1024
UNDERSTOOD = 'unknown message; only {"type": "resync"} is accepted'


def parse_client_frame(text: str) -> dict[str, Any] | None:
    """A page's message as a JSON object, or None if it is not one (malformed, empty, too deep)."""
    try:
        message = json.loads(text)
    except (ValueError, RecursionError):
        return None
    return message if isinstance(message, dict) else None


class TrafficConsumer(AuthenticatedConsumerMixin, AsyncWebsocketConsumer):
    """One browser tab watching its user's traffic run."""

    async def connect(self) -> None:
        """Called on an authenticated handshake: accept and start pushing."""
        self.owner = f"user:{self.scope['user'].pk}"
        self._resync = False
        self._woken = asyncio.Event()
        loop = asyncio.get_running_loop()

        def wake() -> None:
            with contextlib.suppress(RuntimeError):  # this socket's loop has closed
                loop.call_soon_threadsafe(self._woken.set)

        self._unwatch = registry.watch(self.owner, wake)
        await self.accept()
        self._pump = asyncio.ensure_future(self._push_frames())

    async def disconnect(self, code: int) -> None:
        """Called when the socket closes: stop pushing."""
        unwatch = getattr(self, "_unwatch", None)
        if unwatch is not None:
            unwatch()
        pump = getattr(self, "_pump", None)
        if pump is not None:
            pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pump

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        """Called for a frame from the page: a resync request; anything else is refused."""
        if text_data is None or bytes_data is not None or len(text_data) > MAX_CLIENT_FRAME:
            log.info("closing a traffic websocket after a binary or oversized frame")
            await self.close(code=WS_CLOSE_BAD_INPUT)
            return
        message = parse_client_frame(text_data)
        if message is not None and message.get("type") == "resync":
            self._resync = True
            self._woken.set()
            return
        await self.send_json({"type": "error", "message": UNDERSTOOD})

    async def send_json(self, content: dict[str, Any]) -> None:
        """Send one JSON message."""
        await self.send(text_data=json.dumps(content, separators=(",", ":")))

    async def _push_frames(self) -> None:
        """Runs for the life of the socket: snapshot on a new run or a gap, else the new frames;
        then sleep until the registry wakes it."""
        run_id: int | None = None
        seq = 0
        idle_sent = False
        while True:
            self._woken.clear()
            try:
                run = registry.get(self.owner)
                if run is None:
                    if not idle_sent:
                        await self.send_json({"type": "idle"})
                        idle_sent = True
                elif run.id != run_id or self._resync:
                    self._resync = False
                    snapshot = await run.snapshot()
                    await self.send_json(snapshot)
                    run_id, seq = run.id, snapshot["seq"]
                else:
                    frames = run.frames_since(seq)
                    if frames is None:
                        self._resync = True
                        continue
                    if frames:
                        await self.send_json({"type": "frames", "frames": frames})
                        seq = frames[-1]["seq"]
            except Exception:  # never leave the page silently frozen: log, then resync
                log.exception("traffic socket for %s: push failed; resyncing", self.owner)
                self._resync = True
                await asyncio.sleep(1.0)
                continue
            await self._woken.wait()
