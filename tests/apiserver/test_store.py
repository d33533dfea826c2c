"""The store: one global resourceVersion, durable writes, bounded watch history."""

from __future__ import annotations

from pathlib import Path

import pytest

from sandbox.apiserver.store import RESTART_GAP, Expired, Store


def pod(name: str, **labels: str) -> dict:
    """A minimal object."""
    return {
        "kind": "Pod",
        "apiVersion": "v1",
        "metadata": {"name": name, "namespace": "default", "labels": labels},
    }


async def test_resource_versions_survive_a_restart(tmp_path: Path) -> None:
    """After a restart versions continue past a gap; a watch from inside the gap (a change that
    may have been seen but never became durable) must relist."""
    store = Store(tmp_path / "s.sqlite3")
    await store.open()
    for name in ("a", "b", "c"):
        _, durable = store.put("/pods", pod(name))
        await durable
    removed = store.remove("/pods", "default", "b")
    assert removed is not None
    await removed[1]
    last = store.resource_version
    await store.close()

    again = Store(tmp_path / "s.sqlite3")
    await again.open()
    assert [e.obj["metadata"]["name"] for e in again.entries("/pods")] == ["a", "c"]
    assert again.resource_version == last + RESTART_GAP
    again.watch("/pods", namespace=None, predicate=None, since=last).close()
    again.watch("/pods", namespace=None, predicate=None, since=last + RESTART_GAP).close()
    with pytest.raises(Expired):
        again.watch("/pods", namespace=None, predicate=None, since=last + 1)
    entry, durable = again.put("/pods", pod("d"))
    await durable
    assert int(entry.obj["metadata"]["resourceVersion"]) == last + RESTART_GAP + 1
    await again.close()


async def test_watch_replays_history_and_expires_old_versions(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.sqlite3", history_size=5)
    await store.open()
    start = store.resource_version
    for index in range(8):
        store.put("/pods", pod(f"p{index}"))
    await store.flush()
    with pytest.raises(Expired):
        store.watch("/pods", namespace=None, predicate=None, since=start)
    watcher = store.watch("/pods", namespace=None, predicate=None, since=store.resource_version - 2)
    assert [watcher.queue.get_nowait().obj["metadata"]["name"] for _ in range(2)] == ["p6", "p7"]
    await store.close()


async def test_selector_transitions_become_added_and_deleted(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.sqlite3")
    await store.open()
    store.put("/pods", pod("x", app="other"))
    watcher = store.watch(
        "/pods",
        namespace="default",
        since=store.resource_version,
        predicate=lambda o: o["metadata"]["labels"].get("app") == "web",
    )
    store.put("/pods", pod("x", app="web"))
    store.put("/pods", pod("x", app="web", v="2"))
    store.put("/pods", pod("x", app="other"))
    types = [watcher.queue.get_nowait().type for _ in range(3)]
    assert types == ["ADDED", "MODIFIED", "DELETED"]
    assert watcher.queue.empty()
    await store.close()
