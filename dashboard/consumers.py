"""The cluster websocket: one per open page, streaming the cache as htmx out-of-band swaps.

On connect (after the auth and origin checks) the page gets a full snapshot carrying the
cache's sequence number — unless the page says it was rendered from exactly the current state
(``?since=<hub epoch>-<seq>``), in which case nothing needs resending —, then deltas. The
hub's ``cluster.changed`` wake-ups are coalesced: a frame goes out at most every
``frame_interval`` seconds and carries everything that changed since the last one (read from
the cache's change log, so nothing queues up per client).

Flow control instead of an unbounded buffer: the page acknowledges every frame
(``{"type": "ack", "seq": N}``); at most ``max_in_flight`` frames may be unacknowledged.
Beyond that the consumer stops sending and lets changes coalesce; a client that stays stuck
for ``slow_client_timeout`` seconds is dropped (close code 1013, "try again later", on which
the htmx ws extension reconnects and gets a fresh snapshot). When the change log no longer
reaches back to what the page has seen, the next frame is a snapshot (a resync). The page
may also ask for one: ``{"type": "resync"}`` (honoured at most once a second). Anything else
it sends closes the socket with 4400, and nothing changes.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any
from urllib.parse import parse_qs

from asgiref.sync import sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer

from dashboard.auth import AuthenticatedConsumerMixin
from dashboard.hub import VIEW_GROUP, Hub, get_hub
from dashboard.presenters import utcnow
from dashboard.stream import Fragment, FrameBuilder, render_fragments, settings_scope, status_fragment

log = logging.getLogger(__name__)

WS_CLOSE_BAD_INPUT = 4400
WS_CLOSE_TRY_AGAIN = 1013
MAX_CLIENT_FRAME = 1024
# A page may ask for a full snapshot at most this often (each one renders the whole page).
RESYNC_INTERVAL = 1.0


class ClusterConsumer(AuthenticatedConsumerMixin, AsyncWebsocketConsumer):
    """Streams the live cluster view to one page."""

    frame_interval = 0.1
    max_in_flight = 8
    slow_client_timeout = 15.0
    first_sync_wait = 5.0

    async def connect(self) -> None:
        """Called on an authenticated, origin-checked handshake: accept, subscribe, snapshot."""
        self.hub: Hub = get_hub()
        self.builder = FrameBuilder(settings_scope())
        self.sent_seq = 0
        self.unacked: list[int] = []
        self.stuck_since: float | None = None
        self.resync_requested = False
        self.flush_handle: asyncio.TimerHandle | None = None
        self.flushing = False
        self.last_frame = 0.0
        self.shown_healthy = True
        self.last_snapshot = 0.0
        await self.channel_layer.group_add(VIEW_GROUP, self.channel_name)
        await self.accept()
        synced = await self.hub.wait_synced(self.first_sync_wait)
        if self._page_is_current():
            # The page was rendered from exactly this state a moment ago: remember what it
            # shows instead of rendering and sending the same thing again.
            self.builder.snapshot(self.hub.cache, self.hub.timeline.visible(time.time()), now=utcnow())
            self.sent_seq = self.hub.cache.seq
            self.shown_healthy = self.hub.healthy
            return
        await self.send_snapshot(synced=synced)

    def _page_is_current(self) -> bool:
        """True if the page says (``?since=<epoch>-<seq>``) it shows this hub's current state."""
        query = parse_qs(self.scope.get("query_string", b"").decode("latin-1"))
        since = (query.get("since") or [""])[0]
        return since == f"{self.hub.epoch}-{self.hub.cache.seq}" and self.hub.healthy

    async def disconnect(self, code: int) -> None:
        """Called when the socket closes: stop timers and leave the group."""
        flush_handle = getattr(self, "flush_handle", None)
        if flush_handle is not None:
            flush_handle.cancel()
        if hasattr(self, "hub"):
            await self.channel_layer.group_discard(VIEW_GROUP, self.channel_name)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        """Called for each frame the page sends: acks and resync requests; anything else is refused."""
        message = self._parse(text_data, bytes_data)
        if message is None:
            log.info("closing a cluster websocket after invalid input")
            await self.close(code=WS_CLOSE_BAD_INPUT)
            return
        if message["type"] == "ack":
            seq = message["seq"]
            self.unacked = [s for s in self.unacked if s > seq]
            if len(self.unacked) < self.max_in_flight:
                self.stuck_since = None
        elif time.monotonic() - self.last_snapshot >= RESYNC_INTERVAL:
            self.resync_requested = True
        self.schedule_flush()

    @staticmethod
    def _parse(text_data: str | None, bytes_data: bytes | None) -> dict[str, Any] | None:
        """Validate a client frame: {"type": "ack", "seq": int} or {"type": "resync"}."""
        if text_data is None or bytes_data is not None or len(text_data) > MAX_CLIENT_FRAME:
            return None
        try:
            message = json.loads(text_data)
        except ValueError:
            return None
        if not isinstance(message, dict):
            return None
        if message.get("type") == "resync":
            return message
        seq = message.get("seq")
        if message.get("type") == "ack" and isinstance(seq, int) and not isinstance(seq, bool) and seq >= 0:
            return message
        return None

    async def cluster_changed(self, message: dict[str, Any]) -> None:
        """Called (via the channel layer) when the hub applied changes: schedule a frame."""
        self.schedule_flush()

    def schedule_flush(self) -> None:
        """Arrange one frame no sooner than ``frame_interval`` after the previous one."""
        if self.flush_handle is not None:
            return
        delay = max(0.0, self.last_frame + self.frame_interval - time.monotonic())
        loop = asyncio.get_running_loop()
        self.flush_handle = loop.call_later(delay, lambda: loop.create_task(self.flush()))

    async def flush(self) -> None:
        """Send what changed since the last frame (or a snapshot), respecting flow control."""
        self.flush_handle = None
        if self.flushing:
            self.schedule_flush()
            return
        if len(self.unacked) >= self.max_in_flight:
            now = time.monotonic()
            self.stuck_since = self.stuck_since or now
            if now - self.stuck_since > self.slow_client_timeout:
                log.warning("dropping a cluster websocket that stopped reading (%d frames unacknowledged)",
                            len(self.unacked))
                await self.close(code=WS_CLOSE_TRY_AGAIN)
                return
            loop = asyncio.get_running_loop()
            self.flush_handle = loop.call_later(0.5, lambda: loop.create_task(self.flush()))
            return
        if self.resync_requested:
            self.resync_requested = False
            await self.send_snapshot(synced=True)
            return
        changes = self.hub.cache.changes_since(self.sent_seq)
        if changes is None:
            await self.send_snapshot(synced=True)
            return
        healthy = self.hub.healthy
        if not changes and healthy == self.shown_healthy:
            return
        seq = self.hub.cache.seq
        fragments = self.builder.delta(changes, self.hub.cache, self.hub.timeline.visible(time.time()),
                                       now=utcnow()) if changes else []
        fragments.append(status_fragment(seq=seq, pod_count=len(self.hub.cache.objects.get("Pod", {})),
                                         synced=healthy))
        self.shown_healthy = healthy
        await self._send_frame(seq, fragments)

    async def send_snapshot(self, *, synced: bool) -> None:
        """Send the whole page as one frame."""
        self.shown_healthy = self.hub.healthy
        self.last_snapshot = time.monotonic()
        seq, fragments = self.builder.snapshot(self.hub.cache, self.hub.timeline.visible(time.time()),
                                               now=utcnow(), synced=synced and self.shown_healthy)
        await self._send_frame(seq, fragments)

    async def _send_frame(self, seq: int, fragments: list[Fragment]) -> None:
        """Render (in a worker thread: templates must not stall the loop) and send one frame."""
        self.flushing = True
        try:
            self.sent_seq = seq
            html = await sync_to_async(render_fragments, thread_sensitive=False)(fragments)
            await self.send(text_data=html)
            self.unacked.append(seq)
            self.last_frame = time.monotonic()
        finally:
            self.flushing = False
        if self.hub.cache.seq > self.sent_seq:
            self.schedule_flush()
