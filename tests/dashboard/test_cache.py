"""The informer cache: applying events, relists that repair, and the change log."""

from __future__ import annotations

from dashboard.cache import ClusterCache
from tests.dashboard.canned import pod, present


def test_events_are_numbered_and_duplicates_ignored() -> None:
    cache = ClusterCache()
    assert present(cache.apply("Pod", "ADDED", pod("a", "1"), observed=1.0)).seq == 1
    assert cache.apply("Pod", "MODIFIED", pod("a", "1"), observed=1.0) is None
    assert present(cache.apply("Pod", "MODIFIED", pod("a", "2"), observed=1.0)).event == "MODIFIED"
    assert cache.apply("Pod", "DELETED", pod("zz", "3"), observed=1.0) is None
    assert cache.apply("Pod", "BOOKMARK", pod("a", "4"), observed=1.0) is None
    deleted = present(cache.apply("Pod", "DELETED", pod("a", "5"), observed=1.0))
    assert deleted.event == "DELETED" and cache.list("Pod") == []
    assert cache.seq == 3


def test_modified_for_an_unknown_object_counts_as_added() -> None:
    cache = ClusterCache()
    assert present(cache.apply("Pod", "MODIFIED", pod("a", "1"), observed=1.0)).event == "ADDED"


def test_relist_removes_vanished_objects_and_reports_the_difference() -> None:
    cache = ClusterCache()
    cache.replace("Pod", [pod("a", "1"), pod("b", "2"), pod("c", "3")], observed=1.0)
    changes = cache.replace("Pod", [pod("a", "1"), pod("b", "7"), pod("d", "8")], observed=2.0)
    assert sorted((c.event, c.name) for c in changes) == [("ADDED", "d"), ("DELETED", "c"), ("MODIFIED", "b")]
    assert sorted(p["metadata"]["name"] for p in cache.list("Pod")) == ["a", "b", "d"]
    assert "Pod" in cache.synced


def test_changes_since_and_gap_detection() -> None:
    cache = ClusterCache(history=3)
    for i in range(5):
        cache.apply("Pod", "ADDED", pod(f"p{i}", str(i)), observed=1.0)
    assert cache.changes_since(5) == []
    assert [c.name for c in present(cache.changes_since(3))] == ["p3", "p4"]
    assert [c.name for c in present(cache.changes_since(2))] == ["p2", "p3", "p4"]
    assert cache.changes_since(1) is None


def test_snapshot_is_a_copy() -> None:
    cache = ClusterCache()
    cache.apply("Pod", "ADDED", pod("a", "1"), observed=1.0)
    seq, objects = cache.snapshot()
    cache.apply("Pod", "ADDED", pod("b", "2"), observed=1.0)
    assert seq == 1 and len(objects["Pod"]) == 1


def test_objects_that_are_not_objects_are_ignored_not_fatal() -> None:
    cache = ClusterCache()
    junk: list = [{"metadata": ["x"]}, "pod", None, {"metadata": {"name": "ok"}}]
    changes = cache.replace("Pod", junk, observed=1.0)
    assert [c.name for c in changes] == ["ok"]
    assert cache.apply("Pod", "ADDED", {"metadata": None}, observed=2.0) is None
    assert cache.apply("Pod", "MODIFIED", ["not", "an", "object"], observed=2.0) is None  # type: ignore[arg-type]
    assert [o["metadata"]["name"] for o in cache.list("Pod")] == ["ok"]


def test_managed_fields_are_not_kept_by_watch_or_relist() -> None:
    def with_fields(name: str, rv: str) -> dict:
        obj = pod(name, rv)
        obj["metadata"]["managedFields"] = [{"manager": "kubelet", "fieldsV1": {"f:status": {}}}]
        return obj

    cache = ClusterCache()
    cache.apply("Pod", "ADDED", with_fields("a", "1"), observed=1.0)
    cache.replace("Pod", [with_fields("a", "2"), with_fields("b", "3")], observed=2.0)
    cache.apply("Pod", "MODIFIED", with_fields("b", "4"), observed=3.0)
    kept = cache.list("Pod")
    assert [p["metadata"]["resourceVersion"] for p in kept] == ["2", "4"]
    assert not any("managedFields" in p["metadata"] for p in kept)
    cache.apply("Pod", "DELETED", with_fields("a", "5"), observed=4.0)
    assert not any("managedFields" in change.obj["metadata"] for change in cache.log)
