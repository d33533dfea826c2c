"""Taking over an HTTP/1.1 connection after a `101 Switching Protocols`.

Once the API server has answered an upgrade (plain SPDY for old kubectl's exec, attach and
port-forward; any protocol a pod speaks through `pods/proxy` / `services/proxy`, WebSocket
above all), the connection stops being HTTP: `take_over` points aiohttp's connection at a
reader that queues every byte that arrives (aiohttp's `set_parser` hook, the one its own
WebSocketResponse uses) and returns an `Upgraded`: the bytes in, a sender out (with
back-pressure once 256 KiB wait to be written), and a close.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiohttp import web

if TYPE_CHECKING:
    from aiohttp.web_protocol import RequestHandler

WRITE_HIGH_WATER = 256 * 1024


class _Reader:
    """What aiohttp's connection feeds once the upgrade is accepted: every byte after the 101."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[bytes | None] = asyncio.Queue()

    def feed_data(self, chunk: bytes) -> tuple[bool, bytes]:
        self.queue.put_nowait(bytes(chunk))
        return False, b""

    def feed_eof(self) -> None:
        self.queue.put_nowait(None)


@dataclass
class Upgraded:
    """An accepted upgrade: the 101 response to return, the bytes in, a sender out."""

    response: web.StreamResponse
    chunks: AsyncIterator[bytes]
    send: Callable[[bytes], Awaitable[None]]
    close: Callable[[], None]


def take_over(request: web.Request, response: web.StreamResponse) -> Upgraded:
    """The connection of ``request``, whose 101 ``response`` has been prepared, as raw bytes."""
    protocol: RequestHandler | None = request.protocol
    transport = request.transport
    assert protocol is not None and transport is not None
    reader = _Reader()
    protocol.keep_alive(False)
    protocol.set_parser(reader)  # type: ignore[arg-type]

    async def chunks() -> AsyncIterator[bytes]:
        while (chunk := await reader.queue.get()) is not None:
            yield chunk

    async def send(data: bytes) -> None:
        if transport.is_closing():
            raise ConnectionResetError("the client closed the connection")
        transport.write(data)
        if transport.get_write_buffer_size() > WRITE_HIGH_WATER:
            drain: Any = getattr(protocol, "_drain_helper", None)
            if drain is not None:
                await drain()

    return Upgraded(response, chunks(), send, transport.close)
