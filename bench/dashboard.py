"""Benchmark of the live cluster view at 1,000 / 5,000 / 10,000 pods, side by side in one run.

Starts a private sandbox and the dashboard exactly as `make demo` does, opens the page in
headless Chromium and prints, first with the sample app alone:

- change -> DOM latency (p50/p99 over N label changes on backend pods): wall time from just
  before the PATCH is sent to the moment a MutationObserver in the page sees the new label
  (browser and benchmark share the machine's clock). "idle": each change comes at least
  ``--spacing`` (250 ms) after the previous one was seen; "back-to-back": 50 ms after, as this
  bench did before issue 15 — faster than the stream's 10 frames/s, so most changes wait for
  the coalescing window (that wait, not rendering, was the ~40 ms of the old 49 ms p50);

then, for each size, with filler pods up to that size (created bound to a node that does not
exist, so no kubelet runs them; ``app=filler``, outside the Service's selector, as in issue 15's
measurement):

- first load: navigation timings (median of 3 fresh logged-in pages) and the page's bytes;
- resync: from the page asking for a snapshot (``{"type": "resync"}``, as topology.js does) to
  the page holding the complete snapshot again (its status ``data-complete``), median / max of 5;
- change -> DOM idle, and under ``--rate`` (100) pod events/s on the fillers;
- dashboard RSS; the page's DOM element count, Chromium's DOM node count and JS heap (CDP).

Targets (issue 15, at 10,000 pods): first load < 1.5 s, resync < 2 s, change -> DOM p99 < 300 ms
under load, RSS < 400 MiB, DOM nodes < 30,000, and idle p50 < 25 ms for any pod.

Old and new at the same moment (the machine is shared, so figures of two runs are not
comparable): ``--baseline DIR`` also starts the dashboard of another checkout (e.g.
``git archive main | tar -x -C DIR``) against the same sandbox; page loads alternate between
the two, and every change is measured on a page of each (the same PATCH reaches both), so
both columns see the same load. ``--gc-pauses`` has each dashboard log its full garbage
collections (a sitecustomize on its PYTHONPATH) and prints their count, total and longest
pause during each churn phase. Every figure is printed with the load average.
Usage: .venv/bin/python bench/dashboard.py [--sizes 1000,5000,10000] [--changes 60] [--rate 100]
       [--baseline DIR] [--gc-pauses] [--logs DIR]
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import psutil
from kubernetes import client, config

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from lab.launcher import Lab, free_port, wait_for_port  # noqa: E402

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, Page

OBSERVER = """() => {
  window.__seen = {};
  window.__arrived = {};
  const note = (node) => {
    if (!node.querySelectorAll) return;
    node.querySelectorAll('.pod-labels code').forEach((code) => {
      const text = code.textContent;
      if (text.startsWith('bench=') && !(text in window.__seen)) {
        window.__seen[text] = performance.timeOrigin + performance.now();
      }
    });
  };
  new MutationObserver((records) => {
    for (const record of records) record.addedNodes.forEach(note);
  }).observe(document.body, {childList: true, subtree: true});
  // When the websocket message carrying a change arrived (before htmx swaps it in).
  document.addEventListener('htmx:wsBeforeMessage', (e) => {
    if (!e.target || e.target.id !== 'live') return;
    const now = performance.timeOrigin + performance.now();
    (String(e.detail.message).match(/bench=[0-9]+/g) || []).forEach((label) => {
      if (!(label in window.__arrived)) window.__arrived[label] = now;
    });
  });
}"""


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))]


def patch(core: client.CoreV1Api, name: str, body: dict) -> None:
    """A merge PATCH of one pod whose answer is read but not decoded into client models (which
    cost the load generator more CPU than the dashboard spends on the event, on the same 2 cores)."""
    answer = core.patch_namespaced_pod(name, "default", body, _preload_content=False)
    answer.read()
    answer.release_conn()


class Latencies(list[float]):
    """change -> DOM latencies (ms), and when each change's message reached the page."""

    def __init__(self) -> None:
        super().__init__()
        self.arrivals: list[float] = []


def measure_changes(pages: list[Page], core: client.CoreV1Api, pods: list[str], *, count: int,
                    start: int, spacing: float = 0.05) -> list[Latencies]:
    """Patch a label ``count`` times; return the change -> DOM latencies in ms seen by each page
    (each page's list also carries, in ``arrivals``, when the message holding the change arrived)."""
    latencies = [Latencies() for _ in pages]
    for i in range(start, start + count):
        label = f"bench={i}"
        sent = time.time() * 1000
        patch(core, pods[i % len(pods)], {"metadata": {"labels": {"bench": str(i)}}})
        deadline = time.monotonic() + 30
        waiting = set(range(len(pages)))
        while waiting:
            for n in sorted(waiting):
                seen, arrived = pages[n].evaluate(f"[window.__seen[{label!r}], window.__arrived[{label!r}]]")
                if seen is not None:
                    latencies[n].append(seen - sent)
                    if arrived is not None:
                        latencies[n].arrivals.append(arrived - sent)
                    waiting.discard(n)
            if waiting and time.monotonic() > deadline:  # counted, as longer than any other sample
                print(f"  {label} did not reach {len(waiting)} page(s) within 30 s", flush=True)
                for n in waiting:
                    latencies[n].append(float("inf"))
                break
            time.sleep(0.005)
        time.sleep(spacing)
    return latencies


def report(title: str, latencies: list[float]) -> str:
    """Print p50/p99/max of a latency sample (and of its messages' arrival: the server's share);
    return "p50 / p99"."""
    arrivals = getattr(latencies, "arrivals", [])
    split = (f"  (its message arrived: p50={statistics.median(arrivals):.0f} "
             f"p99={percentile(arrivals, 99):.0f} ms)" if arrivals else "")
    print(f"{title}: n={len(latencies)}  p50={statistics.median(latencies):.0f} ms  "
          f"p99={percentile(latencies, 99):.0f} ms  max={max(latencies):.0f} ms{split}", flush=True)
    return f"{statistics.median(latencies):.0f} / {percentile(latencies, 99):.0f} ms"


NAVIGATION = """() => {
  const n = performance.getEntriesByType('navigation')[0];
  return {server: n.responseStart - n.requestStart, html: n.responseEnd - n.startTime,
          dom: n.domContentLoadedEventEnd - n.startTime, load: n.loadEventEnd - n.startTime,
          bytes: n.transferSize};
}"""


# Keep the page's cluster socket so the bench can ask for a resync as topology.js does.
KEEP_SOCKET = """document.addEventListener("htmx:wsOpen", (e) => {
  if (e.target && e.target.id === "live") window.__lbSocket = e.detail.socketWrapper;
});"""

RESYNC = """() => new Promise((resolve, reject) => {
  document.getElementById('nodes').dataset.old = '1';
  const t0 = performance.now();
  const onMessage = (e) => {
    if (!e.target || e.target.id !== 'live') return;
    const nodes = document.getElementById('nodes'), status = document.getElementById('status');
    if (nodes && !nodes.dataset.old && status && status.dataset.complete === 'true') {
      document.removeEventListener('htmx:wsAfterMessage', onMessage);
      resolve(performance.now() - t0);
    }
  };
  document.addEventListener('htmx:wsAfterMessage', onMessage);
  setTimeout(() => reject(new Error('no complete snapshot in 30 s')), 30000);
  window.__lbSocket.send(JSON.stringify({type: 'resync'}));
})"""


def open_page(browser: Browser, login_url: str) -> tuple[BrowserContext, Page, dict[str, float]]:
    """Log a fresh browser context in, then load the page once more as a logged-in user and
    return (context, page, its navigation timings in ms) once the page says live."""
    context = browser.new_context(viewport={"width": 1500, "height": 1000}, bypass_csp=True)
    context.add_init_script(KEEP_SOCKET)
    page = context.new_page()
    page.goto(login_url, wait_until="load")
    page.goto(login_url.split("?")[0], wait_until="load")
    timing = page.evaluate(NAVIGATION)
    page.wait_for_function(
        "() => (document.querySelector('#status .status-text') || {}).textContent === 'live'",
        timeout=120_000)
    return context, page, timing


def page_weight(context: BrowserContext, page: Page) -> dict[str, float]:
    """The page's DOM elements, Chromium's DOM nodes and used JS heap (after a GC)."""
    cdp = context.new_cdp_session(page)
    cdp.send("Performance.enable")
    cdp.send("HeapProfiler.collectGarbage")
    metrics = {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}
    cdp.detach()
    return {"elements": page.evaluate("document.getElementsByTagName('*').length"),
            "nodes": metrics.get("Nodes", 0), "heap": metrics.get("JSHeapUsedSize", 0) / 2**20}


def describe(timing: dict[str, float]) -> str:
    """One line of navigation timings."""
    return (f"server {timing['server']:.0f} ms, HTML received {timing['html']:.0f} ms, "
            f"DOMContentLoaded {timing['dom']:.0f} ms, load {timing['load']:.0f} ms, "
            f"{timing['bytes'] / 1024:.0f} KiB")


GC_LOGGER = """import gc, os, time
_path = os.environ.get("LBDEMO_BENCH_GC_LOG")
if _path:
    _log = open(_path, "a", buffering=1)
    _began = [0.0]
    def _note(phase, info):
        if phase == "start":
            _began[0] = time.perf_counter()
        elif info.get("generation") == 2:
            _log.write(f"{time.time():.3f} {(time.perf_counter() - _began[0]) * 1000:.1f}\\n")
    gc.callbacks.append(_note)
"""


@dataclass
class Dashboard:
    """One dashboard under test: its label, login URL, process and full-collection log."""

    label: str
    url: str
    process: psutil.Process
    gc_log: Path | None = None
    rows: dict[str, list[str]] = field(default_factory=dict)

    def rss(self) -> float:
        """Resident memory in MiB."""
        return self.process.memory_info().rss / 2**20

    def pauses(self, since: float) -> str:
        """Full collections logged since ``since`` (epoch seconds): count, total, longest."""
        if self.gc_log is None or not self.gc_log.exists():
            return ""
        ms = [float(line.split()[1]) for line in self.gc_log.read_text().splitlines()
              if line and float(line.split()[0]) >= since]
        if not ms:
            return "no full collection"
        return f"{len(ms)} full collections, {sum(ms):.0f} ms in all, longest {max(ms):.0f} ms"


def load() -> str:
    """The 1-minute load average, for every printed figure."""
    return f"load {os.getloadavg()[0]:.1f}"


def start_dashboard_from(lab: Lab, root: Path, *, port: int, env: dict[str, str], log_file: Path) -> None:
    """Lab.start_dashboard for the checkout at ``root`` (the baseline of an A/B run)."""
    full = {**os.environ, "DJANGO_SETTINGS_MODULE": "dashboard.settings", **env}
    migrate = subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=root,
                             env=full, capture_output=True, text=True)
    if migrate.returncode != 0:
        raise RuntimeError(f"the baseline's migrate failed:\n{migrate.stderr}")
    out = open(log_file, "ab")  # noqa: SIM115 - closed when the child exits
    proc = subprocess.Popen([sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port),
                             "dashboard.asgi:application"], cwd=root, env=full, stdout=out, stderr=out,
                            start_new_session=True)
    lab.processes.append(proc)
    wait_for_port("127.0.0.1", port, proc=proc, timeout=60, what="the baseline dashboard")


def main() -> None:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--changes", type=int, default=60)
    parser.add_argument("--sizes", default="1000,5000,10000", help="pods in the namespace, comma-separated")
    parser.add_argument("--rate", type=int, default=100, help="background pod events per second")
    parser.add_argument("--spacing", type=float, default=0.25, help="seconds between idle changes")
    parser.add_argument("--baseline", type=Path, help="a checkout whose dashboard runs beside this one")
    parser.add_argument("--gc-pauses", action="store_true", help="log each dashboard's full collections")
    parser.add_argument("--logs", type=Path, help="copy the sandbox's and dashboards' logs here at the end")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]

    from playwright.sync_api import sync_playwright

    token = secrets.token_urlsafe(16)
    with tempfile.TemporaryDirectory(prefix="lbdemo-bench-") as tmp:
        state = Path(tmp) / "state"
        lab = Lab()
        try:
            kubeconfig = lab.start_sandbox(state_dir=state, api_port=free_port(),
                                           log_file=Path(tmp) / "sandbox.log")
            dashboards: list[Dashboard] = []
            sources = [("new", REPO)] + ([("baseline", args.baseline.resolve())] if args.baseline else [])
            if args.gc_pauses:
                (Path(tmp) / "gclog").mkdir()
                (Path(tmp) / "gclog" / "sitecustomize.py").write_text(GC_LOGGER)
            for label, root in sources:
                env = {"KUBECONFIG": str(kubeconfig), "LBDEMO_TOKEN": token,
                       "LBDEMO_DB_PATH": str(Path(tmp) / f"dashboard-{label}.sqlite3"),
                       "LBDEMO_LOG_LEVEL": "WARNING"}
                gc_log = None
                if args.gc_pauses:
                    gc_log = Path(tmp) / f"gc-{label}.log"
                    env["LBDEMO_BENCH_GC_LOG"] = str(gc_log)
                    env["PYTHONPATH"] = os.pathsep.join([str(Path(tmp) / "gclog"),
                                                         os.environ.get("PYTHONPATH", "")])
                port = free_port()
                if root == REPO:
                    lab.start_dashboard(port=port, log_file=Path(tmp) / f"dashboard-{label}.log", env=env)
                else:
                    start_dashboard_from(lab, root, port=port, env=env,
                                         log_file=Path(tmp) / f"dashboard-{label}.log")
                dashboards.append(Dashboard(label, f"http://127.0.0.1:{port}/?token={token}",
                                            psutil.Process(lab.processes[-1].pid), gc_log))
            api = config.new_client_from_config(config_file=str(kubeconfig))
            core = client.CoreV1Api(api)
            deadline = time.monotonic() + 90
            while True:
                listed = core.list_namespaced_pod("default", label_selector="app=backend").items
                backend = [p.metadata.name for p in listed if p.status.phase == "Running"]
                if len(backend) >= 3:
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError("the backend pods never ran")
                time.sleep(0.5)
            names = ", ".join(f"{d.label} ({root}, pid {d.process.pid})"
                              for d, (_, root) in zip(dashboards, sources, strict=True))
            print(f"{load()} on {os.cpu_count()} cores; dashboards: {names}", flush=True)

            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", headless=True,
                                                     args=["--no-sandbox", "--disable-gpu"])
                opened = [open_page(browser, d.url) for d in dashboards]
                for d, (_, _, timing) in zip(dashboards, opened, strict=True):
                    print(f"[{d.label}] page load with {len(backend) + 1} pods: {describe(timing)}")
                pages = [page for _, page, _ in opened]
                for page in pages:
                    page.evaluate(OBSERVER)
                measure_changes(pages, core, backend, count=5, start=0, spacing=args.spacing)  # warm-up
                for title, start, spacing in (
                        (f"idle (changes {args.spacing * 1000:.0f} ms apart)", 1000, args.spacing),
                        ("back-to-back (50 ms apart: above 10 frames/s)", 1500, 0.05)):
                    results = measure_changes(pages, core, backend, count=args.changes, start=start,
                                              spacing=spacing)
                    for d, latencies in zip(dashboards, results, strict=True):
                        report(f"[{d.label}] change -> DOM, sample app, {title} ({load()})", latencies)
                for context, _, _ in opened:
                    context.close()

                created = 0
                serial = 2000
                for size in sizes:
                    wanted = max(0, size - len(backend) - 1)

                    def create(i: int) -> None:
                        core.create_namespaced_pod("default", {
                            "apiVersion": "v1", "kind": "Pod",
                            "metadata": {"name": f"filler-{i:05d}", "labels": {"app": "filler"}},
                            "spec": {"nodeName": "bench-nowhere",
                                     "containers": [{"name": "c", "image": "lb-demo"}]}})
                    print(f"creating pods up to {size} ...", flush=True)
                    with ThreadPoolExecutor(8) as pool:
                        list(pool.map(create, range(created, wanted)))
                    created = max(created, wanted)
                    time.sleep(2)
                    total = len(core.list_namespaced_pod("default").items)
                    timings: dict[str, list[dict[str, float]]] = {d.label: [] for d in dashboards}
                    for _ in range(3):  # alternating, so both see the same moments
                        for d in dashboards:
                            context, page, timing = open_page(browser, d.url)
                            timings[d.label].append(timing)
                            context.close()
                    medians = {}
                    for d in dashboards:
                        runs = timings[d.label]
                        medians[d.label] = {key: statistics.median(t[key] for t in runs) for key in runs[0]}
                        print(f"[{d.label}] first page load with {total} pods ({load()}): the first "
                              f"{runs[0]['load']:.0f} ms (server {runs[0]['server']:.0f} ms), median of 3: "
                              f"{describe(medians[d.label])}", flush=True)
                    opened = [open_page(browser, d.url) for d in dashboards]
                    resyncs: dict[str, list[float]] = {d.label: [] for d in dashboards}
                    for _ in range(5):
                        time.sleep(1.2)  # the dashboard honours a resync at most once a second
                        for d, (_, page, _) in zip(dashboards, opened, strict=True):
                            resyncs[d.label].append(page.evaluate(RESYNC))
                    weights = {}
                    for d, (context, page, _) in zip(dashboards, opened, strict=True):
                        r = resyncs[d.label]
                        print(f"[{d.label}] resync -> complete snapshot ({load()}): median "
                              f"{statistics.median(r):.0f} ms, max {max(r):.0f} ms", flush=True)
                        weights[d.label] = weight = page_weight(context, page)
                        print(f"[{d.label}] page: {weight['elements']:.0f} elements, {weight['nodes']:.0f} "
                              f"DOM nodes, JS heap {weight['heap']:.1f} MiB", flush=True)
                        page.evaluate(OBSERVER)
                    pages = [page for _, page, _ in opened]
                    idle = measure_changes(pages, core, backend, count=args.changes, start=serial,
                                           spacing=args.spacing)
                    serial += args.changes
                    idle_rows = [report(f"[{d.label}] change -> DOM with {total} pods, idle ({load()})", lat)
                                 for d, lat in zip(dashboards, idle, strict=True)]
                    rss_idle = [d.rss() for d in dashboards]
                    began = time.time()
                    loaded, rate, failed = churned(pages, core, kubeconfig, backend, fillers=created,
                                                   rate=args.rate, count=args.changes, start=serial,
                                                   spacing=args.spacing)
                    serial += args.changes
                    for i, d in enumerate(dashboards):
                        under = report(f"[{d.label}] change -> DOM with {total} pods under {rate:.0f} pod "
                                       f"events/s ({failed} background patches failed; {load()})", loaded[i])
                        pauses = d.pauses(began)
                        if pauses:
                            print(f"[{d.label}] during the churn: {pauses}", flush=True)
                        m, r, w = medians[d.label], resyncs[d.label], weights[d.label]
                        d.rows[f"{total:,} pods"] = [
                            f"{m['load']:.0f} ms ({m['bytes'] / 1024:.0f} KiB)",
                            f"{timings[d.label][0]['load']:.0f} ms",
                            f"{statistics.median(r):.0f} / {max(r):.0f} ms", idle_rows[i], under,
                            f"{max(rss_idle[i], d.rss()):.0f} MiB",
                            f"{w['elements']:.0f} / {w['nodes']:.0f}", f"{w['heap']:.1f} MiB"]
                    for context, _, _ in opened:
                        context.close()
                browser.close()
            api.close()
            labels = ["first load (load event), median of 3", "first load, the first one",
                      "resync median / max", "change -> DOM idle p50 / p99",
                      f"change -> DOM under {args.rate}/s p50 / p99", "dashboard RSS (peak)",
                      "DOM elements / nodes", "JS heap used"]
            print(f"\n({load()} at the end)")
            columns = [(d, size) for size in dashboards[0].rows for d in dashboards]
            print("| | " + " | ".join(f"{size} ({d.label})" if len(dashboards) > 1 else size
                                      for d, size in columns) + " |")
            print("|---|" + "---|" * len(columns))
            for i, label in enumerate(labels):
                print(f"| {label} | " + " | ".join(d.rows[size][i] for d, size in columns) + " |")
        finally:
            lab.stop()
            for log_file in sorted(Path(tmp).glob("*.log")):
                dropped = log_file.read_text(errors="replace").count("dropping a cluster websocket")
                if dropped:
                    print(f"{log_file.name}: {dropped} cluster websockets dropped (stopped reading)")
                if args.logs:
                    args.logs.mkdir(parents=True, exist_ok=True)
                    shutil.copy(log_file, args.logs / log_file.name)


def churned(pages: list[Page], core: client.CoreV1Api, kubeconfig: Path, backend: list[str], *,
            fillers: int, rate: int, count: int, start: int,
            spacing: float) -> tuple[list[Latencies], float, int]:
    """change -> DOM latencies while ``rate`` annotation patches per second hit the fillers."""
    stop = threading.Event()
    sent = [0]
    failed = [0]

    def churn(worker: int, workers: int) -> None:
        pace = workers / rate
        n = worker
        next_at = time.monotonic()
        own = client.CoreV1Api(config.new_client_from_config(config_file=str(kubeconfig)))
        while not stop.is_set():
            try:
                tick = {"metadata": {"annotations": {"bench/tick": str(n)}}}
                patch(own, f"filler-{n % max(1, fillers):05d}", tick)
                sent[0] += 1
            except Exception:
                failed[0] += 1
            n += workers
            next_at += pace
            time.sleep(max(0.0, next_at - time.monotonic()))

    workers = 4
    threads = [threading.Thread(target=churn, args=(w, workers), daemon=True) for w in range(workers)]
    began = time.monotonic()
    for thread in threads:
        thread.start()
    time.sleep(2)
    try:
        latencies = measure_changes(pages, core, backend, count=count, start=start, spacing=spacing)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    return latencies, sent[0] / (time.monotonic() - began), failed[0]


if __name__ == "__main__":
    main()
