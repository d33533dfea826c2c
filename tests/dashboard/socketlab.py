"""A real daphne serving the dashboard against the in-memory fake API, for socket-level tests.

What a browser would meet: daphne's HTTP and autobahn's websocket implementation (message
limits, close-code validation, TCP back-pressure), not Channels' test communicator.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import socket
from base64 import b64encode
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import requests

from lab.launcher import Lab, free_port
from tests import polling
from tests.dashboard.fakeapi import FakeApi


def node_obj(name: str, *, ready: bool = True, heartbeat: str = "2026-11-24T21:00:00Z") -> dict[str, Any]:
    """A Node as the API returns it."""
    return {"kind": "Node", "apiVersion": "v1", "metadata": {"name": name},
            "status": {"conditions": [{"type": "Ready", "status": "True" if ready else "False",
                                       "lastHeartbeatTime": heartbeat}]}}


class SocketLab:
    """daphne (started like `make demo` starts it) watching a :class:`FakeApi`."""

    def __init__(self, tmp: Path, *, env: dict[str, str] | None = None) -> None:
        self.api = FakeApi()
        self.token = secrets.token_urlsafe(32)
        self.log_file = tmp / "dashboard.log"
        self.port = free_port()
        self.lab = Lab()
        full_env = {
            "KUBECONFIG": str(self.api.kubeconfig(tmp / "kubeconfig")),
            "LBDEMO_DB_PATH": str(tmp / "dashboard.sqlite3"),
            "LBDEMO_TOKEN": self.token,
            "LBDEMO_WATCH_READ_TIMEOUT": "30",
            **(env or {}),
        }
        try:
            self.lab.start_dashboard(port=self.port, env=full_env, log_file=self.log_file)
        except Exception:
            self.stop()
            raise
        self.url = f"http://127.0.0.1:{self.port}"
        self._cookie: str | None = None

    def stop(self) -> None:
        """Stop daphne and the fake API."""
        self.lab.stop()
        self.api.stop()

    def log(self) -> str:
        """Everything daphne and the dashboard wrote so far."""
        return self.log_file.read_text(errors="replace") if self.log_file.exists() else ""

    def cookie(self) -> str:
        """A logged-in session's Cookie header (by operator token, like an operator's browser)."""
        if self._cookie is None:
            response = requests.get(f"{self.url}/?token={self.token}", allow_redirects=False, timeout=60)
            assert response.status_code == 302, response.text
            self._cookie = f"sessionid={response.cookies['sessionid']}"
        return self._cookie

    def fresh_cookie(self) -> str:
        """A new logged-in session (an earlier test may have logged the cached one out)."""
        self._cookie = None
        return self.cookie()

    def origin(self) -> str:
        """The page's own origin."""
        return f"http://127.0.0.1:{self.port}"

    async def ws(self, session: aiohttp.ClientSession, path: str = "/ws/cluster/", *,
                 origin: str | None = None, cookie: bool = True) -> aiohttp.ClientWebSocketResponse:
        """Open a websocket as the page would (its own Origin and the session cookie)."""
        headers = {"Origin": origin or self.origin()}
        if cookie:
            headers["Cookie"] = self.cookie()
        return await session.ws_connect(f"ws://127.0.0.1:{self.port}{path}", headers=headers,
                                        max_msg_size=0, autoping=True,
                                        timeout=aiohttp.ClientWSTimeout(ws_close=10))


async def frames_until(ws: aiohttp.ClientWebSocketResponse, predicate: Callable[[str], bool], *,
                       timeout: float = 60.0, ack: bool = True) -> list[str]:
    """Read (and ack, like the page) text messages until one satisfies ``predicate``."""
    seen: list[str] = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        remaining = deadline - loop.time()
        if remaining <= 0:
            raise AssertionError(f"no matching message in {timeout} s; got {len(seen)} messages")
        message = await ws.receive(timeout=remaining)
        if message.type != aiohttp.WSMsgType.TEXT:
            raise AssertionError(f"socket ended: {message.type} {message.data!r} {message.extra!r}")
        seen.append(message.data)
        if ack:
            await ws.send_str(json.dumps({"type": "ack", "seq": last_seq(message.data)}))
        if predicate(message.data):
            return seen


def last_seq(html: str) -> int:
    """The sequence number a message brings the page to (its last status element's data-seq)."""
    marker = 'data-seq="'
    start = html.rindex(marker) + len(marker)
    return int(html[start:html.index('"', start)])


def is_live(html: str) -> bool:
    """True if the message's final status says "live" (a complete view)."""
    tail = html[html.rindex('id="status"'):]
    return 'data-complete="true"' in tail and ">live<" in tail


def raw_websocket(port: int, *, cookie: str, origin: str, path: str = "/ws/cluster/",
                  rcvbuf: int = 4096) -> socket.socket:
    """A websocket opened by hand on a plain TCP socket with a tiny receive buffer, so that a
    test can stop reading (the kernel then stops the server's sends)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.connect(("127.0.0.1", port))
    key = b64encode(secrets.token_bytes(16)).decode()
    sock.sendall((f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                  f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
                  f"Origin: {origin}\r\nCookie: {cookie}\r\n\r\n").encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(1)
        if not chunk:
            raise AssertionError("handshake refused")
        head += chunk
    assert head.startswith(b"HTTP/1.1 101"), head
    return sock


def masked_frame(payload: bytes, *, opcode: int = 0x1) -> bytes:
    """A client-to-server websocket frame (masked, final)."""
    mask = secrets.token_bytes(4)
    header = bytes([0x80 | opcode])
    n = len(payload)
    if n < 126:
        header += bytes([0x80 | n])
    elif n < 65536:
        header += bytes([0x80 | 126]) + n.to_bytes(2, "big")
    else:
        header += bytes([0x80 | 127]) + n.to_bytes(8, "big")
    return header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def socket_closed(sock: socket.socket, *, timeout: float) -> bool:
    """Drain ``sock`` until the server closes it (True) or ``timeout`` passes (False)."""
    sock.settimeout(0.5)

    def closed() -> bool:
        with contextlib.suppress(TimeoutError, BlockingIOError):
            try:
                while True:
                    data = sock.recv(1 << 20)
                    if not data:
                        return True
            except (ConnectionResetError, BrokenPipeError):
                return True
        return False

    try:
        polling.wait_until(closed, timeout=timeout, interval=0.1, what="the server to close the socket")
    except BaseException:
        return False
    return True
