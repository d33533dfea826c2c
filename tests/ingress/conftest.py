"""Fixtures for the ingress proxy tests: the real proxy on a loopback port, real backend_pod processes.

`ingress` runs `IngressProxy` on its own event loop in a thread, as the controller process
runs it; a test hands it a route table and endpoint lists with `IngressHarness.update` (what
the controller derives from Ingresses and EndpointSlices) and talks to it over TCP.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

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

    def close(self) -> None:
        """Stop listening, drop connections, stop the loop."""

        async def stop() -> None:
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
