"""Fixtures for the drain tests: a namespace in the shared sandbox, a raw HTTPS client for the
API (to read the Status bodies kubectl does not print), and ghost nodes — Node objects no kubelet
heartbeats — on which the node lifecycle and taint-eviction controllers can be watched without
disturbing the sandbox's real nodes."""

from __future__ import annotations

import json
import ssl
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import urllib3

from sandbox import statedir
from tests.conftest import Sandbox, delete_namespace

GHOST_TAINT = {"key": "lb-demo.dev/ghost", "effect": "NoSchedule"}


class Api:
    """Raw JSON requests to a sandbox's API server."""

    def __init__(self, box: Sandbox) -> None:
        context = ssl.create_default_context(cafile=str(statedir.ca_cert(box.state_dir)))
        self.http = urllib3.PoolManager(ssl_context=context, maxsize=4)
        self.url, self.token = box.url, box.token

    def call(self, method: str, path: str, body: dict | None = None) -> tuple[int, Any]:
        """One request; the status code and the decoded JSON answer."""
        headers = {"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"}
        response = self.http.request(method, self.url + path, headers=headers, retries=False, timeout=30,
                                     body=json.dumps(body).encode() if body is not None else None)
        return response.status, json.loads(response.data)


@pytest.fixture
def ns(sandbox: Sandbox) -> Iterator[str]:
    """A fresh, empty namespace in the shared sandbox; deleted with everything in it afterwards."""
    name = f"t-{uuid.uuid4().hex[:8]}"
    sandbox.kubectl("create", "namespace", name)
    yield name
    delete_namespace(sandbox, name)


@pytest.fixture
def api(sandbox: Sandbox) -> Api:
    """Raw JSON access to the shared sandbox's API."""
    return Api(sandbox)


def stamp(ago: float = 0.0) -> str:
    """An RFC 3339 time ``ago`` seconds in the past."""
    return (datetime.now(UTC) - timedelta(seconds=ago)).strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.fixture
def ghost_nodes(sandbox: Sandbox) -> Iterator[Callable[..., str]]:
    """Create Node objects no kubelet runs (tainted so no other test's pods land there, labelled
    for nodeSelectors); removed at the end, their pods force-deleted."""
    made: list[str] = []

    def make(*, ready: str = "True", heartbeat_ago: float = 0.0, taints: list[dict] | None = None) -> str:
        name = f"ghost-{uuid.uuid4().hex[:6]}"
        node = {"apiVersion": "v1", "kind": "Node",
                "metadata": {"name": name, "labels": {"lb-demo.dev/ghost": name}},
                "spec": {"taints": [GHOST_TAINT, *(taints or [])]},
                "status": {"conditions": [{"type": "Ready", "status": ready, "reason": "KubeletReady",
                                           "message": "kubelet is posting ready status",
                                           "lastHeartbeatTime": stamp(heartbeat_ago),
                                           "lastTransitionTime": stamp(heartbeat_ago)}],
                           "capacity": {"pods": "110"}}}
        sandbox.kubectl("create", "-f", "-", stdin=json.dumps(node))
        made.append(name)
        return name

    yield make
    for name in made:
        sandbox.run_kubectl("delete", "node", name, "--wait=false", check=False)
        pods = json.loads(sandbox.kubectl("get", "pods", "-A", "-o", "json", "--field-selector",
                                          f"spec.nodeName={name}"))
        for pod in pods["items"]:
            sandbox.run_kubectl("delete", "pod", "-n", pod["metadata"]["namespace"], pod["metadata"]["name"],
                                "--force", "--grace-period=0", "--wait=false", check=False)
