"""Benchmark of many viewers: N authenticated pages on /ws/cluster/ while the cluster changes.

For each client count (default 10, 200 and 500) it starts the dashboard exactly as `make demo`
does (daphne, `python -m daphne dashboard.asgi:application`), watching an in-memory Kubernetes
API (tests/dashboard/fakeapi.py: LIST + WATCH over loopback HTTP, so the API costs nothing
and every cycle of the machine it gets is the dashboard's), opens N websockets with a logged-in
session, each reading and acknowledging every message like the page's script, and changes
the cluster at R events/s (a label change on one of 20 backend pods, round-robin, each value a
unique marker) for D seconds. It prints:

- patch -> frame latency p50 / p99 / max: from just before the change is handed to the API
  to the moment a client receives the message carrying its marker, over every (client,
  change) pair; "missed" counts pairs never seen (should be 0);
- the longest gap without a message, per client (max over clients, and the p99 client);
- aggregate messages/s received by all clients during the load;
- the dashboard process's RSS before (idle, clients connected), its peak during the load,
  and after the clients left and 10 s passed;
- the CPU the dashboard got (cores) and its CPU microseconds per message received by a client
  (the figure that does not depend on how busy the machine is), and the 1-minute load average.

Targets (issue 10) at 200 clients, 50 events/s: p99 < 500 ms, no client without a message
for more than 1 s, RSS bounded and returned.
Usage: .venv/bin/python bench/viewers.py [--clients 10,200,500] [--rate 50] [--seconds 20]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import aiohttp
import psutil
import requests

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from lab.launcher import Lab, free_port  # noqa: E402
from tests.dashboard.canned import pod  # noqa: E402
from tests.dashboard.fakeapi import FakeApi  # noqa: E402

PODS = 20


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (nearest rank); NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))]


def rss_mib(pid: int) -> float:
    """Resident memory of a process and its children, MiB."""
    proc = psutil.Process(pid)
    total = proc.memory_info().rss
    for child in proc.children(recursive=True):
        with contextlib.suppress(psutil.NoSuchProcess):
            total += child.memory_info().rss
    return total / 2**20


class Client:
    """One page: reads every message, acks it, notes markers and gaps."""

    def __init__(self) -> None:
        self.seen: dict[str, float] = {}
        self.messages = 0
        self.last = 0.0
        self.max_gap = 0.0
        self.measuring = False
        self.closed_code: int | None = None
        self.retries = 0

    async def run(self, session: aiohttp.ClientSession, url: str, headers: dict[str, str],
                  ready: asyncio.Event, counter: list[int], total: int,
                  handshakes: asyncio.Semaphore) -> None:
        """Connect (retrying like the page's reconnect, at most 20 handshakes at a time), then read
        until the socket closes."""
        for attempt in range(20):
            try:
                async with handshakes:
                    ws = await session.ws_connect(url, headers=headers, max_msg_size=0, heartbeat=None)
                break
            except (aiohttp.ClientError, OSError):
                self.retries += 1
                await asyncio.sleep(0.2 * (attempt + 1))
        else:
            raise RuntimeError("could not connect")
        counter[0] += 1
        if counter[0] == total:
            ready.set()
        try:
            async for message in ws:
                if message.type != aiohttp.WSMsgType.TEXT:
                    break
                now = time.time()
                data = message.data
                if self.measuring and self.last:
                    self.max_gap = max(self.max_gap, now - self.last)
                self.last = now
                self.messages += self.measuring
                start = 0
                while True:
                    i = data.find("bench=m", start)
                    if i < 0:
                        break
                    end = data.find("<", i)
                    marker = data[i + 6:end]
                    self.seen.setdefault(marker, now)
                    start = end
                tail = data.rfind('data-seq="')
                if tail >= 0:
                    seq = data[tail + 10:data.index('"', tail + 10)]
                    await ws.send_str('{"type":"ack","seq":' + seq + "}")
        finally:
            self.closed_code = ws.close_code
            await ws.close()


async def load(api: FakeApi, *, rate: float, seconds: float, sent: dict[str, float]) -> None:
    """Change one backend pod's label per event, at ``rate`` per second, for ``seconds``."""
    loop = asyncio.get_running_loop()
    start = time.monotonic()
    k = 0
    while time.monotonic() - start < seconds:
        marker = f"m{k}"
        name = f"backend-{k % PODS:02d}"
        obj = pod(name, "1", labels={"app": "backend", "bench": marker})
        sent[marker] = time.time()
        await loop.run_in_executor(None, api.put, "Pod", obj)
        k += 1
        await asyncio.sleep(max(0.0, start + k / rate - time.monotonic()))


async def scenario(clients: int, *, rate: float, seconds: float) -> dict[str, float]:
    """One run: a fresh dashboard, ``clients`` pages, the load, the figures."""
    api = FakeApi()
    api.put("Node", {"kind": "Node", "apiVersion": "v1", "metadata": {"name": "node-1"},
                     "status": {"conditions": [{"type": "Ready", "status": "True"}]}})
    api.put_many("Pod", [pod(f"backend-{i:02d}", "1") for i in range(PODS)])
    tmp = Path(tempfile.mkdtemp(prefix="lbdemo-viewers-"))
    token = secrets.token_urlsafe(32)
    lab = Lab()
    port = free_port()
    lab.start_dashboard(port=port, log_file=tmp / "dashboard.log", env={
        "KUBECONFIG": str(api.kubeconfig(tmp / "kubeconfig")),
        "LBDEMO_DB_PATH": str(tmp / "db.sqlite3"), "LBDEMO_TOKEN": token, "LBDEMO_LOG_LEVEL": "WARNING"})
    pid = lab.processes[-1].pid
    try:
        login = requests.get(f"http://127.0.0.1:{port}/?token={token}", allow_redirects=False,
                             timeout=60)
        headers = {"Origin": f"http://127.0.0.1:{port}", "Cookie": f"sessionid={login.cookies['sessionid']}"}
        url = f"ws://127.0.0.1:{port}/ws/cluster/"
        pages = [Client() for _ in range(clients)]
        ready = asyncio.Event()
        handshakes = asyncio.Semaphore(20)
        counter = [0]
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(connector=connector) as session:
            tasks = []
            for page in pages:
                tasks.append(asyncio.create_task(page.run(session, url, headers, ready, counter, clients,
                                                                handshakes)))
                await asyncio.sleep(0.005)
            await asyncio.wait_for(ready.wait(), timeout=120)
            await asyncio.sleep(3)  # snapshots delivered, dashboard settled
            rss_idle = rss_mib(pid)
            peak = [rss_idle]
            sampling = threading.Event()

            def sample() -> None:
                while not sampling.wait(0.5):
                    peak[0] = max(peak[0], rss_mib(pid))

            sampler = threading.Thread(target=sample, daemon=True)
            sampler.start()
            sent: dict[str, float] = {}
            for page in pages:
                page.measuring, page.last = True, time.time()
            started = time.monotonic()
            dash_cpu = sum(psutil.Process(pid).cpu_times()[:2])
            own_cpu = sum(psutil.Process().cpu_times()[:2])
            await load(api, rate=rate, seconds=seconds, sent=sent)
            await asyncio.sleep(2)  # the last frames arrive
            duration = time.monotonic() - started
            dash_cpu = (sum(psutil.Process(pid).cpu_times()[:2]) - dash_cpu) / duration
            own_cpu = (sum(psutil.Process().cpu_times()[:2]) - own_cpu) / duration
            for page in pages:
                page.measuring = False
            sampling.set()
            sampler.join()
            connected = sum(1 for t in tasks if not t.done())
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        await asyncio.sleep(10)
        rss_after = rss_mib(pid)
    finally:
        lab.stop()
        api.stop()
    latencies = [(page.seen[m] - t) * 1000 for page in pages for m, t in sent.items() if m in page.seen]
    missed = sum(1 for page in pages for m in sent if m not in page.seen)
    gaps = [page.max_gap * 1000 for page in pages]
    messages = sum(page.messages for page in pages)
    return {"clients": clients, "connected": connected, "events": len(sent),
            "p50": percentile(latencies, 50), "p99": percentile(latencies, 99),
            "max": max(latencies, default=0), "missed": missed, "gap_max": max(gaps),
            "gap_p99": percentile(gaps, 99), "gap_median": statistics.median(gaps),
            "msgs_per_s": messages / duration, "rss_idle": rss_idle, "rss_peak": peak[0],
            "rss_after": rss_after, "dashboard_cpu": dash_cpu, "clients_cpu": own_cpu,
            "us_per_msg": dash_cpu / (messages / duration) * 1e6 if messages else float("nan"),
            "load": os.getloadavg()[0],
            "retries": sum(page.retries for page in pages)}


def main() -> None:
    """Run every client count and print one row each."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", default="10,200,500")
    parser.add_argument("--rate", type=float, default=50.0)
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    counts = [int(c) for c in args.clients.split(",")]
    print(f"many viewers: {args.rate:g} events/s for {args.seconds:g} s; "
          "latency = change -> message at the client")
    header = (f"{'clients':>7} {'conn':>5} {'events':>6} {'p50 ms':>7} {'p99 ms':>7} {'max ms':>7} "
              f"{'missed':>6} {'gap max':>8} {'gap p99':>8} {'msgs/s':>8} {'RSS idle':>9} {'peak':>7} "
              f"{'after':>7} {'cores':>5} {'us/msg':>6} {'load':>5}")
    print(header)
    results = []
    for clients in counts:
        r = asyncio.run(scenario(clients, rate=args.rate, seconds=args.seconds))
        results.append(r)
        print(f"{r['clients']:>7} {r['connected']:>5} {r['events']:>6} {r['p50']:>7.0f} {r['p99']:>7.0f} "
              f"{r['max']:>7.0f} {r['missed']:>6} {r['gap_max']:>8.0f} {r['gap_p99']:>8.0f} "
              f"{r['msgs_per_s']:>8.0f} {r['rss_idle']:>8.0f}M {r['rss_peak']:>6.0f}M "
              f"{r['rss_after']:>6.0f}M {r['dashboard_cpu']:>5.2f} {r['us_per_msg']:>6.0f} {r['load']:>5.1f}",
              flush=True)
    print(json.dumps(results))


if __name__ == "__main__":
    main()
