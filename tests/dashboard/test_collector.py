"""The collector policy (dashboard.collector): full collections skip what survived the last one,
and a cycle that forms among frozen objects is still reclaimed."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from dashboard import collector


class Node:
    """An object that can sit in a reference cycle."""

    other: Node | None = None


@pytest.fixture
def policy() -> Iterator[None]:
    collector.install()
    try:
        yield
    finally:
        collector.uninstall()


def cycle() -> weakref.ref[Node]:
    """A two-object cycle kept alive by ``held`` only; a weak reference to one of them."""
    a, b = Node(), Node()
    a.other, b.other = b, a
    held.append(a)
    return weakref.ref(a)


held: list[Node] = []


def test_a_full_collection_freezes_the_survivors_so_later_ones_skip_them(policy: None) -> None:
    ref = cycle()
    gc.collect()
    assert gc.get_freeze_count() > 0  # the survivors, the cycle among them, are skipped from now on
    held.clear()  # the cycle is garbage now, but frozen
    gc.collect()
    assert ref() is not None  # a collection does not walk frozen objects
    collector.uninstall()  # thaws
    gc.collect()
    assert ref() is None


def test_the_first_full_collection_of_each_period_thaws_first(policy: None,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    ref = cycle()
    gc.collect()
    held.clear()
    monkeypatch.setattr(collector, "_thawed_at", collector._thawed_at - collector.THAW_EVERY)
    gc.collect()
    assert ref() is None and gc.get_freeze_count() > 0  # reclaimed, and the rest frozen again
