"""The watch hub against canned streams: list -> watch, 410, errors, relists that repair."""

from __future__ import annotations

import logging

import pytest
from channels.layers import get_channel_layer

from dashboard.hub import CLUSTER_GROUP, VIEW_GROUP, KindNotServed, WatchForbidden
from tests.dashboard.canned import CannedSource, event, gone, pod, present
from tests.dashboard.conftest import CannedHub, until


def names(hub: object, kind: str = "Pod") -> list[str]:
    return sorted(o["metadata"]["name"] for o in hub.cache.list(kind))  # type: ignore[attr-defined]


async def test_list_then_watch_from_the_lists_resource_version(canned_hub: CannedHub) -> None:
    source = CannedSource()
    source.script("Pod", lists=[([pod("a", "5")], "5")],
                  watches=[[event("ADDED", pod("b", "6")),
                            event("BOOKMARK", {"metadata": {"resourceVersion": "9"}}),
                            event("MODIFIED", pod("a", "10"))]])
    hub = canned_hub(source)
    assert await hub.wait_synced(10)
    await until(lambda: present(hub.cache.get("Pod", "a"))["metadata"]["resourceVersion"] == "10")
    assert names(hub) == ["a", "b"]
    assert ("watch", "Pod", "5") in source.calls
    # The stream ended cleanly: the hub re-watches from the last resourceVersion, without a relist.
    await until(lambda: ("watch", "Pod", "10") in source.calls)
    assert [c for c in source.calls if c[0] == "list"] == [("list", "Pod", "")]


async def test_410_gone_relists_and_removes_vanished_objects(canned_hub: CannedHub) -> None:
    source = CannedSource()
    source.script("Pod", lists=[([pod("a", "1"), pod("b", "2")], "2"), ([pod("a", "8"), pod("c", "9")], "9")],
                  watches=[[event("MODIFIED", pod("a", "3")), gone()]])
    hub = canned_hub(source)
    await until(lambda: names(hub) == ["a", "c"])
    assert hub.relists == 1
    assert present(hub.cache.get("Pod", "a"))["metadata"]["resourceVersion"] == "8"
    await until(lambda: ("watch", "Pod", "9") in source.calls)


async def test_connection_errors_back_off_and_relist(canned_hub: CannedHub) -> None:
    source = CannedSource()
    source.script("Pod", lists=[([pod("a", "1"), pod("b", "2")], "2"), ConnectionRefusedError("down"),
                                ([pod("b", "5")], "5")],
                  watches=[[event("ADDED", pod("x", "3")), ConnectionResetError("reset by peer")]])
    hub = canned_hub(source)
    await until(lambda: names(hub) == ["b"])
    assert [c[0] for c in source.calls].count("list") == 3


async def test_changes_are_announced_on_both_groups(canned_hub: CannedHub) -> None:
    layer = get_channel_layer()
    view, cluster = await layer.new_channel(), await layer.new_channel()
    await layer.group_add(VIEW_GROUP, view)
    await layer.group_add(CLUSTER_GROUP, cluster)
    source = CannedSource()
    source.script("Pod", lists=[([pod("a", "1")], "1")], watches=[[event("DELETED", pod("a", "2"))]])
    canned_hub(source)
    woken = await layer.receive(view)
    assert woken["type"] == "cluster.changed" and woken["seq"] >= 1
    seen: list[dict] = []
    while len(seen) < 2:
        message = await layer.receive(cluster)
        assert message["type"] == "cluster.changes"
        seen.extend(message["changes"])
    added, deleted = seen
    assert {k: added[k] for k in ("kind", "event", "name", "relist")} == {
        "kind": "Pod", "event": "ADDED", "name": "a", "relist": True}
    assert (deleted["event"], deleted["name"], deleted["relist"]) == ("DELETED", "a", False)
    assert deleted["seq"] > added["seq"]


async def test_a_relist_of_1000_objects_is_one_message_and_nothing_is_dropped(canned_hub: CannedHub) -> None:
    layer = get_channel_layer()
    cluster = await layer.new_channel()
    await layer.group_add(CLUSTER_GROUP, cluster)
    source = CannedSource()
    many = [pod(f"p-{i}", str(i + 1)) for i in range(1000)]
    source.script("Pod", lists=[([pod("a", "1")], "1"), (many, "1001")], watches=[[gone()]])
    hub = canned_hub(source)
    await until(lambda: len(hub.cache.list("Pod")) == 1000)
    messages = []
    while True:
        messages.append(await layer.receive(cluster))
        if sum(len(m["changes"]) for m in messages) == 1 + 1000 + 1:  # ADDED a, 1000 ADDED, DELETED a
            break
    assert len(messages) <= 3, "one coalesced message per batch, not one per object"


async def test_lists_are_paginated_and_relists_come_from_the_watch_cache(canned_hub: CannedHub) -> None:
    source = CannedSource()
    source.script("Pod", lists=[([pod("a", "1")], "1"), ([pod("a", "1")], "1"), ([pod("a", "3")], "3")],
                  watches=[ConnectionResetError("reset"), [gone()]])
    canned_hub(source)
    await until(lambda: [c for c in source.calls if c[0] == "list"][:3] == [
        ("list", "Pod", ""),   # first list: a consistent read
        ("list", "Pod", "0"),  # relist after a failure: served from the watch cache
        ("list", "Pod", ""),   # after 410 Gone the cache is too old: consistent again
    ])


async def test_a_silent_api_server_is_noticed_within_seconds(canned_hub: CannedHub) -> None:
    import time

    from dashboard.hub import api_known_unreachable

    source = CannedSource()
    source.script("Pod", lists=[([pod("a", "1")], "1")])
    hub = canned_hub(source, quiet_seconds=1.0)
    assert await hub.wait_synced(10)
    await until(lambda: ("probe", "", "") in source.calls)  # silence is probed, not trusted
    assert hub.healthy and not api_known_unreachable()
    source.probe_error = TimeoutError("read timed out")
    stalled = time.monotonic()
    await until(lambda: not hub.healthy, timeout=15)
    print(f"stall noticed after {time.monotonic() - stalled:.1f} s")
    assert api_known_unreachable()
    source.probe_error = None
    await until(lambda: hub.healthy, timeout=15)
    assert not api_known_unreachable()


async def test_forbidden_kind_counts_as_synced_and_shows_nothing(canned_hub: CannedHub) -> None:
    source = CannedSource()
    source.script("Pod", lists=[([pod("a", "1")], "1")])
    source.script("Node", lists=[WatchForbidden("nodes is forbidden")])
    hub = canned_hub(source, kinds=("Pod", "Node"), forbidden_retry=30)
    assert await hub.wait_synced(10)
    assert hub.cache.list("Node") == []


async def test_cluster_without_endpointslices_falls_back_to_endpoints(canned_hub: CannedHub) -> None:
    source = CannedSource()
    source.script("EndpointSlice", lists=[KindNotServed("404")])
    endpoints = {"metadata": {"name": "backend-service", "resourceVersion": "4"}}
    source.script("Endpoints", lists=[([endpoints], "4")])
    hub = canned_hub(source, kinds=("EndpointSlice",))
    assert await hub.wait_synced(10)
    assert names(hub, "Endpoints") == ["backend-service"]


async def test_a_crashing_informer_is_logged_and_restarted(canned_hub: CannedHub,
                                                           caplog: pytest.LogCaptureFixture) -> None:
    source = CannedSource()
    source.script("Pod", lists=[KindNotServed("pods?"), ([pod("a", "1")], "1")])
    with caplog.at_level(logging.ERROR, logger="dashboard.hub"):
        hub = canned_hub(source)
        await until(lambda: names(hub) == ["a"])
    assert "crashed; restarting" in caplog.text
