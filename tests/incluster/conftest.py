"""Fixtures of the in-cluster tests: kubectl in a fresh namespace of the shared sandbox."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import pytest

from tests.conftest import Sandbox


class Namespaced:
    """The bundled kubectl against the shared sandbox, in one test's own namespace."""

    def __init__(self, box: Sandbox, namespace: str) -> None:
        self.box = box
        self.namespace = namespace

    def run(self, *args: str, stdin: str | None = None, check: bool = True):
        """``kubectl -n NS args`` (a failure fails the test unless ``check`` is False)."""
        return self.box.run_kubectl("-n", self.namespace, *args, stdin=stdin, check=check)

    def json(self, *args: str) -> dict:
        """``kubectl -n NS get args -o json``."""
        return json.loads(self.run("get", *args, "-o", "json").stdout)

    def apply(self, obj: dict) -> None:
        """``kubectl apply`` of one object in the namespace."""
        self.run("apply", "-f", "-", stdin=json.dumps(obj))


@pytest.fixture
def ns(sandbox: Sandbox) -> Iterator[Namespaced]:
    """A new namespace in the shared sandbox, deleted afterwards."""
    name = f"ic-{uuid.uuid4().hex[:8]}"
    sandbox.run_kubectl("create", "namespace", name)
    yield Namespaced(sandbox, name)
    sandbox.run_kubectl("delete", "namespace", name, "--wait=false", check=False)
