"""The traffic websocket: authenticated only; a snapshot, then frames pushed as the run cuts
them (no polling); bad frames are answered or closed with 4400, never 1011."""

from __future__ import annotations

import asyncio
import os
from types import SimpleNamespace

import pytest
from channels.testing import WebsocketCommunicator

from dashboard.traffic import consumers
from dashboard.traffic.cluster import ClusterView
from dashboard.traffic.consumers import TrafficConsumer, parse_client_frame
from dashboard.traffic.engine import LoadSpec
from dashboard.traffic.runs import RunRegistry
from tests.traffic.helpers import own_loop, resolved_for

# Channels closes stale database connections around every message it dispatches.
pytestmark = pytest.mark.django_db(transaction=True)
FUZZ_FRAMES = int(os.environ.get("FUZZ_FRAMES", "2000"))
LEARNER = SimpleNamespace(pk=7, is_authenticated=True)


@pytest.fixture
def registry(monkeypatch: pytest.MonkeyPatch):
    fresh = RunRegistry()
    monkeypatch.setattr(consumers, "registry", fresh)
    yield fresh
    fresh.stop_all()


def communicator(user: object) -> WebsocketCommunicator:
    comm = WebsocketCommunicator(TrafficConsumer.as_asgi(), "/ws/traffic/")
    comm.scope["user"] = user
    return comm


@own_loop
async def test_anonymous_handshake_is_refused(registry: RunRegistry) -> None:
    comm = communicator(SimpleNamespace(pk=None, is_authenticated=False))
    connected, code = await comm.connect()
    assert not connected and code == 4401


@own_loop
async def test_snapshot_then_frames_until_the_run_ends(three_pods, registry: RunRegistry) -> None:
    comm = communicator(LEARNER)
    connected, _ = await comm.connect()
    assert connected
    assert await comm.receive_json_from(timeout=10) == {"type": "idle"}
    view = ClusterView(endpoints={"pod-a": "ready", "pod-b": "ready", "pod-c": "ready"}, deployments={})
    run = registry.start(
        owner="user:7",
        resolved=resolved_for(three_pods.url),
        spec=LoadSpec(mode="new-conn", conns=3, rps=60, duration=1.5),
    )
    run.cluster_update(view)
    snapshot = await comm.receive_json_from(timeout=10)
    assert snapshot["type"] == "snapshot" and snapshot["run"]["id"] == run.id
    seq = snapshot["seq"]
    last = snapshot
    while last["run"]["state"] == "running":
        message = await comm.receive_json_from(timeout=10)
        assert message["type"] == "frames"
        for frame in message["frames"]:
            assert frame["seq"] == seq + 1
            seq = frame["seq"]
            last = frame
    summary = last["summary"]
    assert summary["requests"] == run.stats.requests > 0
    assert {row["pod"] for row in summary["pods"] if row["requests"]} == {"pod-a", "pod-b", "pod-c"}
    await comm.disconnect()


@own_loop
async def test_unknown_frames_get_an_error_and_resync_gets_a_snapshot(three_pods, registry) -> None:
    comm = communicator(LEARNER)
    await comm.connect()
    assert (await comm.receive_json_from(timeout=10))["type"] == "idle"
    await comm.send_to(text_data="{not json")
    assert (await comm.receive_json_from(timeout=10))["type"] == "error"
    await comm.send_json_to({"type": "start", "url": "http://evil/"})
    assert (await comm.receive_json_from(timeout=10))["type"] == "error"
    assert registry.active_runs() == []
    run = registry.start(
        owner="user:7",
        resolved=resolved_for(three_pods.url, service=None),
        spec=LoadSpec(conns=1, rps=20, duration=0.5),
    )
    assert (await comm.receive_json_from(timeout=10))["type"] == "snapshot"
    await asyncio.to_thread(run.join, 30)
    await comm.send_json_to({"type": "resync"})
    while (message := await comm.receive_json_from(timeout=10))["type"] != "snapshot":
        assert message["type"] == "frames"
    assert message["run"]["state"] == "finished"
    await comm.disconnect()


@own_loop
async def test_bad_frames_get_an_error_or_a_4400_close_never_1011(registry: RunRegistry) -> None:
    """2,000 fuzzed frames (binary, empty, malformed and deeply nested JSON, junk of every
    length): each one is answered with an error message or closes the socket with 4400."""
    import random

    rng = random.Random(10)
    counts = {"error reply": 0, "4400 close": 0, "other": 0}
    depth = 100_000

    def frame(i: int) -> dict:
        kind = i % 8
        if kind == 0:
            return {"bytes_data": rng.randbytes(rng.randint(0, 64))}
        if kind == 1:
            return {"text_data": ""}
        if kind == 2:
            return {"text_data": "[" * 500 + "]" * 500}  # nested, within the size limit
        if kind == 3:
            return {"text_data": "[" * depth}  # nested far beyond it
        if kind == 4:
            return {"text_data": '{"type": ' * 100 + "1" + "}" * 100}
        if kind == 5:
            return {"text_data": "".join(chr(rng.randint(1, 0x2FFF)) for _ in range(rng.randint(1, 40)))}
        if kind == 6:
            return {"text_data": '{"type": "resync", "x": "' + "a" * 2000 + '"}'}
        return {"text_data": rng.choice(['"resync"', "null", "[]", '{"type": 1}', '{"type": "start"}', "{"])}

    comm = None
    for i in range(FUZZ_FRAMES):
        if comm is None:
            comm = communicator(LEARNER)
            connected, _ = await comm.connect()
            assert connected
            assert (await comm.receive_json_from(timeout=10))["type"] == "idle"
        ((field, value),) = frame(i).items()
        await comm.send_input(
            {"type": "websocket.receive", "text" if field == "text_data" else "bytes": value}
        )
        answer = await comm.receive_output(timeout=10)
        if answer["type"] == "websocket.send" and '"type":"error"' in answer.get("text", ""):
            counts["error reply"] += 1
        elif answer["type"] == "websocket.close" and answer.get("code") == 4400:
            counts["4400 close"] += 1
            await comm.disconnect()
            comm = None
        else:
            counts["other"] += 1
    print(f"{FUZZ_FRAMES} fuzzed frames: {counts}")
    assert counts["other"] == 0
    assert counts["4400 close"] >= FUZZ_FRAMES // 4 and counts["error reply"] >= FUZZ_FRAMES // 2
    assert parse_client_frame("[" * depth) is None


@own_loop
async def test_frames_are_pushed_as_the_run_cuts_them_without_polling(
    three_pods, registry: RunRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dashboard.traffic import runs

    monkeypatch.setattr(runs, "FRAME_INTERVAL", 0.05)
    comm = communicator(LEARNER)
    await comm.connect()
    assert (await comm.receive_json_from(timeout=10))["type"] == "idle"
    run = registry.start(
        owner="user:7", resolved=resolved_for(three_pods.url), spec=LoadSpec(conns=1, rps=20, duration=30)
    )
    try:
        assert (await comm.receive_json_from(timeout=10))["type"] == "snapshot"
        # Nothing wakes the socket but the run: stop the ticker's frames and the socket goes quiet.
        received = [await comm.receive_json_from(timeout=10) for _ in range(5)]
        assert all(m["type"] == "frames" for m in received)
        run.stop()
        await asyncio.to_thread(run.join, 30)
        while (await comm.receive_json_from(timeout=10))["frames"][-1]["run"]["state"] == "running":
            pass
        assert await comm.receive_nothing(timeout=0.5)
    finally:
        await comm.disconnect()
