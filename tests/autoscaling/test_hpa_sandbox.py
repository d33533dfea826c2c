"""Autoscaling in a live sandbox with real kubectl: top, autoscale, get hpa -w, scaling up and down."""

from __future__ import annotations

import http.client
import json
import re
import subprocess
import threading
import time
from collections.abc import Iterator

import pytest
import yaml

from tests import polling
from tests.conftest import KUBECTL, Sandbox

NAMESPACE = "autoscaling-lab"
APP = [
    {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}},
    {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "busy", "namespace": NAMESPACE},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "busy"}},
            "template": {
                "metadata": {"labels": {"app": "busy"}},
                "spec": {
                    "containers": [
                        {
                            "name": "busy",
                            "image": "lb-demo",
                            "ports": [{"name": "http", "containerPort": 8080}],
                            "readinessProbe": {
                                "httpGet": {"path": "/readyz", "port": "http"},
                                "periodSeconds": 1,
                            },
                            "resources": {"requests": {"cpu": "50m", "memory": "32Mi"}},
                        }
                    ],
                },
            },
        },
    },
    {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "busy", "namespace": NAMESPACE},
        "spec": {
            "selector": {"app": "busy"},
            "ports": [{"name": "http", "port": 80, "targetPort": "http"}],
        },
    },
]


def kubectl(sandbox: Sandbox, *args: str, input_: str | None = None, check: bool = True) -> str:
    out = sandbox.run_kubectl(*args, stdin=input_, check=check)
    return out.stdout + out.stderr


def hpa_status(sandbox: Sandbox) -> dict:
    return (
        json.loads(kubectl(sandbox, "get", "hpa", "busy", "-n", NAMESPACE, "-o", "json")).get("status") or {}
    )


@pytest.fixture
def busy_app(sandbox: Sandbox) -> Iterator[str]:
    """A one-replica Deployment with CPU requests behind a ClusterIP Service; yields the Service IP."""
    kubectl(sandbox, "apply", "-f", "-", input_=yaml.safe_dump_all(APP))
    polling.wait_until(
        lambda: "1/1" in kubectl(sandbox, "get", "deploy", "busy", "-n", NAMESPACE),
        timeout=120,
        interval=0.5,
        what="the busy pod Ready",
    )
    svc = json.loads(kubectl(sandbox, "get", "svc", "busy", "-n", NAMESPACE, "-o", "json"))
    yield svc["spec"]["clusterIP"]
    kubectl(sandbox, "delete", "namespace", NAMESPACE, "--wait=false", check=False)


def load(ip: str, stop: threading.Event, *, rate: float = 10.0, ms: int = 10) -> None:
    """CPU-heavy requests (/work) at a fixed rate, a new connection each, so every pod gets its share."""
    while not stop.is_set():
        began = time.monotonic()
        try:
            conn = http.client.HTTPConnection(ip, 80, timeout=10)
            conn.request("GET", f"/work?ms={ms}")
            conn.getresponse().read()
            conn.close()
        except OSError:
            pass
        stop.wait(max(0.0, 1 / rate - (time.monotonic() - began)))


def test_top_shows_pod_and_node_usage(sandbox: Sandbox) -> None:
    pods = polling.wait_until(
        lambda: (out := kubectl(sandbox, "top", "pods", check=False)) and "backend-" in out and out,
        timeout=60,
        interval=1,
        what="kubectl top pods",
    )
    assert pods.splitlines()[0].split() == ["NAME", "CPU(cores)", "MEMORY(bytes)"]
    assert re.search(r"^backend-\S+\s+\d+m\s+\d+Mi\s*$", pods, re.MULTILINE), pods
    nodes = kubectl(sandbox, "top", "nodes")
    assert nodes.splitlines()[0].split() == ["NAME", "CPU(cores)", "CPU(%)", "MEMORY(bytes)", "MEMORY(%)"]
    assert len(re.findall(r"^sandbox-node-\d\s+\d+m\s+\d+%\s+\d+Mi\s+\d+%", nodes, re.MULTILINE)) == 3, nodes
    raw = json.loads(kubectl(sandbox, "get", "--raw", "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods"))
    item = raw["items"][0]
    assert raw["kind"] == "PodMetricsList" and re.fullmatch(r"\d+(\.\d+)?s", item["window"])
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", item["timestamp"])
    assert item["containers"][0]["usage"]["cpu"].endswith("n")


def test_autoscale_scales_up_under_load_and_back_down(sandbox: Sandbox, busy_app: str) -> None:
    out = kubectl(
        sandbox, "autoscale", "deployment", "busy", "-n", NAMESPACE, "--cpu-percent=50", "--min=1", "--max=10"
    )
    assert "horizontalpodautoscaler.autoscaling/busy autoscaled" in out
    watch = subprocess.Popen(
        [str(KUBECTL), "get", "hpa", "busy", "-n", NAMESPACE, "-w"],
        env=sandbox.kubectl_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    stop = threading.Event()
    try:
        polling.wait_until(
            lambda: (hpa_status(sandbox).get("currentMetrics") or [None])[0],
            timeout=60,
            interval=1,
            what="the HPA reading CPU utilization",
        )
        worker = threading.Thread(target=load, args=(busy_app, stop), daemon=True)
        worker.start()
        polling.wait_until(
            lambda: (hpa_status(sandbox).get("currentReplicas") or 0) >= 3,
            timeout=120,
            interval=1,
            what="the HPA scaling up to 3 or more pods",
        )
        stop.set()
        worker.join(timeout=30)
        polling.wait_until(
            lambda: hpa_status(sandbox).get("currentReplicas") == 1,
            timeout=180,
            interval=2,
            what="the HPA scaling back down to 1 after the stabilization window",
        )
    finally:
        stop.set()
        watch.terminate()
        watched = watch.communicate(timeout=30)[0]
    conditions = {c["type"]: c for c in hpa_status(sandbox)["conditions"]}
    assert set(conditions) == {"AbleToScale", "ScalingActive", "ScalingLimited"}
    assert conditions["ScalingActive"]["reason"] == "ValidMetricFound"
    events = kubectl(
        sandbox,
        "get",
        "events",
        "-n",
        NAMESPACE,
        "--field-selector",
        "involvedObject.kind=HorizontalPodAutoscaler",
    )
    assert "cpu resource utilization (percentage of request) above target" in events
    assert "All metrics below target" in events
    assert "SuccessfulRescale" in kubectl(sandbox, "describe", "hpa", "busy", "-n", NAMESPACE)
    rows = [line.split() for line in watched.splitlines()[1:] if line.startswith("busy")]
    assert watched.splitlines()[0].split() == [
        "NAME",
        "REFERENCE",
        "TARGETS",
        "MINPODS",
        "MAXPODS",
        "REPLICAS",
        "AGE",
    ]
    replicas = {int(row[-2]) for row in rows}
    assert 1 in replicas and max(replicas) >= 3, watched


def test_bad_hpas_are_rejected_with_causes(sandbox: Sandbox) -> None:
    bad: dict = {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "bad"},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment"},
            "minReplicas": 5,
            "maxReplicas": 2,
            "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization"}}}],
        },
    }
    out = kubectl(sandbox, "create", "-f", "-", input_=json.dumps(bad), check=False)
    assert 'The HorizontalPodAutoscaler "bad" is invalid' in out
    assert "spec.scaleTargetRef.name: Required value" in out
    assert "spec.minReplicas: Invalid value: 5: must be less than or equal to maxReplicas" in out
    assert (
        "spec.metrics[0].resource.target.averageUtilization: Required value: must set averageUtilization "
        "when type is Utilization"
    ) in out
    zero = {
        **bad,
        "spec": {
            **bad["spec"],
            "minReplicas": 1,
            "maxReplicas": 0,
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "backend"},
            "metrics": [],
        },
    }
    out = kubectl(sandbox, "create", "-f", "-", input_=json.dumps(zero), check=False)
    assert "spec.maxReplicas: Invalid value: 0: must be greater than 0" in out
