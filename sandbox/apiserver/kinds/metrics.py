"""metrics.k8s.io/v1beta1 PodMetrics and NodeMetrics: what metrics-server serves, read from the kubelets.

A real cluster's metrics-server scrapes every kubelet's resource metrics and serves them as an
aggregated API; here the kubelets write their samples to the state directory
(`sandbox/kubelet/metrics.py`) and these two read-only resources (get, list) serve them:

- ``PodMetrics`` (namespaced, plural ``pods``): per container ``usage: {cpu: "12345678n",
  memory: "20480Ki"}``, with the sample's ``timestamp`` and ``window`` and the pod's labels, so
  ``kubectl top pods -l app=backend`` filters like on a real cluster; only pods that exist;
- ``NodeMetrics`` (cluster-scoped, plural ``nodes``): the node's ``usage`` (its pods' sum).

Objects are built at request time (never stored; no watch), listed in the Table form with
metrics-server's NAME CPU MEMORY WINDOW columns when kubectl asks. A node whose sample is older
than 30 s is left out (a stopped sandbox has no metrics), as is a pod's first period.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sandbox.apiserver.computed import ComputedStrategy
from sandbox.apiserver.printing import col, name_col
from sandbox.apiserver.strategy import Resource
from sandbox.kubelet.metrics import read_samples

if TYPE_CHECKING:
    from sandbox.apiserver.server import ApiServer

GROUP, VERSION = "metrics.k8s.io", "v1beta1"
POD_KEY = "/pods"
NODE_KEY = "/nodes"


def cpu_quantity(cores: float) -> str:
    """CPU as metrics-server writes it: whole nanocores (``12345678n``)."""
    return f"{max(0, math.ceil(cores * 1e9))}n"


def memory_quantity(size: float) -> str:
    """Memory as metrics-server writes it: KiB (``20480Ki``)."""
    return f"{max(0, int(size) // 1024)}Ki"


def _time(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _window(seconds: float) -> str:
    return f"{seconds:g}s"


def pod_metrics(server: ApiServer, *, now: float | None = None) -> list[dict[str, Any]]:
    """PodMetrics of every pod that has a sample and still exists, sorted by namespace and name."""
    out = []
    for sample in read_samples(server.state_dir, now=now):
        for pod in sample.get("pods") or []:
            entry = server.store.get(POD_KEY, pod["namespace"], pod["name"])
            if entry is None or entry.obj["metadata"].get("uid") != pod.get("uid"):
                continue
            meta = entry.obj["metadata"]
            out.append({
                "kind": "PodMetrics", "apiVersion": f"{GROUP}/{VERSION}",
                "metadata": {"name": meta["name"], "namespace": meta["namespace"],
                             "creationTimestamp": _time(sample["timestamp"]),
                             "labels": dict(meta.get("labels") or {})},
                "timestamp": _time(sample["timestamp"]), "window": _window(sample["window"]),
                "containers": [{"name": c["name"], "usage": {"cpu": cpu_quantity(c["cpu"]),
                                                             "memory": memory_quantity(c["memory"])}}
                               for c in pod["containers"]],
            })
    return sorted(out, key=lambda m: (m["metadata"]["namespace"], m["metadata"]["name"]))


def node_metrics(server: ApiServer, *, now: float | None = None) -> list[dict[str, Any]]:
    """NodeMetrics of every node with a fresh sample."""
    out = []
    for sample in read_samples(server.state_dir, now=now):
        entry = server.store.get(NODE_KEY, "", sample["node"])
        if entry is None:
            continue
        out.append({
            "kind": "NodeMetrics", "apiVersion": f"{GROUP}/{VERSION}",
            "metadata": {"name": sample["node"], "creationTimestamp": _time(sample["timestamp"]),
                         "labels": dict(entry.obj["metadata"].get("labels") or {})},
            "timestamp": _time(sample["timestamp"]), "window": _window(sample["window"]),
            "usage": {"cpu": cpu_quantity(sample["usage"]["cpu"]),
                      "memory": memory_quantity(sample["usage"]["memory"])},
        })
    return sorted(out, key=lambda m: m["metadata"]["name"])


def _usage_cells(usage: dict[str, str]) -> list[str]:
    cpu = usage.get("cpu", "0n")
    milli = math.ceil(int(cpu[:-1]) / 1e6) if cpu.endswith("n") else cpu
    return [f"{milli}m", usage.get("memory", "0Ki")]


class MetricsStrategy(ComputedStrategy):
    """Read-only, computed per request (`computed.py` answers GET of a list or one object)."""

    def usage(self, obj: dict[str, Any]) -> dict[str, str]:
        """The usage a Table row shows."""
        raise NotImplementedError

    def columns(self) -> list[dict[str, Any]]:
        """metrics-server's columns."""
        return [name_col(), col("CPU", description="CPU usage"), col("Memory", description="Memory usage"),
                col("Window", description="Time window of the measurement")]

    def row(self, obj: dict, now: datetime) -> list[Any]:
        """NAME CPU MEMORY WINDOW."""
        return [obj["metadata"]["name"], *_usage_cells(self.usage(obj)), obj.get("window", "")]


POD_RESOURCE = Resource(GROUP, VERSION, "PodMetrics", "pods", "", verbs=("get", "list"))
NODE_RESOURCE = Resource(GROUP, VERSION, "NodeMetrics", "nodes", "", namespaced=False, verbs=("get", "list"))


class PodMetricsStrategy(MetricsStrategy):
    """PodMetrics: per-container usage of each pod."""

    resource = POD_RESOURCE

    def items(self, server: ApiServer) -> list[dict[str, Any]]:
        """Every pod's metrics."""
        return pod_metrics(server)

    def usage(self, obj: dict[str, Any]) -> dict[str, str]:
        """The pod's containers summed."""
        cpu = sum(int(c["usage"]["cpu"][:-1]) for c in obj.get("containers") or [])
        memory = sum(int(c["usage"]["memory"][:-2]) for c in obj.get("containers") or [])
        return {"cpu": f"{cpu}n", "memory": f"{memory}Ki"}


class NodeMetricsStrategy(MetricsStrategy):
    """NodeMetrics: each node's usage."""

    resource = NODE_RESOURCE

    def items(self, server: ApiServer) -> list[dict[str, Any]]:
        """Every node's metrics."""
        return node_metrics(server)

    def usage(self, obj: dict[str, Any]) -> dict[str, str]:
        """The node's usage."""
        return obj.get("usage") or {}


POD_STRATEGY = PodMetricsStrategy()
NODE_STRATEGY = NodeMetricsStrategy()
