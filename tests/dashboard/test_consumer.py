"""The cluster websocket: auth and origin checks, snapshot then deltas, flow control, bad input."""

from __future__ import annotations

import asyncio
import json

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth import get_user_model
from django.test import Client

from dashboard import consumers
from dashboard.asgi import application
from dashboard.consumers import ClusterConsumer
from tests.dashboard.canned import CannedSource, event, pod
from tests.dashboard.conftest import CannedHub

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("release_db_thread")]


@database_sync_to_async
def session_cookie() -> bytes:
    """Log a user in and return the Cookie header a browser would send."""
    user, _ = get_user_model().objects.get_or_create(username="ada")
    client = Client()
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}".encode()


async def connect(cookie: bytes | None, *, origin: bytes = b"http://127.0.0.1:8000") -> WebsocketCommunicator:
    headers = [(b"origin", origin), (b"host", b"127.0.0.1:8000")]
    if cookie:
        headers.append((b"cookie", cookie))
    return WebsocketCommunicator(application, "/ws/cluster/", headers=headers)


def pods_source(*names: str) -> CannedSource:
    source = CannedSource()
    source.script("Pod", lists=[([pod(n, str(i + 1)) for i, n in enumerate(names)], str(len(names)))])
    return source


async def test_anonymous_and_foreign_origin_handshakes_are_refused(canned_hub: CannedHub) -> None:
    canned_hub(pods_source("backend-a"))
    anonymous = await connect(None)
    connected, _ = await anonymous.connect()
    assert not connected
    foreign = await connect(await session_cookie(), origin=b"http://evil.example")
    connected, _ = await foreign.connect()
    assert not connected


async def test_snapshot_then_deltas(canned_hub: CannedHub, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(consumers, "RESYNC_INTERVAL", 0.0)
    source = pods_source("backend-a")
    canned_hub(source)
    ws = await connect(await session_cookie())
    connected, _ = await ws.connect()
    assert connected
    snapshot = await ws.receive_from(timeout=10)
    assert 'id="nodes"' in snapshot and "backend-a" in snapshot
    await ws.send_to(text_data=json.dumps({"type": "ack", "seq": 1}))
    source.add_stream("Pod", [event("ADDED", pod("backend-b", "7"))])
    delta = await ws.receive_from(timeout=10)
    assert "backend-b" in delta and 'hx-swap-oob="beforeend"' in delta and 'id="nodes"' not in delta
    source.add_stream("Pod", [event("DELETED", pod("backend-a", "8"))])
    delta = await ws.receive_from(timeout=10)
    assert "leaving" in delta
    await ws.send_to(text_data=json.dumps({"type": "resync"}))
    assert 'id="nodes"' in await ws.receive_from(timeout=10)
    await ws.disconnect()


async def test_a_gap_in_the_change_log_sends_a_snapshot(canned_hub: CannedHub) -> None:
    source = pods_source("backend-a")
    hub = canned_hub(source, history=2)
    ws = await connect(await session_cookie())
    await ws.connect()
    await ws.receive_from(timeout=10)
    # Three changes applied in one go fall out of a two-entry log before the next frame is built.
    for i in range(3):
        hub._on_event("Pod", "ADDED", pod(f"backend-n{i}", str(10 + i)), 1.0)
    frame = await ws.receive_from(timeout=10)
    assert 'id="nodes" class="nodes" hx-swap-oob="true"' in frame and "backend-n2" in frame
    await ws.disconnect()


@pytest.mark.parametrize("bad", ["not json", json.dumps([1]), json.dumps({"type": "ack", "seq": "x"}),
                                 json.dumps({"type": "scale", "replicas": 99}), "x" * 5000])
async def test_bad_input_closes_with_4400(canned_hub: CannedHub, bad: str) -> None:
    canned_hub(pods_source("backend-a"))
    ws = await connect(await session_cookie())
    await ws.connect()
    await ws.receive_from(timeout=10)
    await ws.send_to(text_data=bad)
    assert await ws.receive_output(timeout=10) == {"type": "websocket.close", "code": 4400}


async def test_a_client_that_stops_reading_is_dropped(canned_hub: CannedHub,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ClusterConsumer, "max_in_flight", 2)
    monkeypatch.setattr(ClusterConsumer, "slow_client_timeout", 0.5)
    source = pods_source("backend-a")
    canned_hub(source)
    ws = await connect(await session_cookie())
    await ws.connect()
    frames = 0
    for i in range(6):
        source.add_stream("Pod", [event("ADDED", pod(f"backend-s{i}", str(20 + i)))])
        await asyncio.sleep(0.15)
    while True:
        output = await ws.receive_output(timeout=10)
        if output["type"] == "websocket.close":
            break
        frames += 1
    assert output["code"] == 1013
    assert frames == 2


async def test_a_page_rendered_from_the_current_state_gets_no_resend(canned_hub: CannedHub) -> None:
    source = pods_source("backend-a")
    hub = canned_hub(source)
    assert await hub.wait_synced(10)
    cookie = await session_cookie()
    headers = [(b"origin", b"http://127.0.0.1:8000"), (b"host", b"127.0.0.1:8000"), (b"cookie", cookie)]
    current = f"/ws/cluster/?since={hub.epoch}-{hub.cache.seq}"
    ws = WebsocketCommunicator(application, current, headers=headers)
    connected, _ = await ws.connect()
    assert connected
    assert await ws.receive_nothing(timeout=0.5)
    source.add_stream("Pod", [event("ADDED", pod("backend-b", "7"))])
    delta = await ws.receive_from(timeout=10)
    assert "backend-b" in delta and 'id="nodes"' not in delta
    await ws.disconnect()
    other_process = f"/ws/cluster/?since=otherprocess-{hub.cache.seq}"
    stale = WebsocketCommunicator(application, other_process, headers=headers)
    await stale.connect()
    assert 'id="nodes"' in await stale.receive_from(timeout=10)
    await stale.disconnect()


async def test_resync_requests_are_rate_limited(canned_hub: CannedHub,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(consumers, "RESYNC_INTERVAL", 600.0)
    canned_hub(pods_source("backend-a"))
    ws = await connect(await session_cookie())
    await ws.connect()
    await ws.receive_from(timeout=10)
    for _ in range(5):
        await ws.send_to(text_data=json.dumps({"type": "resync"}))
    assert await ws.receive_nothing(timeout=0.5)
    await ws.disconnect()
