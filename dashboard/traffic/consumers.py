"""The traffic lab's websocket: pushes the user's run to the page, several frames a second.

On connect (and whenever a new run starts) the page gets a full ``snapshot``; then ``frames``
messages carry the deltas cut by the run eight times a second (heatmap cells, lanes, per-pod
totals against the even share, latency, errors, progress). A page that fell behind the run's
frame ring gets a fresh snapshot. The consumer also listens to the watch hub's
``lbdemo.cluster`` group and pokes the running run so its heatmap marks land at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from channels.generic.websocket import AsyncJsonWebsocketConsumer

from dashboard.auth import AuthenticatedConsumerMixin
from dashboard.hub import CLUSTER_GROUP
from dashboard.traffic.runs import FRAME_INTERVAL, registry

log = logging.getLogger(__name__)


class TrafficConsumer(AuthenticatedConsumerMixin, AsyncJsonWebsocketConsumer):
    """One browser tab watching its user's traffic run."""

    async def connect(self) -> None:
        """Called on an authenticated handshake: accept and start pushing."""
        self.owner = f"user:{self.scope['user'].pk}"
        self._resync = asyncio.Event()
        await self.accept()
        if self.channel_layer is not None:
            await self.channel_layer.group_add(CLUSTER_GROUP, self.channel_name)
        self._pump = asyncio.ensure_future(self._pump_frames())

    async def disconnect(self, code: int) -> None:
        """Called when the socket closes: stop pushing, leave the group."""
        pump = getattr(self, "_pump", None)
        if pump is not None:
            pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pump
        if self.channel_layer is not None and hasattr(self, "owner"):
            await self.channel_layer.group_discard(CLUSTER_GROUP, self.channel_name)

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        """Called for a frame from the page: only ``{"type": "resync"}`` is understood."""
        if isinstance(content, dict) and content.get("type") == "resync":
            self._resync.set()
            return
        await self.send_json({"type": "error",
                              "message": 'unknown message; only {"type": "resync"} is accepted'})

    async def decode_json(self, text_data: str) -> Any:
        """Called for each text frame; malformed JSON is answered, not fatal."""
        try:
            return await super().decode_json(text_data)
        except ValueError:
            return None

    async def cluster_event(self, message: dict[str, Any]) -> None:
        """Called for every cluster change the watch hub sees: re-poll the run's endpoints now."""
        run = registry.get(self.owner)
        if run is not None and run.active:
            run.poke()

    async def _pump_frames(self) -> None:
        """Runs for the life of the socket: snapshot on a new run or a gap, else the new frames."""
        run_id: int | None = None
        seq = 0
        idle_sent = False
        while True:
            try:
                run = registry.get(self.owner)
                if run is None:
                    if not idle_sent:
                        await self.send_json({"type": "idle"})
                        idle_sent = True
                elif run.id != run_id or self._resync.is_set():
                    self._resync.clear()
                    snapshot = await run.snapshot()
                    await self.send_json(snapshot)
                    run_id, seq = run.id, snapshot["seq"]
                else:
                    frames = run.frames_since(seq)
                    if frames is None:
                        self._resync.set()
                        continue
                    if frames:
                        await self.send_json({"type": "frames", "frames": frames})
                        seq = frames[-1]["seq"]
            except Exception:  # never leave the page silently frozen: log, then resync
                log.exception("traffic socket for %s: push failed; resyncing", self.owner)
                self._resync.set()
            await asyncio.sleep(FRAME_INTERVAL)
