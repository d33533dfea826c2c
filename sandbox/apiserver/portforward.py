"""`pods/portforward`: `kubectl port-forward` over the protocol kubectl 1.37 speaks.

kubectl opens `GET .../pods/NAME/portforward` as a WebSocket with subprotocol
`SPDY/3.1+portforward.k8s.io`: the binary messages carry a SPDY/3.1 connection (client-go's
`TunnelingConnection`; kube-apiserver hands it on to the kubelet). For every local connection
kubectl opens two SPDY streams with headers `streamtype: error|data`, `port` and `requestid`;
the server replies to each, connects the data stream to the pod's port, copies both ways (a
FIN from either side half-closes), and writes any failure as text on the error stream, which
it then finishes (kubectl prints `an error occurred forwarding L -> R: <text>`).

The API server dials `podIP:port` itself: sandbox pods share the host network on their own
loopback IPs (a kubelet would enter the pod's network namespace). `kubectl port-forward
svc/NAME` resolves the Service to one pod and its targetPort on the client, as on a real
cluster. The SPDY layer here is the part of SPDY/3.1 spdystream uses: SYN_STREAM, SYN_REPLY,
DATA with FIN, RST_STREAM, PING (answered), GOAWAY and SETTINGS (ignored); header blocks are
zlib streams with the protocol's dictionary (draft 3, section 2.6.10.1). No flow control:
spdystream sends none. The SPDY upgrade kubectl falls back to when the WebSocket upgrade is
refused is not served (400).
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
import zlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from aiohttp import WSMsgType, web

from . import errors

if TYPE_CHECKING:
    from .server import ApiServer, Target

PROTOCOL = "SPDY/3.1+portforward.k8s.io"
SYN_STREAM, SYN_REPLY, RST_STREAM, SETTINGS, PING, GOAWAY, HEADERS, WINDOW_UPDATE = 1, 2, 3, 4, 6, 7, 8, 9
FIN = 0x01
CHUNK = 32 * 1024

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
    """One SPDY stream kubectl opened."""

    id: int
    kind: str
    port: str
    request: str
    incoming: asyncio.Queue[bytes | None] = field(default_factory=asyncio.Queue)


class Session:
    """The server side of one tunnelled SPDY connection."""

    def __init__(self, ws: web.WebSocketResponse, ip: str, pod: dict) -> None:
        self.ws = ws
        self.ip = ip
        self.pod = pod
        self.inflate = zlib.decompressobj(zdict=DICTIONARY)
        self.deflate = zlib.compressobj(9, zdict=DICTIONARY)
        self.streams: dict[int, Stream] = {}
        self.errors: dict[str, Stream] = {}
        self.lock = asyncio.Lock()
        self.tasks: set[asyncio.Task] = set()

    async def send(self, frame: bytes) -> None:
        async with self.lock:
            with contextlib.suppress(ConnectionResetError, RuntimeError):
                await self.ws.send_bytes(frame)

    async def run(self) -> None:
        buffer = b""
        try:
            async for msg in self.ws:
                if msg.type != WSMsgType.BINARY:
                    continue
                buffer += msg.data
                while len(buffer) >= 8:
                    (length,) = struct.unpack_from("!I", buffer, 4)
                    length &= 0xFFFFFF
                    if len(buffer) < 8 + length:
                        break
                    frame, buffer = buffer[:8 + length], buffer[8 + length:]
                    await self.frame(frame)
        finally:
            for task in list(self.tasks):
                task.cancel()
            for stream in self.streams.values():
                stream.incoming.put_nowait(None)

    async def frame(self, frame: bytes) -> None:
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
            headers = decode_headers(self.inflate.decompress(payload[10:]))
            stream = Stream(stream_id, headers.get("streamtype", ""), headers.get("port", ""),
                            headers.get("requestid", ""))
            self.streams[stream_id] = stream
            block = self.deflate.compress(struct.pack("!I", 0)) + self.deflate.flush(zlib.Z_SYNC_FLUSH)
            await self.send(control(SYN_REPLY, 0, struct.pack("!I", stream_id) + block))
            if flags & FIN:
                stream.incoming.put_nowait(None)
            if stream.kind == "error":
                self.errors[stream.request] = stream
            elif stream.kind == "data":
                task = asyncio.create_task(self.forward(stream))
                self.tasks.add(task)
                task.add_done_callback(self.tasks.discard)
            else:
                await self.send(control(RST_STREAM, 0, struct.pack("!II", stream_id, 1)))
        elif kind == RST_STREAM:
            (stream_id,) = struct.unpack_from("!I", payload)
            stream = self.streams.get(stream_id & 0x7FFFFFFF)
            if stream is not None:
                stream.incoming.put_nowait(None)
        elif kind == PING:
            await self.send(frame)
        elif kind == HEADERS and payload:
            self.inflate.decompress(payload[4:])  # keep the header compression context in step

    async def forward(self, stream: Stream) -> None:
        """Connect a data stream to the pod's port and copy both ways."""
        port = stream.port
        for _ in range(100):  # the error stream is opened first; give it a moment to arrive
            if stream.request in self.errors:
                break
            await asyncio.sleep(0.01)
        error = self.errors.get(stream.request)
        meta = self.pod["metadata"]
        try:
            if not port.isdigit() or not 0 < int(port) < 65536:
                raise ValueError(f'invalid port "{port}"')
            reader, writer = await asyncio.open_connection(self.ip, int(port))
        except (OSError, ValueError) as exc:
            reason = str(exc)
            if isinstance(exc, ConnectionRefusedError):
                reason = f"dial tcp {self.ip}:{port}: connect: connection refused"
            message = (f"error forwarding port {port} to pod {meta['name']}, uid {meta.get('uid', '')}: "
                       f"{reason}")
            if error is not None:
                await self.send(data(error.id, FIN, message.encode()))
            await self.send(data(stream.id, FIN, b""))
            return

        async def upstream() -> None:
            while (chunk := await stream.incoming.get()) is not None:
                writer.write(chunk)
                await writer.drain()
            if writer.can_write_eof():
                writer.write_eof()

        up = asyncio.create_task(upstream())
        try:
            while chunk := await reader.read(CHUNK):
                await self.send(data(stream.id, 0, chunk))
            await self.send(data(stream.id, FIN, b""))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(up, 30)
        except (ConnectionResetError, BrokenPipeError):
            await self.send(data(stream.id, FIN, b""))
        finally:
            up.cancel()
            writer.close()
            if error is not None:
                await self.send(data(error.id, FIN, b""))
            self.streams.pop(stream.id, None)
            if error is not None:
                self.streams.pop(error.id, None)
                self.errors.pop(stream.request, None)


async def serve_portforward(api: ApiServer, request: web.Request, target: Target) -> web.StreamResponse:
    """`pods/portforward`."""
    pod = api.registry.get(target.res, target.namespace, target.name or "").obj
    if not pod.get("spec", {}).get("nodeName"):
        raise errors.bad_request(f"pod {pod['metadata']['name']} does not have a host assigned")
    ip = pod.get("status", {}).get("podIP")
    if not ip or pod.get("status", {}).get("phase") != "Running":
        return web.Response(status=500,
                            text=f'pod not found ("{pod["metadata"]["name"]}_{target.namespace}")')
    if request.headers.get("Upgrade", "").lower() != "websocket":
        raise errors.bad_request(f"Upgrade request required: the sandbox speaks {PROTOCOL} over a WebSocket, "
                                 "not a SPDY upgrade")
    ws = web.WebSocketResponse(protocols=(PROTOCOL,), autoping=True, max_msg_size=0)
    await ws.prepare(request)
    task = asyncio.current_task()
    assert task is not None
    api.streams.add(task)
    try:
        await Session(ws, ip, pod).run()
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    finally:
        api.streams.discard(task)
        with contextlib.suppress(Exception):
            await ws.close()
    return ws
