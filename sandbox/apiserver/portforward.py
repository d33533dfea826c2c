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
cluster. The SPDY layer is `spdy.py`; kubectl before 1.30 (Debian's 1.20) sends a plain
`Upgrade: SPDY/3.1` (`X-Stream-Protocol-Version: portforward.k8s.io`) instead of the WebSocket,
and the same session runs over the upgraded connection.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING

from aiohttp import web

from . import errors, spdy
from .spdy import Stream

if TYPE_CHECKING:
    from .server import ApiServer, Target

PROTOCOL = "SPDY/3.1+portforward.k8s.io"
UPGRADE_PROTOCOL = "portforward.k8s.io"  # the X-Stream-Protocol-Version of a plain SPDY upgrade
CHUNK = 32 * 1024


class Session:
    """Port forwarding over one SPDY connection (tunnelled or plain)."""

    def __init__(self, send: Callable[[bytes], Awaitable[None]], ip: str, pod: dict) -> None:
        self.conn = spdy.Connection(send, self.on_stream)
        self.ip = ip
        self.pod = pod
        self.errors: dict[str, Stream] = {}
        self.tasks: set[asyncio.Task] = set()

    async def send(self, frame: bytes) -> None:
        await self.conn.send(frame)

    def on_stream(self, stream: Stream) -> None:
        """An error stream waits for its data stream; a data stream is forwarded to the pod."""
        if stream.kind == "error":
            self.errors[stream.headers.get("requestid", "")] = stream
            return
        coroutine = self.forward(stream) if stream.kind == "data" else self.conn.reset(stream)
        task = asyncio.create_task(coroutine)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def run(self, chunks: AsyncIterator[bytes]) -> None:
        try:
            async for chunk in chunks:
                await self.conn.feed(chunk)
        finally:
            for task in list(self.tasks):
                task.cancel()
            self.conn.close()

    async def forward(self, stream: Stream) -> None:
        """Connect a data stream to the pod's port and copy both ways."""
        port, request_id = stream.headers.get("port", ""), stream.headers.get("requestid", "")
        for _ in range(100):  # the error stream is opened first; give it a moment to arrive
            if request_id in self.errors:
                break
            await asyncio.sleep(0.01)
        error = self.errors.get(request_id)
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
                await self.send(spdy.data(error.id, spdy.FIN, message.encode()))
            await self.send(spdy.data(stream.id, spdy.FIN, b""))
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
                await self.send(spdy.data(stream.id, 0, chunk))
            await self.send(spdy.data(stream.id, spdy.FIN, b""))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(up, 30)
        except (ConnectionResetError, BrokenPipeError):
            await self.send(spdy.data(stream.id, spdy.FIN, b""))
        finally:
            up.cancel()
            writer.close()
            if error is not None:
                await self.send(spdy.data(error.id, spdy.FIN, b""))
            self.conn.streams.pop(stream.id, None)
            if error is not None:
                self.conn.streams.pop(error.id, None)
                self.errors.pop(request_id, None)


async def serve_portforward(api: ApiServer, request: web.Request, target: Target) -> web.StreamResponse:
    """`pods/portforward`."""
    pod = api.registry.get(target.res, target.namespace, target.name or "").obj
    if not pod.get("spec", {}).get("nodeName"):
        raise errors.bad_request(f"pod {pod['metadata']['name']} does not have a host assigned")
    ip = pod.get("status", {}).get("podIP")
    if not ip or pod.get("status", {}).get("phase") != "Running":
        return web.Response(status=500,
                            text=f'pod not found ("{pod["metadata"]["name"]}_{target.namespace}")')
    task = asyncio.current_task()
    assert task is not None
    if spdy.is_upgrade(request):
        upgraded = await spdy.upgrade(request, (UPGRADE_PROTOCOL,))
        api.streams.add(task)
        try:
            await Session(upgraded.send, ip, pod).run(upgraded.chunks)
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            api.streams.discard(task)
            upgraded.close()
        return upgraded.response
    if request.headers.get("Upgrade", "").lower() != "websocket":
        raise errors.bad_request(f"Upgrade request required: {PROTOCOL} over a WebSocket, or {spdy.UPGRADE}")
    ws = web.WebSocketResponse(protocols=(PROTOCOL,), autoping=True, max_msg_size=0)
    await ws.prepare(request)
    api.streams.add(task)
    try:
        await Session(ws.send_bytes, ip, pod).run(spdy.websocket_chunks(ws))
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    finally:
        api.streams.discard(task)
        with contextlib.suppress(Exception):
            await ws.close()
    return ws
