"""The watch hub against canned streams: list -> watch, 410, errors, relists that repair."""

from __future__ import annotations

import logging

import pytest
from channels.layers import get_channel_layer

from dashboard.hub import CLUSTER_GROUP, VIEW_GROUP, KindNotServed, WatchForbidden
from tests.dashboard.canned import CannedSource, event, gone, pod
from tests.dashboard.conftest import until


def names(hub: object, kind: str = "Pod") -> list[str]:
    return sorted(o["metadata"]["name"] for o in hub.cache.list(kind))  # type: ignore[attr-defined]


async def test_list_then_watch_from_the_lists_resource_version(canned_hub: object) -> None:
    source = CannedSource()
    source.script("Pod", lists=[([pod("a", "5")], "5")],
                  watches=[[event("ADDED", pod("b", "6")),
                            event("BOOKMARK", {"metadata": {"resourceVersion": "9"}}),
                            event("MODIFIED", pod("a", "10"))]])
    hub = canned_hub(source)
    assert await hub.wait_synced(10)
    await until(lambda: hub.cache.get("Pod", "a")["metadata"]["resourceVersion"] == "10")
    assert names(hub) == ["a", "b"]
    assert ("watch", "Pod", "5") in source.calls
    # The stream ended cleanly: the hub re-watches from the last resourceVersion, without a relist.
    await until(lambda: ("watch", "Pod", "10") in source.calls)
    assert [c for c in source.calls if c[0] == "list"] == [("list", "Pod", "")]


async def test_410_gone_relists_and_removes_vanished_objects(canned_hub: object) -> None:
    source = CannedSource()
    source.script("Pod", lists=[([pod("a", "1"), pod("b", "2")], "2"), ([pod("a", "8"), pod("c", "9")], "9")],
                  watches=[[event("MODIFIED", pod("a", "3")), gone()]])
    hub = canned_hub(source)
    await until(lambda: names(hub) == ["a", "c"])
    assert hub.relists == 1
    assert hub.cache.get("Pod", "a")["metadata"]["resourceVersion"] == "8"
    await until(lambda: ("watch", "Pod", "9") in source.calls)


async def test_connection_errors_back_off_and_relist(canned_hub: object) -> None:
    source = CannedSource()
    source.script("Pod", lists=[([pod("a", "1"), pod("b", "2")], "2"), ConnectionRefusedError("down"),
                                ([pod("b", "5")], "5")],
                  watches=[[event("ADDED", pod("x", "3")), ConnectionResetError("reset by peer")]])
    hub = canned_hub(source)
    await until(lambda: names(hub) == ["b"])
    assert [c[0] for c in source.calls].count("list") == 3


async def test_changes_are_announced_on_both_groups(canned_hub: object) -> None:
    layer = get_channel_layer()
    view, cluster = await layer.new_channel(), await layer.new_channel()
    await layer.group_add(VIEW_GROUP, view)
    await layer.group_add(CLUSTER_GROUP, cluster)
    source = CannedSource()
    source.script("Pod", lists=[([pod("a", "1")], "1")], watches=[[event("DELETED", pod("a", "2"))]])
    canned_hub(source)
    woken = await layer.receive(view)
    assert woken["type"] == "cluster.changed" and woken["seq"] >= 1
    added = await layer.receive(cluster)
    assert {k: added[k] for k in ("type", "kind", "event", "name", "relist")} == {
        "type": "cluster.event", "kind": "Pod", "event": "ADDED", "name": "a", "relist": True}
    deleted = await layer.receive(cluster)
    assert (deleted["event"], deleted["name"], deleted["relist"]) == ("DELETED", "a", False)
    assert deleted["seq"] > added["seq"]


async def test_forbidden_kind_counts_as_synced_and_shows_nothing(canned_hub: object) -> None:
    source = CannedSource()
    source.script("Pod", lists=[([pod("a", "1")], "1")])
    source.script("Node", lists=[WatchForbidden("nodes is forbidden")])
    hub = canned_hub(source, kinds=("Pod", "Node"), forbidden_retry=30)
    assert await hub.wait_synced(10)
    assert hub.cache.list("Node") == []


async def test_cluster_without_endpointslices_falls_back_to_endpoints(canned_hub: object) -> None:
    source = CannedSource()
    source.script("EndpointSlice", lists=[KindNotServed("404")])
    endpoints = {"metadata": {"name": "backend-service", "resourceVersion": "4"}}
    source.script("Endpoints", lists=[([endpoints], "4")])
    hub = canned_hub(source, kinds=("EndpointSlice",))
    assert await hub.wait_synced(10)
    assert names(hub, "Endpoints") == ["backend-service"]


async def test_a_crashing_informer_is_logged_and_restarted(canned_hub: object,
                                                           caplog: pytest.LogCaptureFixture) -> None:
    source = CannedSource()
    source.script("Pod", lists=[KindNotServed("pods?"), ([pod("a", "1")], "1")])
    with caplog.at_level(logging.ERROR, logger="dashboard.hub"):
        hub = canned_hub(source)
        await until(lambda: names(hub) == ["a"])
    assert "crashed; restarting" in caplog.text
