"""Helpers for the sandbox cluster tests: kubectl against a live sandbox (in one namespace),
bounded polling, and a Service of our own on a random ClusterIP so parallel sandboxes on one
machine never collide.

``kube``: the sample app in a namespace of its own in the shared sandbox, for tests that change
the app. ``private_kube``: a fresh sandbox of its own, for tests that stop or restart the cluster."""

from __future__ import annotations

import functools
import json
import random
from collections.abc import Callable
from typing import Any

import pytest

from tests import polling
from tests.conftest import Sandbox


class Kube:
    """The bundled kubectl pointed at one sandbox and one namespace (the kubeconfig's `default`
    unless given)."""

    def __init__(self, box: Sandbox, namespace: str | None = None) -> None:
        self.box = box
        self.namespace = namespace

    def run(self, *args: str, stdin: str | None = None, check: bool = True) -> str:
        """Run kubectl in this namespace; fail the test with its stderr when it fails."""
        scope = ["--namespace", self.namespace] if self.namespace else []
        return self.box.run_kubectl(*scope, *args, stdin=stdin, check=check).stdout

    def get(self, *args: str) -> dict[str, Any]:
        """``kubectl get ... -o json``."""
        found: dict[str, Any] = json.loads(self.run("get", *args, "-o", "json"))
        return found

    def pods(self, selector: str = "app=backend") -> list[dict[str, Any]]:
        """Pods matching a label selector."""
        items: list[dict[str, Any]] = self.get("pods", "-l", selector)["items"]
        return items

    def ready_pods(self, selector: str = "app=backend") -> list[dict[str, Any]]:
        """Matching pods that are Ready and not terminating."""
        return [p for p in self.pods(selector) if is_ready(p) and not p["metadata"].get("deletionTimestamp")]

    def endpoint_ips(self, service: str = "backend-service") -> tuple[set[str], set[str]]:
        """(addresses, notReadyAddresses) of a Service's Endpoints."""
        ep = self.get("endpoints", service)
        ready, not_ready = set(), set()
        for subset in ep.get("subsets") or []:
            ready |= {a["ip"] for a in subset.get("addresses") or []}
            not_ready |= {a["ip"] for a in subset.get("notReadyAddresses") or []}
        return ready, not_ready

    def make_service(
        self, name: str = "lb-test", *, selector: str = "backend", affinity: bool = False
    ) -> str:
        """Create a ClusterIP Service for app=<selector> on a random ClusterIP; return that IP."""
        ip = f"127.96.{random.randint(100, 254)}.{random.randint(2, 254)}"
        spec: dict[str, Any] = {
            "clusterIP": ip,
            "selector": {"app": selector},
            "ports": [{"name": "http", "port": 80, "targetPort": "http"}],
        }
        if affinity:
            spec["sessionAffinity"] = "ClientIP"
        self.run(
            "apply",
            "-f",
            "-",
            stdin=json.dumps(
                {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name}, "spec": spec}
            ),
        )
        return ip


def is_ready(pod: dict[str, Any]) -> bool:
    """The pod's Ready condition is True."""
    return any(
        c["type"] == "Ready" and c["status"] == "True" for c in pod.get("status", {}).get("conditions") or []
    )


wait_until = functools.partial(polling.wait_until, timeout=60.0, interval=0.3)


def with_ready_sample(k: Kube) -> Kube:
    """Wait until the sample backend has its 3 Ready pods."""
    wait_until(lambda: len(k.ready_pods()) == 3, timeout=90, what="3 Ready backend pods")
    return k


@pytest.fixture
def kube(sandbox: Sandbox, sample_namespace: str) -> Kube:
    """kubectl in a fresh namespace of the shared sandbox whose sample backend has 3 Ready pods."""
    return with_ready_sample(Kube(sandbox, sample_namespace))


@pytest.fixture
def private_kube(sandbox_factory: Callable[..., Sandbox]) -> Kube:
    """kubectl against a fresh private sandbox whose sample backend has 3 Ready pods: for tests
    that stop or restart the cluster."""
    return with_ready_sample(Kube(sandbox_factory()))
