"""Benchmark of the API server's pure modules: the per-request CPU cost they add.

A list of 1,000 pods as a Table, a create (defaulting + validation + strict unknown-field
check), the field ownership (managedFields) a pod create and a status update record, the
strategic merge patch plain `kubectl apply` sends, `kubectl scale`'s merge patch, and the
`/openapi/v3` documents (first build, then cached). These run inside request handlers,
so their cost bounds the API server's list latency and write throughput.

Run: ``.venv/bin/python bench/apiserver_pure.py [--repeat N]``. Prints the median CPU time of N
runs for each figure; nothing here asserts.
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from sandbox.apiserver import managedfields, openapi, schemas  # noqa: E402 - needs the repo on sys.path first
from sandbox.apiserver.patch import MERGE_PATCH, apply_patch  # noqa: E402
from sandbox.apiserver.tables import table_for  # noqa: E402
from sandbox.apiserver.validation import default_object, validate_object  # noqa: E402

REQUESTS = REPO / "tests" / "apiserver_units" / "applyupdate.jsonl"


def median_seconds(fn: Callable[[], object], *, repeat: int, inner: int = 1) -> float:
    """Median CPU time of one call of ``fn`` over ``repeat`` samples of ``inner`` calls (CPU
    time, not wall time: other processes on a shared machine barely move it)."""
    samples = []
    for _ in range(repeat):
        start = time.process_time()
        for _ in range(inner):
            fn()
        samples.append((time.process_time() - start) / inner)
    return statistics.median(samples)


def sample_pod(i: int, now: datetime) -> dict:
    """A scheduled, running pod shaped like the ones the sandbox stores."""
    created = (now - timedelta(seconds=30 + i)).strftime("%Y-%m-%dT%H:%M:%SZ")
    pod: dict[str, Any] = {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": f"backend-5d8f7-{i:05d}", "namespace": "default", "uid": f"uid-{i}",
                     "resourceVersion": str(100 + i), "creationTimestamp": created,
                     "labels": {"app": "backend", "pod-template-hash": "5d8f7"}},
        "spec": {"nodeName": f"sandbox-node-{i % 3 + 1}", "containers": [{
            "name": "backend", "image": "lb-demo", "imagePullPolicy": "IfNotPresent",
            "ports": [{"name": "http", "containerPort": 8080}],
            "readinessProbe": {"httpGet": {"path": "/readyz", "port": "http"}, "periodSeconds": 1},
            "resources": {"requests": {"cpu": "50m", "memory": "32Mi"}, "limits": {"memory": "128Mi"}}}]},
    }
    default_object("pods", pod)
    pod["status"].update(podIP=f"127.244.{i // 250}.{i % 250 + 2}", containerStatuses=[{
        "name": "backend", "ready": True, "restartCount": i % 3, "image": "lb-demo", "imageID": "",
        "state": {"running": {"startedAt": created}},
        "lastState": {"terminated": {"exitCode": 1, "finishedAt": created}} if i % 3 else {}}])
    return pod


def main() -> None:
    """Print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    now = datetime.now(UTC)
    pods = [sample_pod(i, now) for i in range(1000)]

    table = median_seconds(lambda: table_for("pods", pods, resource_version="1234"), repeat=args.repeat)
    encoded = median_seconds(lambda: json.dumps(table_for("pods", pods)), repeat=args.repeat)
    print(f"Table of 1,000 pods (rows + PartialObjectMetadata): {table * 1000:.1f} ms; "
          f"with json.dumps: {encoded * 1000:.1f} ms")

    raw = {k: v for k, v in sample_pod(0, now).items() if k != "status"}

    def create() -> None:
        obj = copy.deepcopy(raw)
        schemas.unknown_fields("pods", obj)
        default_object("pods", obj)
        validate_object("pods", obj)

    cost = median_seconds(create, repeat=args.repeat, inner=200)
    print(f"Pod create checks (unknown fields + defaults + validation): {cost * 1e6:.0f} us "
          f"(~{1 / cost:,.0f}/s on one core)")

    def record(old: dict | None, new: dict, subresource: str) -> Callable[[], None]:
        def run() -> None:
            managedfields.record_update(old, copy.deepcopy(new), plural="pods", api_version="v1",
                                        manager="kubelet", subresource=subresource, has_status=True)
        return run

    created = copy.deepcopy(pods[0])
    managedfields.record_update(None, created, plural="pods", api_version="v1", manager="kube-scheduler",
                                subresource="", has_status=True)
    ready = copy.deepcopy(created)
    ready["status"]["containerStatuses"][0]["ready"] = False
    copying = median_seconds(lambda: copy.deepcopy(created), repeat=args.repeat, inner=200)
    on_create = median_seconds(record(None, pods[0], ""), repeat=args.repeat, inner=200) - copying
    on_status = median_seconds(record(created, ready, "status"), repeat=args.repeat, inner=200) - copying
    print(f"managedFields of a pod: {on_create * 1e6:.0f} us on create, {on_status * 1e6:.0f} us on a "
          f"status update (one field changes)")

    lines = [json.loads(line) for line in REQUESTS.read_text().splitlines() if line.strip()]
    post = next(line for line in lines if line.get("m") == "POST")
    patch = next(line for line in lines if line.get("m") == "PATCH")
    stored = default_object("deployments", json.loads(post["body"]))
    body = patch["body"].encode()
    smp = median_seconds(lambda: apply_patch(patch["ct"], stored, body, plural="deployments"),
                         repeat=args.repeat, inner=200)
    print(f"kubectl apply's strategic merge patch on a Deployment: {smp * 1e6:.0f} us")
    scale = {"apiVersion": "autoscaling/v1", "kind": "Scale", "spec": {"replicas": 3},
             "status": {"replicas": 3}}
    scale_body = b'{"spec":{"replicas":5}}'
    merge = median_seconds(lambda: apply_patch(MERGE_PATCH, scale, scale_body, plural="scale"),
                           repeat=args.repeat, inner=500)
    print(f"kubectl scale's merge patch: {merge * 1e6:.1f} us")

    start = time.process_time()
    openapi.openapi_v3_index()
    first = time.process_time() - start
    cached = median_seconds(lambda: openapi.openapi_v3_document_bytes("api/v1"), repeat=args.repeat,
                            inner=1000)
    sizes = ", ".join(f"{path} {len(openapi.openapi_v3_document_bytes(path) or b'') // 1024} KiB"
                      for path in openapi.openapi_v3_index()["paths"])
    print(f"/openapi/v3 documents: first build {first * 1000:.0f} ms (schemas loaded once), "
          f"then {cached * 1e6:.2f} us per request; sizes: {sizes}")


if __name__ == "__main__":
    main()
