"""Fixtures for the dashboard's tests: a fresh channel layer and hub per test."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterator

import pytest
from asgiref.sync import sync_to_async
from channels.layers import channel_layers
from django.db import connections

from dashboard import hub as hub_module
from tests.dashboard.canned import CannedSource


@pytest.fixture(autouse=True)
def fresh_channel_layer() -> Iterator[None]:
    """The in-memory channel layer binds queues to a loop: give every test its own layer."""
    channel_layers.backends.clear()
    yield
    channel_layers.backends.clear()


def _drop_connections() -> None:
    """Forget this thread's DB connections (closing an in-memory test DB's would be a no-op)."""
    for alias in list(connections):
        connections[alias].close()
        del connections[alias]


@pytest.fixture
async def release_db_thread() -> AsyncIterator[None]:
    """After an async test that used the DB through consumers, drop the connection asgiref's
    shared sync thread kept. Channels checks old connections on every message in that thread,
    and a later test without database access would fail there on our leftover connection."""
    yield
    await sync_to_async(_drop_connections)()


async def until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    """Wait on the loop until predicate() holds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.01)


CannedHub = Callable[..., hub_module.Hub]  # the canned_hub fixture: make(source, *, kinds, install, ...)


@pytest.fixture
async def canned_hub() -> AsyncIterator[CannedHub]:
    """Build hubs on canned sources; they become the process hub and are stopped after the test."""
    made: list[hub_module.Hub] = []

    def make(source: CannedSource, *, kinds: tuple[str, ...] = ("Pod",), install: bool = True,
             **kwargs: object) -> hub_module.Hub:
        hub = hub_module.Hub(source, loop=asyncio.get_running_loop(), kinds=kinds, **kwargs)  # type: ignore[arg-type]
        if install:
            hub_module.install_hub(hub)
        hub.start()
        made.append(hub)
        return hub

    yield make
    for hub in made:
        hub.stop()
    hub_module.install_hub(None)
