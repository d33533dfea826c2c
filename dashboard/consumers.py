"""The cluster websocket: one per open page, sending the shared live view (dashboard.stream).

On connect (after the origin and auth checks) the page gets a full snapshot carrying the
cache's sequence number — unless the page says it was rendered from exactly the state the
stream shows (``?since=<hub epoch>-<seq>``): then one status message confirms it is live —,
then the stream's frames. Every change is rendered once for all pages (dashboard.stream.
ViewStream); a socket only decides how many of those shared messages it may send now.

Flow control instead of an unbounded buffer: the page acknowledges every message
(``{"type": "ack", "seq": N}``, N the sequence number the message brought it to). At most
``LBDEMO_WS_MAX_IN_FLIGHT`` messages and ``LBDEMO_WS_MAX_UNACKED_BYTES`` may be
unacknowledged; beyond that the socket sends nothing more and lets frames pile up in the
stream's shared ring (not in this socket). When it can send again it catches up from the ring
in as few messages as fit, or with a snapshot when the ring no longer reaches back. An ack
for a sequence number this socket never sent is ignored (it must not open the window). A
page that stays stuck for ``LBDEMO_WS_SLOW_CLIENT_SECONDS``, or leaves a message
unacknowledged for ``LBDEMO_WS_ACK_TIMEOUT_SECONDS`` (it stopped reading), is closed with
4013 ("try again later"; autobahn refuses the standard 1013 from an application), on which
the page reconnects and gets a snapshot.

The page may ask for a snapshot: ``{"type": "resync"}`` (honoured at most once a second).
Anything else — binary or empty frames, invalid or deeply nested JSON, frames over
``MAX_CLIENT_FRAME`` characters, unknown types — closes the socket with 4400 and changes
nothing. A path no consumer serves is closed with 4404 (:class:`NotFoundConsumer`).

Cost per socket is what limits how many pages one process serves (every frame is one send and
one ack per page), so the per-message path is kept lean: an ack is handled without Channels'
per-message ``close_old_connections`` hop through the database thread (the socket never touches
the database after its handshake), the pump sleeps on one event re-armed by a 1 s timer instead
of a ``wait_for`` task per wake-up, message sizes and UTF-8 bytes are computed once per shared
message (dashboard.stream.SharedText), and the socket has no channel-layer channel.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import deque
from typing import Any
from urllib.parse import parse_qs

from channels.consumer import get_handler_name
from channels.db import aclose_old_connections
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from dashboard.auth import AuthenticatedConsumerMixin
from dashboard.hub import Hub, get_hub
from dashboard.stream import ViewStream, get_stream, pack, status_html

log = logging.getLogger(__name__)

WS_CLOSE_TRY_AGAIN = 4013
WS_CLOSE_BAD_INPUT = 4400
WS_CLOSE_NOT_FOUND = 4404
WS_CLOSE_SERVER_ERROR = 4500
MAX_CLIENT_FRAME = 1024
# A page may ask for a full snapshot at most this often (each one renders the whole page).
RESYNC_INTERVAL = 1.0
# A snapshot not rendered within this many seconds closes the socket (4500; the page retries).
SNAPSHOT_WAIT = 60.0
# The pump looks at its timeouts (slow client, ack timeout) at least this often.
PUMP_CHECK_INTERVAL = 1.0


def utf8_size(text: str) -> int:
    """Bytes of a message on the wire."""
    return len(text.encode("utf-8"))


def spawn(coro: Any, *, what: str) -> asyncio.Task[Any]:
    """Start a task whose failure is always retrieved and logged (never "Task exception was
    never retrieved")."""
    task = asyncio.get_running_loop().create_task(coro)

    def done(t: asyncio.Task[Any]) -> None:
        if not t.cancelled() and t.exception() is not None:
            log.error("%s failed", what, exc_info=t.exception())

    task.add_done_callback(done)
    return task


class ClusterConsumer(AuthenticatedConsumerMixin, AsyncWebsocketConsumer):
    """Sends the live cluster view to one page."""

    first_sync_wait = 5.0
    # No channel layer: the socket is fed by the stream, not by group messages (a channel per
    # socket would only make the in-memory layer scan every socket's queue on each message).
    channel_layer_alias = "lbdemo-cluster-sockets-use-no-channel-layer"

    async def connect(self) -> None:
        """Called on an authenticated, origin-checked handshake: accept, then start sending."""
        self.max_in_flight = settings.LBDEMO_WS_MAX_IN_FLIGHT
        self.max_unacked_bytes = settings.LBDEMO_WS_MAX_UNACKED_BYTES
        self.slow_client_timeout = float(settings.LBDEMO_WS_SLOW_CLIENT_SECONDS)
        self.ack_timeout = float(settings.LBDEMO_WS_ACK_TIMEOUT_SECONDS)
        self.hub: Hub = get_hub()
        self.stream: ViewStream = get_stream(self.hub)
        self.position: int | None = None
        self.queue: deque[tuple[int, str, int]] = deque()  # (seq, message, its UTF-8 size)
        self.unacked: deque[tuple[int, int, float]] = deque()  # (seq, bytes, sent at)
        self.unacked_bytes = 0
        self.max_sent_seq = -1
        self.stuck_since: float | None = None
        self.resync_requested = False
        self.last_resync = 0.0
        self.send_failures = 0
        self.closing = False
        self.wakeup = asyncio.Event()
        self._check: asyncio.TimerHandle | None = None
        await self.accept()
        await self.hub.wait_synced(self.first_sync_wait)
        since = self._since()
        if since is not None and self.hub.healthy:
            try:
                # Shared: rendered once for every page that asks meanwhile.
                snapshot = await asyncio.wait_for(self.stream.snapshot(), SNAPSHOT_WAIT)
            except Exception:
                log.exception("no snapshot for a new cluster websocket; closing it (the page retries)")
                await self._close(WS_CLOSE_SERVER_ERROR)
                return
            self.position = snapshot.index
            if snapshot.seq == since:
                # The page was rendered from exactly this state: confirm it instead of resending it.
                status = status_html(seq=since, pod_count=len(self.hub.cache.list("Pod")), synced=True,
                                     errors=self.stream.builder.errors.labels())
                self.queue.append((since, status, utf8_size(status)))
            else:
                self.queue.extend(snapshot.entries())
        self.stream.subscribe(self.wakeup.set)
        self.wakeup.set()
        self._arm_check()
        self.pump = spawn(self._pump(), what="a cluster websocket")

    def _arm_check(self) -> None:
        """Wake the pump every PUMP_CHECK_INTERVAL so it notices a page that stopped acking."""
        def check() -> None:
            self.wakeup.set()
            self._arm_check()
        if not self.closing:
            self._check = asyncio.get_running_loop().call_later(PUMP_CHECK_INTERVAL, check)

    async def dispatch(self, message: dict[str, Any]) -> None:
        """Channels' dispatch, without its database hop for every frame the page sends (acks
        never use the database; the handshake and close keep it)."""
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        if message["type"] != "websocket.receive":
            await aclose_old_connections()
        await handler(message)

    def _since(self) -> int | None:
        """The sequence number of ``?since=<this hub's epoch>-<seq>``, if the page sent one."""
        query = parse_qs(self.scope.get("query_string", b"").decode("latin-1"))
        epoch, _, seq = (query.get("since") or [""])[0].partition("-")
        if epoch != self.hub.epoch or not (seq.isascii() and seq.isdigit()) or len(seq) > 18:
            return None
        return int(seq)

    async def disconnect(self, code: int) -> None:
        """Called when the socket closes: stop sending."""
        stream = getattr(self, "stream", None)
        if stream is not None:
            stream.unsubscribe(self.wakeup.set)
        self.closing = True
        check = getattr(self, "_check", None)
        if check is not None:
            check.cancel()
        pump = getattr(self, "pump", None)
        if pump is not None and pump is not asyncio.current_task():
            pump.cancel()

    # --- from the page -------------------------------------------------------------------------
    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        """Called for each frame the page sends: acks and resync requests; anything else is refused."""
        message = self._parse(text_data, bytes_data)
        if message is None:
            log.info("closing a cluster websocket after invalid input")
            await self._close(WS_CLOSE_BAD_INPUT)
            return
        if message["type"] == "ack":
            seq = message["seq"]
            if seq > self.max_sent_seq:
                log.debug("ignoring an ack for %d: this socket sent only up to %d", seq, self.max_sent_seq)
                return
            while self.unacked and self.unacked[0][0] <= seq:
                self.unacked_bytes -= self.unacked.popleft()[1]
            if self.queue:  # only a message waiting for the window needs the pump now
                self.wakeup.set()
            return
        if time.monotonic() - self.last_resync >= RESYNC_INTERVAL:
            self.last_resync = time.monotonic()
            self.resync_requested = True
        self.wakeup.set()

    @staticmethod
    def _parse(text_data: str | None, bytes_data: bytes | None) -> dict[str, Any] | None:
        """Validate a client frame: {"type": "ack", "seq": int} or {"type": "resync"}."""
        if text_data is None or bytes_data is not None or not text_data or len(text_data) > MAX_CLIENT_FRAME:
            return None
        try:
            message = json.loads(text_data)
        except (ValueError, RecursionError):
            return None
        if not isinstance(message, dict):
            return None
        if message.get("type") == "resync":
            return message
        seq = message.get("seq")
        if message.get("type") == "ack" and isinstance(seq, int) and not isinstance(seq, bool) and seq >= 0:
            return message
        return None

    # --- to the page ---------------------------------------------------------------------------
    async def _pump(self) -> None:
        """Send what the page is missing whenever the stream or the page's acks allow it."""
        while not self.closing:
            await self.wakeup.wait()
            self.wakeup.clear()
            if self._too_slow():
                log.warning("dropping a cluster websocket that stopped reading (%d messages, %d bytes "
                            "unacknowledged)", len(self.unacked), self.unacked_bytes)
                await self._close(WS_CLOSE_TRY_AGAIN)
                return
            try:
                if not self.queue or self.resync_requested:
                    await self._refill()
                await self._drain()
            except Exception:
                log.exception("a cluster websocket could not be served; closing it (the page reconnects)")
                await self._close(WS_CLOSE_SERVER_ERROR)
                return

    def _too_slow(self) -> bool:
        now = time.monotonic()
        if self.stuck_since is not None and now - self.stuck_since > self.slow_client_timeout:
            return True
        return bool(self.unacked) and now - self.unacked[0][2] > self.ack_timeout

    async def _refill(self) -> None:
        """Queue the stream's frames after this page's position, or a snapshot."""
        if self.position is not None and not self.resync_requested:
            frames = self.stream.frames_after(self.position)
            if frames is not None:
                if frames:
                    self.position = frames[-1].index
                    if len(frames) == 1:
                        self.queue.extend(frames[0].entries())
                    else:  # catching up: as few messages as fit
                        texts = pack((m for f in frames for m in f.messages), limit=self.stream.builder.limit)
                        self.queue.extend((frames[-1].seq, t, utf8_size(t)) for t in texts)
                return
        self.resync_requested = False
        self.queue.clear()
        snapshot = await asyncio.wait_for(self.stream.snapshot(), SNAPSHOT_WAIT)
        self.position = snapshot.index
        self.queue.extend(snapshot.entries())

    async def _drain(self) -> None:
        """Send queued messages while the flow-control window allows."""
        while self.queue and not self.closing:
            seq, text, size = self.queue[0]
            if self.unacked and (len(self.unacked) >= self.max_in_flight
                                 or self.unacked_bytes + size > self.max_unacked_bytes):
                self.stuck_since = self.stuck_since or time.monotonic()
                return
            try:
                await self.send(text_data=text)
            except Exception as exc:
                # Not sent: not recorded as sent. The page gets a snapshot (and on a second
                # failure in a row, a closed socket it reconnects).
                self.send_failures += 1
                log.warning("could not send a %d-byte message to a cluster websocket (%s: %s)", size,
                            type(exc).__name__, exc)
                self.queue.clear()
                self.position = None
                if self.send_failures > 1:
                    await self._close(WS_CLOSE_SERVER_ERROR)
                else:
                    self.wakeup.set()
                return
            self.send_failures = 0
            self.queue.popleft()
            self.unacked.append((seq, size, time.monotonic()))
            self.unacked_bytes += size
            self.max_sent_seq = max(self.max_sent_seq, seq)
            self.stuck_since = None

    async def _close(self, code: int) -> None:
        if self.closing:
            return
        self.closing = True
        self.queue.clear()
        self.wakeup.set()
        await self.close(code=code)


class NotFoundConsumer(AsyncWebsocketConsumer):
    """Any websocket path no consumer serves: accepted only to be closed with 4404."""

    async def connect(self) -> None:
        """Called on the handshake: close at once with "not found"."""
        log.info("closing a websocket to an unknown path %.100r", self.scope.get("path"))
        await self.accept()
        await self.close(code=WS_CLOSE_NOT_FOUND)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        """Frames that race the close are ignored."""
