"""Resource metrics of a node's pods: the kubelet's `/metrics/resource`, read by the metrics API.

Every `PERIOD` seconds each kubelet measures the CPU and memory of every running container:
the container's process tree (the container process and all its descendants, found through
``/proc/<pid>/stat`` parent links, so bubblewrap's inner processes count) — CPU as the change
of the tree's user+system time (including reaped children's) since the previous sample,
divided by the real time between the samples (the ``window``), memory as the tree's resident
set. The node's usage is the sum of its pods' (the sandbox's nodes share one machine, so
there is no separate node cgroup to read).

A sample is written atomically to ``STATE_DIR/metrics/<node>.json``::

    {"node": "sandbox-node-1", "timestamp": 1764020000.5, "window": 5.003,
     "usage": {"cpu": 0.0123, "memory": 21000000},
     "pods": [{"namespace": "default", "name": "backend-...", "uid": "...",
               "containers": [{"name": "backend", "cpu": 0.0123, "memory": 21000000}]}]}

(cpu in cores, memory in bytes). The API server's metrics.k8s.io/v1beta1 resources
(`sandbox/apiserver/kinds/metrics.py`) read these files with `read_samples`, as metrics-server
scrapes the kubelets; a container's first sample has no window yet, so a new pod appears in
``kubectl top`` one period after it starts.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sandbox import statedir

log = logging.getLogger("sandbox.kubelet.metrics")

PERIOD = 5.0
# A node file older than this is a stopped or hung node: its pods have no metrics.
STALE_AFTER = 6 * PERIOD
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


@dataclass(frozen=True)
class ContainerRef:
    """A running container the kubelet knows: which pod, which container, its process."""

    namespace: str
    pod: str
    uid: str
    container: str
    pid: int


def process_table(proc: Path = Path("/proc")) -> dict[int, tuple[int, float, int]]:
    """``pid -> (parent pid, CPU seconds incl. reaped children, resident bytes)`` of every process."""
    table: dict[int, tuple[int, float, int]] = {}
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            raw = (entry / "stat").read_bytes()
        except OSError:
            continue
        # The command name may contain spaces and parentheses: the fields start after the last ")".
        fields = raw[raw.rfind(b")") + 2 :].split()
        try:
            ppid = int(fields[1])
            ticks = int(fields[11]) + int(fields[12]) + int(fields[13]) + int(fields[14])
            rss = int(fields[21]) * PAGE_SIZE
        except (IndexError, ValueError):
            continue
        table[int(entry.name)] = (ppid, ticks / CLOCK_TICKS, rss)
    return table


def tree_usage(pid: int, table: dict[int, tuple[int, float, int]], children: dict[int, list[int]]) -> tuple[
        float, int] | None:
    """CPU seconds and resident bytes of ``pid`` and its descendants (None when it is gone)."""
    if pid not in table:
        return None
    cpu, rss = 0.0, 0
    stack = [pid]
    while stack:
        current = stack.pop()
        _, seconds, resident = table[current]
        cpu += seconds
        rss += resident
        stack.extend(children.get(current, ()))
    return cpu, rss


class MetricsCollector:
    """Samples one node's containers every `PERIOD` and writes the node's metrics file."""

    def __init__(self, *, node: str, state_dir: Path, containers: Callable[[], Iterable[ContainerRef]],
                 period: float = PERIOD) -> None:
        self.node = node
        self.path = statedir.path(state_dir, statedir.METRICS) / f"{node}.json"
        self.containers = containers
        self.period = period
        self._previous: dict[tuple[str, str, int], tuple[float, float]] = {}

    def sample(self, *, now: float, table: dict[int, tuple[int, float, int]] | None = None) -> dict[str, Any]:
        """Measure every container now; usage is relative to the previous sample of the same process."""
        table = process_table() if table is None else table
        children: dict[int, list[int]] = {}
        for pid, (ppid, _, _) in table.items():
            children.setdefault(ppid, []).append(pid)
        pods: dict[str, dict[str, Any]] = {}
        previous, self._previous = self._previous, {}
        windows = []
        for ref in self.containers():
            usage = tree_usage(ref.pid, table, children)
            if usage is None:
                continue
            key = (ref.uid, ref.container, ref.pid)
            self._previous[key] = (now, usage[0])
            before = previous.get(key)
            if before is None or now <= before[0]:
                continue
            window = now - before[0]
            windows.append(window)
            pod = pods.setdefault(ref.uid, {"namespace": ref.namespace, "name": ref.pod, "uid": ref.uid,
                                            "containers": []})
            pod["containers"].append({"name": ref.container, "cpu": max(0.0, usage[0] - before[1]) / window,
                                      "memory": usage[1]})
        items = list(pods.values())
        return {
            "node": self.node,
            "timestamp": now,
            "window": round(max(windows) if windows else self.period, 3),
            "usage": {"cpu": sum(c["cpu"] for p in items for c in p["containers"]),
                      "memory": sum(c["memory"] for p in items for c in p["containers"])},
            "pods": items,
        }

    def write(self, sample: dict[str, Any]) -> None:
        """Replace the node's metrics file atomically."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(sample, separators=(",", ":")))
        os.replace(tmp, self.path)

    async def run(self) -> None:
        """Sample and write forever (the /proc scan runs in a thread: it reads hundreds of files)."""
        while True:
            try:
                table = await asyncio.to_thread(process_table)
                self.write(self.sample(now=time.time(), table=table))
            except Exception:
                log.exception("metrics sample failed on %s", self.node)
            await asyncio.sleep(self.period)

    def remove(self) -> None:
        """Forget the node's metrics (the node stops)."""
        with contextlib.suppress(OSError):
            self.path.unlink()


def read_samples(state_dir: Path, *, now: float | None = None) -> list[dict[str, Any]]:
    """Every node's latest sample that is not stale (what metrics-server would have scraped)."""
    now = time.time() if now is None else now
    samples = []
    for path in sorted(statedir.path(state_dir, statedir.METRICS).glob("*.json")):
        try:
            sample = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(sample, dict) and now - float(sample.get("timestamp") or 0) <= STALE_AFTER:
            samples.append(sample)
    return samples
