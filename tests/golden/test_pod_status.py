"""The golden pod STATUS table (pod_status.yaml) against both printers: the dashboard's port of
kubectl's printPod and the sandbox API server's Table printer, so the page and `kubectl get
pods` can never disagree."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from dashboard import objects

# The API server's Table printer for pods (its per-kind module).
from sandbox.apiserver.kinds.pod import pod_status_cells

NOW = datetime(2026, 11, 24, 21, 10, tzinfo=UTC)
CASES: list[dict[str, Any]] = yaml.safe_load((Path(__file__).parent / "pod_status.yaml").read_text())


def full_pod(case: dict[str, Any]) -> dict[str, Any]:
    """The case's pod with the metadata every pod has."""
    pod = case["pod"]
    metadata = {
        "name": "p",
        "namespace": "default",
        "uid": "u",
        "creationTimestamp": "2026-11-24T21:00:00Z",
        **pod.get("metadata", {}),
    }
    return {"apiVersion": "v1", "kind": "Pod", **pod, "metadata": metadata}


def test_the_table_covers_the_cases_kubectl_users_meet() -> None:
    statuses = {case["status"] for case in CASES}
    assert {
        "Completed",
        "SchedulingGated",
        "Init:1/2",
        "Init:Error",
        "CrashLoopBackOff",
        "ImagePullBackOff",
        "ErrImagePull",
        "Terminating",
        "Unknown",
        "Evicted",
        "ContainerCreating",
        "Running",
        "Error",
        "OOMKilled",
        "NotReady",
        "Init:CrashLoopBackOff",
    } <= statuses
    assert len({case["name"] for case in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_dashboard_prints_like_kubectl(case: dict[str, Any]) -> None:
    printed = objects.print_pod(full_pod(case))
    assert (f"{printed.ready}/{printed.total}", printed.status, printed.restarts_text(NOW)) == (
        case["ready"],
        case["status"],
        case["restarts"],
    )


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_api_server_table_prints_like_kubectl(case: dict[str, Any]) -> None:
    assert pod_status_cells(full_pod(case), NOW) == (case["ready"], case["status"], case["restarts"])
