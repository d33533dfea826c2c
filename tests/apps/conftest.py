"""Fixtures for the apps/v1 workload tests (StatefulSets, DaemonSets, Deployment history):
real kubectl in a fresh namespace of the shared sandbox (three nodes)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from tests.conftest import Sandbox, delete_namespace
from tests.sandbox.conftest import Kube

# The sample backend drains for 5 s after SIGTERM; these tests' pods need not, which keeps rollouts short.
FAST_EXIT = [{"name": "DRAIN_SECONDS", "value": "0"}]


@pytest.fixture
def kube(sandbox: Sandbox) -> Iterator[Kube]:
    """kubectl in an empty namespace of the shared sandbox, deleted with its content afterwards."""
    name = f"apps-{uuid.uuid4().hex[:8]}"
    sandbox.kubectl("create", "namespace", name)
    yield Kube(sandbox, name)
    delete_namespace(sandbox, name)
