"""Fixtures for the ingress proxy tests: the real proxy on a loopback port, real backend_pod processes.

`ingress` runs `IngressProxy` on its own event loop in a thread, as the controller process
runs it; a test hands it a route table and endpoint lists with `IngressHarness.update` (what
the controller derives from Ingresses and EndpointSlices) and talks to it over TCP.

`raw_pod` is a pod that misbehaves on purpose, for what the real backend never does (close a
pooled connection instead of answering, stream a chunked or unframed body, send a big body);
it answers each request with what a test's handler function returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import Callable, Iterator

import pytest

from lab.launcher import free_port
from sandbox.ingress_proxy import IngressProxy
from sandbox.ingress_rules import Backend, RouteTable, Target
from tests.backend_pod.conftest import Backend as Pod
from tests.backend_pod.conftest import start_backend  # noqa: F401 - a fixture used here

BACKEND = Backend("default", "backend-service", 80)


class IngressHarness:
    """The proxy on 127.0.0.1:``port``, updated from the test thread."""

    def __init__(self) -> None:
        self.port = free_port("127.0.0.1")
        self.loop = asyncio.new_event_loop()
        self.proxy = IngressProxy()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.tasks: list[asyncio.Task] = []
        self.server = self.call(self.proxy.listen("127.0.0.1", self.port))

    def call(self, coro):
        """Run a coroutine on the proxy's loop and return its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=10)

    def update(self, routes: RouteTable, endpoints: dict[Backend, list[tuple[str, int, str]]]) -> None:
        """Swap the proxy's table, as the controller does on a cache change."""

        async def apply() -> None:
            self.proxy.update(routes, endpoints)

        self.call(apply())

    def serve(self, pods: list[Pod], backend: Backend = BACKEND) -> None:
        """Route everything to ``pods``."""
        self.update(RouteTable(default=Target(backend, "default/test", "")), {backend: endpoints(pods)})

    def sweep_every(self, seconds: float) -> None:
        """Run the proxy's timeout sweeper (as the controller does), every ``seconds``."""

        async def sweeper() -> None:
            while True:
                await asyncio.sleep(seconds)
                self.proxy.sweep()

        async def spawn() -> None:
            self.tasks.append(asyncio.get_running_loop().create_task(sweeper()))

        self.call(spawn())

    def close(self) -> None:
        """Stop listening, drop connections, stop the loop."""

        async def stop() -> None:
            for task in self.tasks:
                task.cancel()
            self.server.close()
            self.proxy.close()

        self.call(stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()


def endpoints(pods: list[Pod]) -> list[tuple[str, int, str]]:
    """Endpoint tuples for backend processes (named backend-test-N by the fixture)."""
    return [(p.host, p.port, f"backend-test-{i}") for i, p in enumerate(pods)]


@pytest.fixture
def ingress() -> Iterator[IngressHarness]:
    """A running ingress proxy with an empty table."""
    harness = IngressHarness()
    yield harness
    harness.close()


class RawPod:
    """A TCP server on loopback; ``handler(conn_number, request_number, head, sock)`` answers each
    request head (it may send anything or close the socket) and returns False to close
    the connection. Requests must have no body."""

    def __init__(self, handler: Callable[[int, int, bytes, socket.socket], bool]) -> None:
        self.handler = handler
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.connections = 0
        self.threads: list[threading.Thread] = []
        self.socks: list[socket.socket] = []
        self.accepting = threading.Thread(target=self._accept, daemon=True)
        self.accepting.start()

    def endpoint(self, name: str = "raw-pod") -> tuple[str, int, str]:
        """This pod as an endpoint tuple."""
        return ("127.0.0.1", self.port, name)

    def _accept(self) -> None:
        while True:
            try:
                sock, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            self.socks.append(sock)
            thread = threading.Thread(target=self._serve, args=(self.connections, sock), daemon=True)
            self.threads.append(thread)
            thread.start()

    def _serve(self, number: int, sock: socket.socket) -> None:
        buf = b""
        requests = 0
        with contextlib.suppress(OSError), sock:
            while True:
                while b"\r\n\r\n" not in buf:
                    chunk = sock.recv(65536)
                    if not chunk:
                        return
                    buf += chunk
                head, _, buf = buf.partition(b"\r\n\r\n")
                requests += 1
                if not self.handler(number, requests, head, sock):
                    return

    def close(self) -> None:
        """Stop listening and close every connection (shutdown wakes the threads blocked on them)."""
        for sock in [self.listener, *self.socks]:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        for thread in [self.accepting, *self.threads]:
            thread.join(timeout=10)


@pytest.fixture
def raw_pod() -> Iterator[Callable[[Callable[[int, int, bytes, socket.socket], bool]], RawPod]]:
    """Start `RawPod`s; all are closed after the test."""
    started: list[RawPod] = []

    def start(handler: Callable[[int, int, bytes, socket.socket], bool]) -> RawPod:
        pod = RawPod(handler)
        started.append(pod)
        return pod

    yield start
    for pod in started:
        pod.close()
