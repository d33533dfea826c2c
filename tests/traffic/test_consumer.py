"""The traffic websocket: authenticated only; a snapshot, then frames while the run goes."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest
from channels.testing import WebsocketCommunicator

from dashboard.traffic import consumers
from dashboard.traffic.cluster import ClusterView
from dashboard.traffic.consumers import TrafficConsumer
from dashboard.traffic.engine import LoadSpec
from dashboard.traffic.runs import RunRegistry
from tests.traffic.helpers import own_loop, resolved_for

# Channels closes stale database connections around every message it dispatches.
pytestmark = pytest.mark.django_db(transaction=True)
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
    run = await asyncio.to_thread(
        registry.start,
        owner="user:7",
        resolved=resolved_for(three_pods.url),
        spec=LoadSpec(mode="new-conn", conns=3, rps=60, duration=1.5),
        namespace="default",
        poll=lambda **_: view,
    )
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
    run = await asyncio.to_thread(
        registry.start,
        owner="user:7",
        resolved=resolved_for(three_pods.url, service=None),
        spec=LoadSpec(conns=1, rps=20, duration=0.5),
        namespace="default",
    )
    assert (await comm.receive_json_from(timeout=10))["type"] == "snapshot"
    await asyncio.to_thread(run.join, 30)
    await comm.send_json_to({"type": "resync"})
    while (message := await comm.receive_json_from(timeout=10))["type"] != "snapshot":
        assert message["type"] == "frames"
    assert message["run"]["state"] == "finished"
    await comm.disconnect()


@own_loop
async def test_cluster_events_from_the_watch_hub_make_the_run_poll_at_once(
    three_pods, registry: RunRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    from channels.layers import get_channel_layer

    from dashboard.hub import CLUSTER_GROUP
    from dashboard.traffic import runs

    monkeypatch.setattr(runs, "POLL_INTERVAL", 60.0)  # without a poke, no second poll
    polls: list[float] = []

    def poll(**_: object) -> ClusterView:
        polls.append(1.0)
        return ClusterView(endpoints={"pod-a": "ready"}, deployments={})

    comm = communicator(LEARNER)
    await comm.connect()
    assert (await comm.receive_json_from(timeout=10))["type"] == "idle"
    run = await asyncio.to_thread(
        registry.start,
        owner="user:7",
        resolved=resolved_for(three_pods.url),
        spec=LoadSpec(conns=1, rps=20, duration=30),
        namespace="default",
        poll=poll,
    )
    assert (await comm.receive_json_from(timeout=10))["type"] == "snapshot"
    while not polls:
        await asyncio.sleep(0.05)
    await get_channel_layer().group_send(
        CLUSTER_GROUP, {"type": "cluster.event", "kind": "Pod", "event": "ADDED", "name": "x", "seq": 1}
    )
    for _ in range(600):  # up to 30 s; without the poke the next poll is a minute away
        if len(polls) >= 2:
            break
        await asyncio.sleep(0.05)
    assert len(polls) >= 2
    run.stop()
    await comm.disconnect()
