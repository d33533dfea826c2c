"""Benchmark of the sandbox at scale: 1,000 / 5,000 / 10,000 pods on simulated nodes, side by side.

Starts `python -m sandbox up --nodes 1 --simulated-nodes 100` (pending 0.1 s, no creating or
ready delay: one status write per pod) and, unless
``--no-dashboard``, the dashboard against it exactly as `make demo` does. The crowd Deployment
(`docs/examples/crowd.yaml`, in ``default``) is scaled to each size in turn; at each it prints:

- time to N pods Ready (from the scale request to the last pod Ready, polled by LIST every 1 s);
- API LIST of the namespace's pods, JSON: p50/p99 over ``--rounds`` requests of the whole list
  and of one page of 500 (what client-go's reflector and kubectl ask for), the time of a whole
  paginated relist, and one page of 500 as the Table `kubectl get pods` asks for;
- watch fan-out to 50 watchers of the whole namespace (as informers watch): latency from
  sending an annotation PATCH on one pod to each watcher reading its event, p50/p99;
- the RSS of the API server (the `sandbox up` process) and of the node-agents process;
- with the dashboard: its first page load (headless Chromium, navigation timings, median of 3)
  and its RSS.

Targets (issue 15) at 10,000 pods: LIST p99 < 100 ms, fan-out p99 < 50 ms. No assertions:
figures only. Usage: .venv/bin/python bench/scale.py [--sizes 1000,5000,10000] [--no-dashboard]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import ssl
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import psutil
import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from lab.launcher import Lab, free_port  # noqa: E402

PODS = "/api/v1/namespaces/default/pods"
SCALE = "/apis/apps/v1/namespaces/default/deployments/crowd/scale"
TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"
SIMULATED = 100


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))]


def is_ready(pod: dict) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (pod.get("status") or {}).get("conditions") or [])


class Api:
    """An aiohttp session to the sandbox, authenticated with the kubeconfig's token."""

    def __init__(self, kubeconfig: Path, ca_file: Path) -> None:
        config = yaml.safe_load(kubeconfig.read_text())
        self.base = config["clusters"][0]["cluster"]["server"]
        self.headers = {"Authorization": f"Bearer {config['users'][0]['user']['token']}"}
        self.ssl = ssl.create_default_context(cafile=str(ca_file))
        self.session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Api:
        self.session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=self.ssl, limit=200),
                                             headers=self.headers)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.session is not None
        await self.session.close()

    async def json(self, method: str, path: str, body: object = None, *, content_type: str = "") -> dict:
        assert self.session is not None
        headers = {"Content-Type": content_type or "application/json"}
        data = json.dumps(body).encode() if body is not None else None
        async with self.session.request(method, self.base + path, data=data, headers=headers) as response:
            text = await response.read()
            if response.status >= 400:
                raise RuntimeError(f"{method} {path}: {response.status} {text[:300]!r}")
            return json.loads(text)

    async def timed_get(self, path: str, *, accept: str = "application/json") -> tuple[float, bytes]:
        assert self.session is not None
        start = time.perf_counter()
        async with self.session.get(self.base + path, headers={"Accept": accept}) as response:
            body = await response.read()
            assert response.status == 200, body[:200]
        return (time.perf_counter() - start) * 1000, body


async def wait_nodes(api: Api, count: int, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while len((await api.json("GET", "/api/v1/nodes"))["items"]) < count:
        if time.monotonic() > deadline:
            raise RuntimeError(f"fewer than {count} nodes after {timeout:.0f} s")
        await asyncio.sleep(0.5)


async def ready_count(api: Api) -> tuple[int, int]:
    listed = await api.json("GET", PODS + "?labelSelector=app%3Dcrowd")
    pods = [p for p in listed["items"] if not p["metadata"].get("deletionTimestamp")]
    return len(pods), sum(1 for p in pods if is_ready(p))


async def scale_to(api: Api, replicas: int, *, timeout: float) -> float:
    """Scale the crowd and wait until exactly ``replicas`` pods are Ready; the seconds it took."""
    start = time.perf_counter()
    await api.json("PATCH", SCALE, {"spec": {"replicas": replicas}},
                   content_type="application/merge-patch+json")
    deadline = time.monotonic() + timeout
    while True:
        total, ready = await ready_count(api)
        if total == replicas and ready == replicas:
            return time.perf_counter() - start
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {ready}/{replicas} Ready ({total} pods) after {timeout:.0f} s")
        await asyncio.sleep(1.0)


async def fan_out(api: Api, pod: str, *, watchers: int, updates: int) -> list[float]:
    """Latencies (ms) from sending an annotation PATCH to each of ``watchers`` namespace watches
    reading it."""
    assert api.session is not None
    rv = (await api.json("GET", PODS + "?limit=1"))["metadata"]["resourceVersion"]
    sent: dict[str, float] = {}
    latencies: list[float] = []
    got = [0]
    ready = [0]
    done = asyncio.Event()

    async def watch() -> None:
        url = api.base + PODS + f"?watch=true&resourceVersion={rv}&allowWatchBookmarks=true"
        async with api.session.get(url, timeout=aiohttp.ClientTimeout(total=None)) as response:  # type: ignore[union-attr]
            ready[0] += 1
            async for line in response.content:
                arrived = time.perf_counter()
                if b"bench-round" not in line:
                    continue
                event = json.loads(line)
                marker = ((event["object"]["metadata"].get("annotations") or {}).get("bench-round"))
                if marker in sent:
                    latencies.append((arrived - sent[marker]) * 1000)
                    got[0] += 1
                    if got[0] == watchers * updates:
                        done.set()

    tasks = [asyncio.create_task(watch()) for _ in range(watchers)]
    deadline = time.monotonic() + 60
    while ready[0] < watchers and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    await asyncio.sleep(1.0)
    for index in range(updates):
        marker = f"{time.time_ns()}-{index}"
        sent[marker] = time.perf_counter()
        await api.json("PATCH", f"{PODS}/{pod}", {"metadata": {"annotations": {"bench-round": marker}}},
                       content_type="application/merge-patch+json")
        await asyncio.sleep(0.05)
    try:
        await asyncio.wait_for(done.wait(), timeout=60)
    except TimeoutError:
        print(f"    (fan-out: only {got[0]} of {watchers * updates} deliveries arrived)")
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return latencies


def rss_mib(pid: int) -> float:
    return psutil.Process(pid).memory_info().rss / 2**20


def node_agents_pid(sandbox_pid: int) -> int | None:
    for child in psutil.Process(sandbox_pid).children():
        with_args = " ".join(child.cmdline())
        if "sandbox.cluster" in with_args:
            return child.pid
    return None


def page_load(url: str, runs: int = 3) -> str:
    """Median navigation timings of the dashboard's first load (bench/dashboard.py's way)."""
    from playwright.sync_api import sync_playwright

    from bench.dashboard import describe, open_page

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", headless=True,
                                             args=["--no-sandbox", "--disable-gpu"])
        try:
            timings = []
            for _ in range(runs):
                context, _page, timing = open_page(browser, url)
                timings.append(timing)
                context.close()
        finally:
            browser.close()
    median = {key: statistics.median(t[key] for t in timings) for key in timings[0]}
    return describe(median)


async def measure(api: Api, size: int, *, rounds: int, lab: Lab, dashboard_url: str | None,
                  dashboard_pid: int | None, timeout: float) -> dict[str, str]:
    row: dict[str, str] = {}
    try:
        elapsed = await scale_to(api, size, timeout=timeout)
        row["time to Ready"] = f"{elapsed:.1f} s"
    except RuntimeError as exc:
        row["time to Ready"] = f"FAILED: {exc}"
    plain = []
    for _ in range(rounds):
        ms, body = await api.timed_get(PODS)
        plain.append(ms)
    row["LIST JSON p50/p99"] = f"{statistics.median(plain):.0f} / {percentile(plain, 99):.0f} ms " \
                               f"({len(body) / 2**20:.1f} MiB)"
    page = [(await api.timed_get(PODS + "?limit=500"))[0] for _ in range(rounds)]
    row["LIST JSON page of 500 p50/p99"] = f"{statistics.median(page):.0f} / {percentile(page, 99):.0f} ms"
    relists = []
    for _ in range(3):  # a reflector's paginated relist: 500 per page, following continue
        start, token = time.perf_counter(), ""
        while True:
            listed = await api.json("GET", PODS + "?limit=500" + (f"&continue={token}" if token else ""))
            token = listed["metadata"].get("continue") or ""
            if not token:
                break
        relists.append((time.perf_counter() - start) * 1000)
    row["paginated relist (500/page)"] = f"{statistics.median(relists):.0f} ms (median of 3)"
    table = [(await api.timed_get(PODS + "?limit=500", accept=TABLE))[0] for _ in range(rounds)]
    row["LIST Table 500 p50/p99"] = f"{statistics.median(table):.0f} / {percentile(table, 99):.0f} ms"
    one = (await api.json("GET", PODS + "?labelSelector=app%3Dcrowd&limit=1"))["items"][0]["metadata"]["name"]
    latencies = await fan_out(api, one, watchers=50, updates=40)
    if latencies:
        row["fan-out 50 p50/p99"] = f"{percentile(latencies, 50):.1f} / {percentile(latencies, 99):.1f} ms " \
                                    f"(n={len(latencies)})"
    sandbox_pid = lab.processes[0].pid
    row["API server RSS"] = f"{rss_mib(sandbox_pid):.0f} MiB"
    agents = node_agents_pid(sandbox_pid)
    if agents:
        row["node-agents RSS"] = f"{rss_mib(agents):.0f} MiB"
    if dashboard_url and dashboard_pid:
        try:
            row["dashboard first load"] = await asyncio.to_thread(page_load, dashboard_url)
        except Exception as exc:  # a figure, not a test
            row["dashboard first load"] = f"FAILED: {type(exc).__name__}: {str(exc)[:120]}"
        row["dashboard RSS"] = f"{rss_mib(dashboard_pid):.0f} MiB"
    row["load average"] = " ".join(f"{x:.1f}" for x in os.getloadavg())
    return row


async def run(args: argparse.Namespace, lab: Lab, kubeconfig: Path, state: Path, dashboard_url: str | None,
              dashboard_pid: int | None) -> None:
    crowd = yaml.safe_load((REPO / "docs" / "examples" / "crowd.yaml").read_text())
    crowd["spec"]["replicas"] = 0
    rows: dict[int, dict[str, str]] = {}
    async with Api(kubeconfig, state / "ca.crt") as api:
        await wait_nodes(api, SIMULATED + 1)
        await api.json("POST", "/apis/apps/v1/namespaces/default/deployments", crowd)
        for size in args.sizes:
            print(f"scaling the crowd to {size} pods ...", flush=True)
            rows[size] = await measure(api, size, rounds=args.rounds, lab=lab, dashboard_url=dashboard_url,
                                       dashboard_pid=dashboard_pid, timeout=args.timeout)
            for key, value in rows[size].items():
                print(f"  {key}: {value}", flush=True)
    keys = list(dict.fromkeys(k for row in rows.values() for k in row))
    print("\nside by side (pods in default, crowd on simulated nodes):")
    width = max(len(k) for k in keys)
    for key in keys:
        print(f"{key:<{width}}  " + "  |  ".join(f"{size}: {rows[size].get(key, '-')}" for size in rows))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,5000,10000")
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds to wait for each size Ready")
    parser.add_argument("--no-dashboard", action="store_true")
    args = parser.parse_args()
    args.sizes = [int(s) for s in args.sizes.split(",")]
    token = secrets.token_urlsafe(16)
    with tempfile.TemporaryDirectory(prefix="lbdemo-scale-") as tmp:
        state = Path(tmp) / "state"
        lab = Lab()
        try:
            kubeconfig = lab.start_sandbox(
                state_dir=state, api_port=free_port(), nodes=1, simulated_nodes=SIMULATED,
                simulated_delays={"pending": 0.1, "creating": 0.0, "ready": 0.0, "grace": 0.2},
                log_file=Path(tmp) / "sandbox.log", timeout=120)
            dashboard_url = dashboard_pid = None
            if not args.no_dashboard:
                lab.start_dashboard(port=free_port(), log_file=Path(tmp) / "dashboard.log", env={
                    "KUBECONFIG": str(kubeconfig), "LBDEMO_TOKEN": token,
                    "LBDEMO_DB_PATH": str(Path(tmp) / "dashboard.sqlite3"), "LBDEMO_LOG_LEVEL": "WARNING"})
                dashboard_pid = lab.processes[-1].pid
                dashboard_url = f"{lab.dashboard_url}?token={token}"
            print(f"load average at start: {' '.join(f'{x:.1f}' for x in os.getloadavg())}; "
                  f"{os.cpu_count()} CPUs", flush=True)
            asyncio.run(run(args, lab, kubeconfig, state, dashboard_url, dashboard_pid))
        finally:
            lab.stop()


if __name__ == "__main__":
    main()
