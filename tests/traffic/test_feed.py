"""Traffic on the watch hub: a run during a relist of 1,000 objects gets every endpoint that
joined or left — the hub's feed hands views to the run directly, and the lbdemo.cluster group
gets one coalesced message per batch, so nothing is dropped by the channel layer's bounded
queues (100 messages per channel)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from channels.layers import channel_layers, get_channel_layer

from dashboard.hub import CLUSTER_GROUP, Hub
from dashboard.traffic.cluster import feed_for
from dashboard.traffic.engine import LoadSpec
from dashboard.traffic.runs import RunRegistry
from tests.dashboard.canned import CannedSource, gone, pod
from tests.traffic.helpers import own_loop, resolved_for


def endpoint_slice(rv: str, *names: str) -> dict:
    return {
        "metadata": {
            "name": "backend-service-x",
            "resourceVersion": rv,
            "labels": {"kubernetes.io/service-name": "backend-service"},
        },
        "endpoints": [
            {
                "addresses": [f"127.244.0.{i}"],
                "conditions": {"ready": True},
                "targetRef": {"kind": "Pod", "name": n},
            }
            for i, n in enumerate(names, 1)
        ],
    }


SERVICE: dict[str, Any] = {
    "metadata": {"name": "backend-service", "resourceVersion": "1"},
    "spec": {"selector": {"app": "backend"}, "ports": [{"port": 80}]},
}
DEPLOYMENT: dict[str, Any] = {
    "metadata": {
        "name": "backend",
        "resourceVersion": "1",
        "annotations": {"deployment.kubernetes.io/revision": "1"},
    },
    "spec": {"replicas": 3, "template": {"metadata": {"labels": {"app": "backend"}}}},
}


async def until(predicate: Callable[[], bool], timeout: float = 30.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        assert loop.time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.02)


@own_loop
async def test_a_relist_of_1000_objects_during_a_run_drops_no_endpoint_change(three_pods) -> None:
    channel_layers.backends.clear()
    layer = get_channel_layer()
    cluster = await layer.new_channel()
    await layer.group_add(CLUSTER_GROUP, cluster)
    source = CannedSource()
    scaled = {
        **DEPLOYMENT,
        "metadata": {**DEPLOYMENT["metadata"], "resourceVersion": "1003"},
        "spec": {**DEPLOYMENT["spec"], "replicas": 1000},
    }
    source.script(
        "Pod",
        lists=[
            ([pod("pod-a", "1"), pod("pod-b", "1"), pod("pod-c", "1")], "1"),
            ([pod(f"backend-{i}", str(i + 2)) for i in range(1000)], "1002"),
        ],
    )
    source.script(
        "EndpointSlice",
        lists=[
            ([endpoint_slice("1", "pod-a", "pod-b", "pod-c")], "1"),
            ([endpoint_slice("1003", "pod-b", "pod-c", "pod-d")], "1003"),
        ],
    )
    source.script("Service", lists=[([SERVICE], "1")])
    source.script("Deployment", lists=[([DEPLOYMENT], "1"), ([scaled], "1003")])
    hub = Hub(
        source, loop=asyncio.get_running_loop(), kinds=("Pod", "EndpointSlice", "Service", "Deployment")
    )
    hub.start()
    registry = RunRegistry()
    try:
        assert await hub.wait_synced(10)
        run = registry.start(
            owner="user:7", resolved=resolved_for(three_pods.url), spec=LoadSpec(conns=2, rps=50, duration=30)
        )
        feed_for(hub).follow(run)
        await until(lambda: run.stats.requests >= 10 and set(run.stats.rows) >= {"pod-a", "pod-b", "pod-c"})
        while True:  # drain the start-up messages
            try:
                await asyncio.wait_for(layer.receive(cluster), 0.5)
            except TimeoutError:
                break
        for kind in ("Pod", "EndpointSlice", "Deployment"):  # history expired: relist everything
            source.add_stream(kind, [gone()])
        await until(lambda: len(hub.cache.list("Pod")) == 1000)
        await until(
            lambda: (
                {"pod-d added", "pod-a gone", "backend scaled 3→1000"}
                <= {m["label"] for m in run.stats.markers}
            )
        )
        assert run.stats.rows["pod-d"].state == "ready" and run.stats.rows["pod-a"].state == "gone"
        messages = []
        while True:
            try:
                messages.append(await asyncio.wait_for(layer.receive(cluster), 1.0))
            except TimeoutError:
                break
        changes = sum(len(m["changes"]) for m in messages)
        print(f"relist: {changes} changes reached lbdemo.cluster in {len(messages)} messages")
        assert changes >= 1003 and len(messages) <= 10
    finally:
        registry.stop_all()
        hub.stop()
        channel_layers.backends.clear()
