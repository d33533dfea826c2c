"""Helpers shared by the traffic lab's tests."""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
from collections.abc import Callable, Coroutine
from typing import Any

from dashboard.traffic.engine import Target
from dashboard.traffic.targets import ResolvedTarget, TargetOption
from tests import polling


def own_loop(test: Callable[..., Coroutine[Any, Any, None]]) -> Callable[..., None]:
    """Run an async test on a fresh event loop in its own thread.

    The session's Playwright browser (sync API) keeps an event loop running in the main
    thread once any browser test has started, so async tests must not use that thread.
    """

    @functools.wraps(test)
    def run(*args: Any, **kwargs: Any) -> None:
        with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
            pool.submit(asyncio.run, test(*args, **kwargs)).result()

    return run


def resolved_for(url: str, service: str | None = "backend-service") -> ResolvedTarget:
    """A resolved target as targets.resolve_target would return it, for a given address."""
    option = TargetOption(id="backend-service:80", label="backend-service :80", service=service, port=80)
    return ResolvedTarget(option=option, target=Target.from_url(url), via="test")


wait_until = functools.partial(polling.wait_until, timeout=30.0, interval=0.05)
