"""The server side of SPDY/3.1 as client-go's streams use it, over either transport kubectl has.

kubectl runs `exec`, `attach` and `port-forward` over SPDY streams (spdystream). kubectl 1.37
tunnels the SPDY connection inside WebSocket binary messages (subprotocol
`SPDY/3.1+portforward.k8s.io`, client-go's `TunnelingConnection`); kubectl before 1.30 (Debian's
1.20) sends a plain HTTP/1.1 `Upgrade: SPDY/3.1` with `X-Stream-Protocol-Version` headers, and
after the `101 Switching Protocols` the connection itself carries the frames. `Connection` is
the one SPDY implementation for both: `feed` it the bytes as they come, it answers each
SYN_STREAM with a SYN_REPLY and hands the new `Stream` (its headers, a queue of what the client
sends, None at FIN/RST) to the caller's callback; `write` sends DATA. `upgrade` takes over an
aiohttp connection after answering the plain upgrade (`upgraded.py`).

The subset is what spdystream sends: SYN_STREAM, SYN_REPLY, DATA with FIN half-close,
RST_STREAM, PING (answered), GOAWAY and SETTINGS (ignored), HEADERS (decompressed to keep the
zlib context in step). Header blocks are zlib streams with the protocol's dictionary (draft 3,
section 2.6.10.1), rebuilt here from its word list. No flow control: spdystream sends none.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from aiohttp import WSMsgType, web

from . import errors
from .upgraded import Upgraded, take_over

if TYPE_CHECKING:
    pass

SYN_STREAM, SYN_REPLY, RST_STREAM, SETTINGS, PING, GOAWAY, HEADERS, WINDOW_UPDATE = 1, 2, 3, 4, 6, 7, 8, 9
FIN = 0x01
UPGRADE = "SPDY/3.1"

_WORDS = ("options head post put delete trace accept accept-charset accept-encoding accept-language "
          "accept-ranges age allow authorization cache-control connection content-base content-encoding "
          "content-language content-length content-location content-md5 content-range content-type date etag "
          "expect expires from host if-match if-modified-since if-none-match if-range if-unmodified-since "
          "last-modified location max-forwards pragma proxy-authenticate proxy-authorization range referer "
          "retry-after server te trailer transfer-encoding upgrade user-agent vary via warning "
          "www-authenticate method get status|200 OK|version HTTP/1.1 url public set-cookie keep-alive "
          "origin")
_TAIL = ("100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505"
         "203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request401 Unauthorized"
         "403 Forbidden404 Not Found500 Internal Server Error501 Not Implemented503 Service Unavailable"
         "Jan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMT"
         "chunked,text/html,image/png,image/jpg,image/gif,application/xml,application/xhtml+xml,text/plain,"
         "text/javascript,publicprivatemax-age=gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0.")


def _dictionary() -> bytes:
    """SPDY/3's zlib dictionary: length-prefixed header words, then common values."""
    words = [w for part in _WORDS.split("|") for w in ([part] if " " in part and part[0].isdigit()
                                                         else part.split())]
    return b"".join(struct.pack("!I", len(w)) + w.encode() for w in words) + _TAIL.encode()


DICTIONARY = _dictionary()
assert len(DICTIONARY) == 1423, len(DICTIONARY)


def decode_headers(block: bytes) -> dict[str, str]:
    """An uncompressed SPDY/3 name/value header block."""
    (count,), pos, out = struct.unpack_from("!I", block), 4, {}
    for _ in range(count):
        (size,) = struct.unpack_from("!I", block, pos)
        name = block[pos + 4:pos + 4 + size].decode()
        pos += 4 + size
        (size,) = struct.unpack_from("!I", block, pos)
        out[name.lower()] = block[pos + 4:pos + 4 + size].decode()
        pos += 4 + size
    return out


def control(kind: int, flags: int, payload: bytes) -> bytes:
    """A SPDY/3 control frame."""
    return struct.pack("!HHI", 0x8003, kind, (flags << 24) | len(payload)) + payload


def data(stream: int, flags: int, payload: bytes) -> bytes:
    """A SPDY DATA frame."""
    return struct.pack("!II", stream & 0x7FFFFFFF, (flags << 24) | len(payload)) + payload


@dataclass
class Stream:
    """One SPDY stream the client opened: its headers and what it sends (None once it finished)."""

    id: int
    headers: dict[str, str]
    incoming: asyncio.Queue[bytes | None] = field(default_factory=asyncio.Queue)

    @property
    def kind(self) -> str:
        """The `streamType` header (error, data, stdin, stdout, stderr, resize)."""
        return self.headers.get("streamtype", "")


class Connection:
    """The server side of one SPDY/3.1 connection, whatever carries its bytes."""

    def __init__(self, send: Callable[[bytes], Awaitable[None]], on_stream: Callable[[Stream], None]) -> None:
        self._send = send
        self.on_stream = on_stream
        self.inflate = zlib.decompressobj(zdict=DICTIONARY)
        self.deflate = zlib.compressobj(9, zdict=DICTIONARY)
        self.streams: dict[int, Stream] = {}
        self.lock = asyncio.Lock()
        self._buffer = b""

    async def send(self, frame: bytes) -> None:
        """Send one frame (frames from concurrent writers never interleave)."""
        async with self.lock:
            with contextlib.suppress(ConnectionResetError, RuntimeError):
                await self._send(frame)

    async def write(self, stream: Stream, payload: bytes, *, fin: bool = False) -> None:
        """DATA on a stream; ``fin`` half-closes it."""
        await self.send(data(stream.id, FIN if fin else 0, payload))

    async def reset(self, stream: Stream) -> None:
        """RST_STREAM (PROTOCOL_ERROR) for a stream the server does not serve."""
        await self.send(control(RST_STREAM, 0, struct.pack("!II", stream.id, 1)))

    async def feed(self, chunk: bytes) -> None:
        """Bytes from the client: handle every complete frame."""
        self._buffer += chunk
        while len(self._buffer) >= 8:
            (length,) = struct.unpack_from("!I", self._buffer, 4)
            length &= 0xFFFFFF
            if len(self._buffer) < 8 + length:
                break
            frame, self._buffer = self._buffer[:8 + length], self._buffer[8 + length:]
            await self._frame(frame)

    def close(self) -> None:
        """The connection ended: every stream's reader sees its end."""
        for stream in self.streams.values():
            stream.incoming.put_nowait(None)

    async def _frame(self, frame: bytes) -> None:
        first, word = struct.unpack_from("!II", frame)
        flags, payload = word >> 24, frame[8:]
        if not first & 0x80000000:
            stream = self.streams.get(first & 0x7FFFFFFF)
            if stream is not None:
                if payload:
                    stream.incoming.put_nowait(payload)
                if flags & FIN:
                    stream.incoming.put_nowait(None)
            return
        kind = first & 0xFFFF
        if kind == SYN_STREAM:
            (stream_id,) = struct.unpack_from("!I", payload)
            stream_id &= 0x7FFFFFFF
            stream = Stream(stream_id, decode_headers(self.inflate.decompress(payload[10:])))
            self.streams[stream_id] = stream
            block = self.deflate.compress(struct.pack("!I", 0)) + self.deflate.flush(zlib.Z_SYNC_FLUSH)
            await self.send(control(SYN_REPLY, 0, struct.pack("!I", stream_id) + block))
            if flags & FIN:
                stream.incoming.put_nowait(None)
            self.on_stream(stream)
        elif kind == RST_STREAM:
            (stream_id,) = struct.unpack_from("!I", payload)
            stream = self.streams.get(stream_id & 0x7FFFFFFF)
            if stream is not None:
                stream.incoming.put_nowait(None)
        elif kind == PING:
            await self.send(frame)
        elif kind == HEADERS and payload:
            self.inflate.decompress(payload[4:])  # keep the header compression context in step


async def websocket_chunks(ws: web.WebSocketResponse) -> AsyncIterator[bytes]:
    """The SPDY bytes tunnelled in a WebSocket's binary messages (kubectl 1.37)."""
    async for msg in ws:
        if msg.type == WSMsgType.BINARY:
            yield msg.data


def is_upgrade(request: web.Request) -> bool:
    """Whether a request is a plain `Upgrade: SPDY/3.1` (kubectl before 1.30)."""
    return request.headers.get("Upgrade", "").strip().lower() == UPGRADE.lower()


async def upgrade(request: web.Request, protocols: tuple[str, ...]) -> Upgraded:
    """Answer a plain SPDY upgrade with 101, choosing the first of the client's
    `X-Stream-Protocol-Version`s the server speaks (400 with kube's message when none)."""
    offered = [p.strip() for value in request.headers.getall("X-Stream-Protocol-Version", [])
               for p in value.split(",") if p.strip()]
    chosen = next((p for p in offered if p in protocols), None)
    if offered and chosen is None:
        raise errors.bad_request(f"unable to upgrade: unable to negotiate protocol: client supports "
                                 f"{offered}, server supports {list(protocols)}")
    headers = {"Connection": "Upgrade", "Upgrade": UPGRADE}
    if chosen:
        headers["X-Stream-Protocol-Version"] = chosen
    response = web.StreamResponse(status=101, reason="Switching Protocols", headers=headers)
    await response.prepare(request)
    return take_over(request, response)
