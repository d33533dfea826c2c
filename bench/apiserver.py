"""Benchmark of the sandbox API server: list latency, write throughput, watch fan-out.

Runs the API server alone (no cluster components) in a child process on a free port and
drives it over HTTPS with aiohttp, as clients do. Prints:
- write throughput: creating pods with 64 requests in flight (each acknowledged only once
  committed to SQLite);
- list latency with 1,000 pods: full JSON list and the Table form `kubectl get pods` asks for;
- watch fan-out: 50 open watches, then updates one at a time; latency from sending the update
  to each watcher receiving its event (p50/p99 over all watcher x event pairs).
Targets (issue 3): list < 100 ms, >= 500 writes/s, fan-out p99 < 50 ms.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import signal
import ssl
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import uvloop

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lab.launcher import free_port, wait_for_port
from sandbox.apiserver.certs import ensure_certificates
from sandbox.apiserver.server import ApiServer

TOKEN = "bench-token"
PODS = "/api/v1/namespaces/default/pods"
TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"


def serve(state_dir: str, port: int) -> None:
    """Child process: run only the API server until SIGTERM."""

    async def main() -> None:
        server = ApiServer(state_dir=Path(state_dir), token=TOKEN)
        await server.start(port=port)
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        await stop.wait()
        await server.stop()

    uvloop.run(main())


def pod(name: str) -> dict:
    """A realistic pod manifest (similar in size to the sample backend's)."""
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": "bench", "pod-template-hash": "5d8f7c9b4"}},
        "spec": {"containers": [{
            "name": "backend", "image": "lb-demo", "ports": [{"name": "http", "containerPort": 8080}],
            "env": [{"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
            "readinessProbe": {"httpGet": {"path": "/readyz", "port": "http"}, "periodSeconds": 1},
            "resources": {"requests": {"cpu": "50m", "memory": "32Mi"}},
        }]},
    }


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0..100) of values."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


async def create_pods(session: aiohttp.ClientSession, base: str, names: list[str], *, inflight: int) -> float:
    """Create pods with `inflight` concurrent requests; returns the elapsed seconds."""
    queue = list(reversed(names))

    async def worker() -> None:
        while queue:
            name = queue.pop()
            async with session.post(base + PODS, json=pod(name)) as response:
                assert response.status == 201, await response.text()
                await response.read()

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(inflight)))
    return time.perf_counter() - start


async def time_list(session: aiohttp.ClientSession, url: str, *, accept: str, rounds: int) -> list[float]:
    """Latencies (ms) of repeated GETs of a list."""
    timings = []
    for _ in range(rounds):
        start = time.perf_counter()
        async with session.get(url, headers={"Accept": accept}) as response:
            body = await response.read()
            assert response.status == 200
        timings.append((time.perf_counter() - start) * 1000)
    assert body
    return timings


async def fan_out(session: aiohttp.ClientSession, base: str, *, watchers: int, updates: int) -> list[float]:
    """Latencies (ms) from sending an update to each watcher receiving it."""
    _, rv = await list_rv(session, base)
    sent: dict[str, float] = {}
    latencies: list[float] = []
    done = asyncio.Event()
    received = 0
    ready = 0

    async def watch() -> None:
        nonlocal received, ready
        url = base + PODS + f"?watch=true&resourceVersion={rv}&fieldSelector=metadata.name%3Dbench-0"
        async with session.get(url, timeout=aiohttp.ClientTimeout(total=None)) as response:
            ready += 1
            async for line in response.content:
                arrived = time.perf_counter()
                event = json.loads(line)
                marker = event["object"]["metadata"].get("labels", {}).get("round")
                if marker in sent:
                    latencies.append((arrived - sent[marker]) * 1000)
                    received += 1
                    if received == watchers * updates:
                        done.set()
                        return
                    if len(latencies) % watchers == 0 and marker == str(updates - 1):
                        return

    tasks = [asyncio.create_task(watch()) for _ in range(watchers)]
    while ready < watchers:
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.2)
    for index in range(updates):
        marker = str(index)
        sent[marker] = time.perf_counter()
        patch = json.dumps({"metadata": {"labels": {"round": marker}}}).encode()
        async with session.patch(base + PODS + "/bench-0", data=patch,
                                 headers={"Content-Type": "application/merge-patch+json"}) as response:
            assert response.status == 200, await response.text()
        await asyncio.sleep(0.02)
    await asyncio.wait_for(done.wait(), timeout=60)
    for task in tasks:
        task.cancel()
    return latencies


async def list_rv(session: aiohttp.ClientSession, base: str) -> tuple[int, str]:
    """The number of pods and the list's resourceVersion."""
    async with session.get(base + PODS) as response:
        body = await response.json()
    return len(body["items"]), body["metadata"]["resourceVersion"]


async def run(base: str, ca_file: Path) -> None:
    """All three measurements."""
    context = ssl.create_default_context(cafile=str(ca_file))
    connector = aiohttp.TCPConnector(ssl=context, limit=200)
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with aiohttp.ClientSession(base_url=None, connector=connector, headers=headers) as session:
        elapsed = await create_pods(session, base, [f"bench-{i}" for i in range(1000)], inflight=64)
        print(f"write throughput: 1000 pod creates in {elapsed:.2f} s = {1000 / elapsed:.0f} writes/s "
              f"(64 in flight, each durable in SQLite before the reply)")
        more = await create_pods(session, base, [f"extra-{i}" for i in range(1000)], inflight=64)
        print(f"write throughput (second 1000): {1000 / more:.0f} writes/s")
        async with session.delete(base + PODS, params={"labelSelector": "app=bench,none-such"}) as response:
            await response.read()
        for index in range(1000):
            async with session.delete(base + PODS + f"/extra-{index}") as response:
                assert response.status == 200
                await response.read()
        count, _ = await list_rv(session, base)
        assert count == 1000, count
        plain = await time_list(session, base + PODS, accept="application/json", rounds=30)
        print(f"list 1,000 pods (JSON): median {statistics.median(plain):.1f} ms, "
              f"p95 {percentile(plain, 95):.1f} ms")
        table = await time_list(session, base + PODS + "?limit=500", accept=TABLE, rounds=30)
        print(f"list 500 pods as Table (kubectl get pods page): median {statistics.median(table):.1f} ms, "
              f"p95 {percentile(table, 95):.1f} ms")
        full_table = await time_list(session, base + PODS, accept=TABLE, rounds=10)
        print(f"list 1,000 pods as Table: median {statistics.median(full_table):.1f} ms")
        latencies = await fan_out(session, base, watchers=50, updates=100)
        print(f"watch fan-out to 50 watchers ({len(latencies)} deliveries): "
              f"p50 {percentile(latencies, 50):.1f} ms, p99 {percentile(latencies, 99):.1f} ms, "
              f"max {max(latencies):.1f} ms")


def main() -> int:
    """Start the server process, measure, stop."""
    with tempfile.TemporaryDirectory(prefix="bench-apiserver-") as tmp:
        state = Path(tmp) / "state"
        ca_file = ensure_certificates(state)[0]
        port = free_port()
        context = multiprocessing.get_context("spawn")
        proc = context.Process(target=serve, args=(str(state), port), daemon=True)
        proc.start()
        try:
            wait_for_port("127.0.0.1", port, proc=_Poll(proc), timeout=60, what="the API server")
            asyncio.run(run(f"https://127.0.0.1:{port}", ca_file))
        finally:
            if proc.pid is not None and proc.is_alive():
                os.kill(proc.pid, signal.SIGTERM)
            proc.join(30)
    return 0


class _Poll:
    """Adapter giving a multiprocessing.Process the `poll()`/`returncode` that wait_for_port uses."""

    def __init__(self, proc: multiprocessing.process.BaseProcess) -> None:
        self.proc = proc

    def poll(self) -> int | None:
        """The exit code, or None while running."""
        return self.proc.exitcode

    @property
    def returncode(self) -> int | None:
        """The exit code."""
        return self.proc.exitcode


if __name__ == "__main__":
    sys.exit(main())
