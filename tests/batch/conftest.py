"""Fixtures for the Job and CronJob tests: an empty namespace of the shared sandbox per test."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.conftest import Sandbox, delete_namespace


class Namespace:
    """One test's namespace in the shared sandbox, with kubectl bound to it."""

    def __init__(self, box: Sandbox, name: str) -> None:
        self.box = box
        self.name = name

    def kubectl(self, *args: str, stdin: str | None = None, timeout: float = 60.0) -> str:
        """kubectl in this namespace; its stdout (a failure fails the test)."""
        return self.box.kubectl("-n", self.name, *args, stdin=stdin, timeout=timeout)

    def fails(self, *args: str, stdin: str | None = None) -> str:
        """kubectl in this namespace that must fail; its stderr."""
        result = self.box.run_kubectl("-n", self.name, *args, stdin=stdin, check=False)
        assert result.returncode != 0, result.stdout
        return result.stderr

    def get(self, kind: str, name: str) -> dict[str, Any]:
        """One object as JSON."""
        return json.loads(self.kubectl("get", kind, name, "-o", "json"))

    def items(self, kind: str, *selector: str) -> list[dict[str, Any]]:
        """The objects of a kind (optionally `-l ...`) as JSON."""
        return json.loads(self.kubectl("get", kind, *selector, "-o", "json"))["items"]

    def events(self, name: str) -> list[tuple[str, str, str]]:
        """(type, reason, message) of the Events about the object called ``name``."""
        return [
            (e["type"], e["reason"], e["message"])
            for e in self.items("events")
            if e["involvedObject"]["name"] == name
        ]


@pytest.fixture
def ns(sandbox: Sandbox) -> Iterator[Namespace]:
    """A fresh, empty namespace of the shared sandbox, deleted with everything in it afterwards."""
    name = f"b-{uuid.uuid4().hex[:8]}"
    sandbox.kubectl("create", "namespace", name)
    yield Namespace(sandbox, name)
    delete_namespace(sandbox, name)


async def until(condition: Callable[[], Any], what: str, timeout: float = 20.0) -> Any:
    """Poll ``condition`` on the event loop until it is truthy (the in-process controller tests)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not (value := condition()):
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)
    return value
