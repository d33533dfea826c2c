"""The one bounded polling loop the tests use to wait for a cluster, a process or a page.

Tests never sleep-and-hope: they poll a condition until it holds and fail with what they were
waiting for once the deadline passes. Each test area binds its own default timeout and
interval (a pod takes seconds to become Ready; a local socket milliseconds).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Literal, TypeVar

import pytest

T = TypeVar("T")


def wait_until(condition: Callable[[], T | Literal[False] | None], *, timeout: float = 30.0,
               interval: float = 0.05, what: str = "condition") -> T:
    """Poll ``condition`` until it returns something truthy and return that; fail after ``timeout``.
    (A condition may say "not yet" with None or False: the value returned is then the other kind.)"""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:g} s waiting for {what} (last: {value!r})")
        time.sleep(interval)
