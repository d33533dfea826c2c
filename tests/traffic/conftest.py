"""Fixtures for the traffic lab: real backend_pod processes on loopback behind a tiny
per-connection random balancer (what a Service proxy does), for engine and CLI tests that do
not need a whole cluster."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest

from lab.launcher import BASE_DIR, free_port, stop_process, wait_for_port


@dataclass
class Backend:
    """One running `python -m backend_pod`."""

    name: str
    port: int
    proc: subprocess.Popen

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"


@dataclass
class Balancer:
    """A TCP proxy choosing a random backend per new connection, like kube-proxy in iptables mode."""

    backends: list[Backend]
    port: int = 0
    loop: asyncio.AbstractEventLoop = field(default_factory=asyncio.new_event_loop)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except OSError:
            pass
        finally:
            writer.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        backend = random.choice(self.backends)
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", backend.port)
        except OSError:
            writer.close()
            return
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))

    def start(self) -> None:
        ready = threading.Event()

        async def serve() -> None:
            server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
            self.port = server.sockets[0].getsockname()[1]
            ready.set()
            async with server:
                await server.serve_forever()

        def main() -> None:
            with contextlib.suppress(asyncio.CancelledError):
                self.loop.run_until_complete(serve())
            self.loop.close()

        self._thread = threading.Thread(target=main, daemon=True)
        self._thread.start()
        assert ready.wait(10)

    def stop(self) -> None:
        def cancel_all() -> None:
            for task in asyncio.all_tasks(self.loop):
                task.cancel()

        self.loop.call_soon_threadsafe(cancel_all)
        self._thread.join(10)


def start_backend(name: str, **env: str) -> Backend:
    """Start one backend_pod on a free loopback port and wait until it listens."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "backend_pod"],
        cwd=BASE_DIR,
        env={
            **os.environ,
            "PORT": str(port),
            "BIND_ADDRESS": "127.0.0.1",
            "POD_NAME": name,
            "POD_IP": "127.0.0.1",
            "SHUTDOWN_MODE": "abrupt",
            **env,
        },
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    wait_for_port("127.0.0.1", port, proc=proc, timeout=30, what=f"backend_pod {name}")
    return Backend(name=name, port=port, proc=proc)


@pytest.fixture(scope="module")
def three_pods() -> Iterator[Balancer]:
    """Three backend_pods (pod-a, pod-b, pod-c) behind a per-connection random balancer."""
    backends = [start_backend(f"pod-{letter}") for letter in "abc"]
    balancer = Balancer(backends)
    balancer.start()
    yield balancer
    balancer.stop()
    for backend in backends:
        stop_process(backend.proc, grace=5)


@pytest.fixture
def backend_factory() -> Iterator[Callable[..., Backend]]:
    """Start backend_pods with chosen settings for one test; all stop when it ends."""
    started: list[Backend] = []

    def make(name: str, **env: str) -> Backend:
        backend = start_backend(name, **env)
        started.append(backend)
        return backend

    yield make
    for backend in started:
        stop_process(backend.proc, grace=5)
