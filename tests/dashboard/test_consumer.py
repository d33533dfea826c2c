"""The cluster websocket in process (Channels' communicator): auth, snapshot then deltas, flow
control and bad input. The same behaviours through a real daphne socket: test_socket.py."""

from __future__ import annotations

import asyncio
import gc
import json
import weakref

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth import get_user_model
from django.test import Client

from dashboard import consumers, stream
from dashboard.asgi import application
from tests.dashboard.canned import CannedSource, event, pod
from tests.dashboard.conftest import CannedHub, until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("release_db_thread")]


@database_sync_to_async
def session_cookie() -> bytes:
    """Log a user in and return the Cookie header a browser would send."""
    user, _ = get_user_model().objects.get_or_create(username="ada")
    client = Client()
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}".encode()


async def connect(cookie: bytes | None, *, origin: bytes = b"http://127.0.0.1:8000",
                  path: str = "/ws/cluster/") -> WebsocketCommunicator:
    headers = [(b"origin", origin), (b"host", b"127.0.0.1:8000")]
    if cookie:
        headers.append((b"cookie", cookie))
    return WebsocketCommunicator(application, path, headers=headers)


def pods_source(*names: str) -> CannedSource:
    source = CannedSource()
    source.script("Pod", lists=[([pod(n, str(i + 1)) for i, n in enumerate(names)], str(len(names)))])
    return source


async def ack(ws: WebsocketCommunicator, html: str) -> None:
    seq = int(html[html.rindex('data-seq="') + 10:].split('"', 1)[0])
    await ws.send_to(text_data=json.dumps({"type": "ack", "seq": seq}))


async def test_anonymous_and_foreign_origin_handshakes_are_refused(canned_hub: CannedHub) -> None:
    canned_hub(pods_source("backend-a"))
    anonymous = await connect(None)
    connected, _ = await anonymous.connect()
    assert not connected
    for origin in (b"http://evil.example", b"http://127.0.0.1:9999", b"https://127.0.0.1:8000",
                   b"http://[::1]:8000", b"http://localhost:8000", b"null"):
        foreign = await connect(await session_cookie(), origin=origin)
        connected, _ = await foreign.connect()
        assert not connected, origin


async def test_snapshot_then_deltas(canned_hub: CannedHub, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(consumers, "RESYNC_INTERVAL", 0.0)
    source = pods_source("backend-a")
    canned_hub(source)
    ws = await connect(await session_cookie())
    connected, _ = await ws.connect()
    assert connected
    snapshot = await ws.receive_from(timeout=10)
    assert 'id="nodes"' in snapshot and "backend-a" in snapshot
    await ack(ws, snapshot)
    source.add_stream("Pod", [event("ADDED", pod("backend-b", "7"))])
    delta = await ws.receive_from(timeout=10)
    assert "backend-b" in delta and 'hx-swap-oob="beforeend"' in delta and 'id="nodes"' not in delta
    await ack(ws, delta)
    source.add_stream("Pod", [event("DELETED", pod("backend-a", "8"))])
    delta = await ws.receive_from(timeout=10)
    assert "leaving" in delta
    await ack(ws, delta)
    await ws.send_to(text_data=json.dumps({"type": "resync"}))
    assert 'id="nodes"' in await ws.receive_from(timeout=10)
    await ws.disconnect()


async def test_a_gap_in_the_change_log_sends_a_snapshot(canned_hub: CannedHub) -> None:
    source = pods_source("backend-a")
    hub = canned_hub(source, history=2)
    ws = await connect(await session_cookie())
    await ws.connect()
    await ack(ws, await ws.receive_from(timeout=10))
    # Three changes applied in one go fall out of a two-entry log before the next frame is built.
    for i in range(3):
        hub._on_event("Pod", "ADDED", pod(f"backend-n{i}", str(10 + i)), 1.0)
    frame = await ws.receive_from(timeout=10)
    assert 'id="nodes" class="nodes" hx-swap-oob="true"' in frame
    whole = frame
    while "backend-n2" not in whole:
        whole += await ws.receive_from(timeout=10)
    await ws.disconnect()


@pytest.mark.parametrize("bad", ["not json", json.dumps([1]), json.dumps({"type": "ack", "seq": "x"}),
                                 json.dumps({"type": "ack", "seq": True}),
                                 json.dumps({"type": "ack", "seq": -1}),
                                 json.dumps({"type": "scale", "replicas": 99}), "x" * 5000, "",
                                 "[" * 500 + "]" * 500, '{"a":' * 300 + "1" + "}" * 300, b"\x00binary"])
async def test_bad_input_closes_with_4400(canned_hub: CannedHub, bad: str | bytes) -> None:
    canned_hub(pods_source("backend-a"))
    ws = await connect(await session_cookie())
    await ws.connect()
    await ws.receive_from(timeout=10)
    if isinstance(bad, bytes):
        await ws.send_to(bytes_data=bad)
    elif bad == "":
        await ws.send_input({"type": "websocket.receive", "text": ""})
    else:
        await ws.send_to(text_data=bad)
    assert await ws.receive_output(timeout=10) == {"type": "websocket.close", "code": 4400}


async def test_a_client_that_stops_acking_is_dropped_with_4013(canned_hub: CannedHub,
                                                               settings: object) -> None:
    settings.LBDEMO_WS_MAX_IN_FLIGHT = 2  # type: ignore[attr-defined]
    settings.LBDEMO_WS_SLOW_CLIENT_SECONDS = 1  # type: ignore[attr-defined]
    source = pods_source("backend-a")
    canned_hub(source)
    ws = await connect(await session_cookie())
    await ws.connect()
    # An ack for a sequence number never sent must not open the window.
    await ws.send_to(text_data=json.dumps({"type": "ack", "seq": 10**15}))
    frames = 0
    for i in range(6):
        source.add_stream("Pod", [event("ADDED", pod(f"backend-s{i}", str(20 + i)))])
        await asyncio.sleep(0.15)
    while True:
        output = await ws.receive_output(timeout=20)
        if output["type"] == "websocket.close":
            break
        frames += 1
    assert output["code"] == 4013
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
    confirm = await ws.receive_from(timeout=10)
    assert 'id="status"' in confirm and ">live<" in confirm and "pod-card" not in confirm
    await ack(ws, confirm)
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
    await ack(ws, await ws.receive_from(timeout=10))
    for _ in range(5):
        await ws.send_to(text_data=json.dumps({"type": "resync"}))
    await ack(ws, await ws.receive_from(timeout=10))  # the first one is honoured
    assert await ws.receive_nothing(timeout=0.5)
    await ws.disconnect()


async def test_every_change_is_rendered_once_for_all_pages(canned_hub: CannedHub,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    source = pods_source("backend-a")
    hub = canned_hub(source)
    calls = {"delta": 0}
    real = stream.FrameBuilder.delta

    def counting(self: stream.FrameBuilder, *args: object, **kwargs: object) -> list[str]:
        calls["delta"] += 1
        return real(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(stream.FrameBuilder, "delta", counting)
    cookie = await session_cookie()
    pages = [await connect(cookie) for _ in range(5)]
    for ws in pages:
        await ws.connect()
        await ack(ws, await ws.receive_from(timeout=10))
    source.add_stream("Pod", [event("ADDED", pod("backend-b", "7"))])
    frames = [await ws.receive_from(timeout=10) for ws in pages]
    assert len(set(frames)) == 1 and "backend-b" in frames[0]
    assert calls["delta"] == 1
    assert stream.get_stream(hub).frames[-1].messages[0] is not None
    for ws in pages:
        await ws.disconnect()


async def test_unknown_websocket_paths_close_with_4404(canned_hub: CannedHub) -> None:
    for cookie in (None, await session_cookie()):
        ws = await connect(cookie, path="/ws/nope/")
        connected, _ = await ws.connect()
        assert connected
        assert await ws.receive_output(timeout=10) == {"type": "websocket.close", "code": 4404}


async def test_a_message_that_failed_to_send_is_not_recorded_and_a_snapshot_follows(
        canned_hub: CannedHub, monkeypatch: pytest.MonkeyPatch) -> None:
    source = pods_source("backend-a")
    canned_hub(source)
    ws = await connect(await session_cookie())
    await ws.connect()
    await ack(ws, await ws.receive_from(timeout=10))
    real = consumers.ClusterConsumer.send
    failed: list[str] = []

    async def flaky(self: consumers.ClusterConsumer, text_data: str | None = None, **kwargs: object) -> None:
        if not failed and text_data and "backend-b" in text_data:
            failed.append(text_data)
            raise RuntimeError("tried to send WebSocket message with size 1786391 exceeding payload limit")
        await real(self, text_data=text_data, **kwargs)

    monkeypatch.setattr(consumers.ClusterConsumer, "send", flaky)
    source.add_stream("Pod", [event("ADDED", pod("backend-b", "7"))])
    frame = await ws.receive_from(timeout=10)
    assert failed and 'id="nodes" class="nodes"' in frame  # the lost delta is repaired by a snapshot
    whole = frame
    while 'data-complete="true"' not in whole:
        whole += await ws.receive_from(timeout=10)
    assert "backend-b" in whole
    await ws.disconnect()


def open_sockets(earlier: weakref.WeakSet | None = None) -> weakref.WeakSet:
    """Cluster websocket consumers alive in the process (each holds its socket's queue), but for
    ``earlier`` ones (other tests' sockets still winding down)."""
    gc.collect()
    alive = (o for o in gc.get_objects() if isinstance(o, consumers.ClusterConsumer))
    return weakref.WeakSet(o for o in alive if earlier is None or o not in earlier)


async def test_what_a_class_leaves_behind_is_bounded_and_released(canned_hub: CannedHub,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """While viewers watch, the frame ring holds at most its bound; once the last one has gone no
    socket's state survives, the heap is handed back once (not while a viewer remains), and the
    next change drops the ring and the last snapshot (nobody needs them)."""
    monkeypatch.setattr(stream, "RELEASE_AFTER", 0.05)
    released: list[int] = []
    real_release = stream.release_memory

    def release() -> None:
        released.append(len(live.subscribers))
        real_release()

    monkeypatch.setattr(stream, "release_memory", release)
    hub = canned_hub(pods_source("backend-a"))
    cookie = await session_cookie()
    earlier = open_sockets()
    viewers = []
    for _ in range(5):
        ws = await connect(cookie)
        assert (await ws.connect())[0]
        await ack(ws, await ws.receive_from(timeout=10))
        viewers.append(ws)
    live = stream.get_stream(hub)
    live.history_frames = 4
    assert len(open_sockets(earlier)) == 5 and len(live.subscribers) == 5
    first = live.index
    for i in range(8):
        hub._on_event("Pod", "ADDED", pod(f"backend-n{i}", str(10 + i)), 1.0)
        for ws in viewers:
            html = ""
            while f"backend-n{i}" not in html:
                html = await ws.receive_from(timeout=10)
                await ack(ws, html)
        assert len(live.frames) <= 4
    assert live.index - first >= 8 and len(live.frames) == 4
    for ws in viewers[:-1]:
        await ws.disconnect()
    await asyncio.sleep(0.3)
    assert released == [] and len(live.subscribers) == 1
    await viewers[-1].disconnect()
    await until(lambda: bool(released), timeout=10)
    assert released == [0] and not live.subscribers
    assert len(open_sockets(earlier)) == 0
    hub._on_event("Pod", "ADDED", pod("backend-late", "30"), 1.0)
    await until(lambda: not live.frames and live.latest is None, timeout=10)
    # Pages that come and go quickly (a class reconnecting) get one release, not one each: each
    # blocks the loop for a fraction of a second, and a handshake waiting behind a pile of them
    # was refused by daphne's 5 s timeout.
    released.clear()
    for _ in range(10):
        def page() -> None:
            pass

        live.subscribe(page)
        live.unsubscribe(page)
    await asyncio.sleep(0.5)
    assert released == [0]
