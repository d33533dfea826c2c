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
Usage: .venv/bin/python bench/dashboard.py [--sizes 1000,5000,10000] [--changes 60] [--rate 100]
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

import psutil
from kubernetes import client, config

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from lab.launcher import Lab, free_port  # noqa: E402

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, Page

OBSERVER = """() => {
  window.__seen = {};
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
}"""


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))]


def measure_changes(page: Page, core: client.CoreV1Api, pods: list[str], *, count: int,
                    start: int, spacing: float = 0.05) -> list[float]:
    """Patch a label ``count`` times; return the change -> DOM latencies in ms."""
    latencies = []
    for i in range(start, start + count):
        label = f"bench={i}"
        sent = time.time() * 1000
        core.patch_namespaced_pod(pods[i % len(pods)], "default", {"metadata": {"labels": {"bench": str(i)}}})
        deadline = time.monotonic() + 30
        while True:
            seen = page.evaluate(f"window.__seen[{label!r}]")
            if seen is not None:
                latencies.append(seen - sent)
                break
            if time.monotonic() > deadline:  # counted, as longer than any other sample
                print(f"  {label} did not reach the page within 30 s", flush=True)
                latencies.append(float("inf"))
                break
            time.sleep(0.005)
        time.sleep(spacing)
    return latencies


def report(title: str, latencies: list[float]) -> str:
    """Print p50/p99/max of a latency sample; return "p50 / p99"."""
    print(f"{title}: n={len(latencies)}  p50={statistics.median(latencies):.0f} ms  "
          f"p99={percentile(latencies, 99):.0f} ms  max={max(latencies):.0f} ms", flush=True)
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


def main() -> None:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--changes", type=int, default=60)
    parser.add_argument("--sizes", default="1000,5000,10000", help="pods in the namespace, comma-separated")
    parser.add_argument("--rate", type=int, default=100, help="background pod events per second")
    parser.add_argument("--spacing", type=float, default=0.25, help="seconds between idle changes")
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
            lab.start_dashboard(port=free_port(), log_file=Path(tmp) / "dashboard.log", env={
                "KUBECONFIG": str(kubeconfig), "LBDEMO_TOKEN": token,
                "LBDEMO_DB_PATH": str(Path(tmp) / "dashboard.sqlite3"), "LBDEMO_LOG_LEVEL": "WARNING"})
            dashboard = psutil.Process(lab.processes[-1].pid)
            api = config.new_client_from_config(config_file=str(kubeconfig))
            core = client.CoreV1Api(api)
            url = f"{lab.dashboard_url}?token={token}"
            deadline = time.monotonic() + 90
            while True:
                listed = core.list_namespaced_pod("default", label_selector="app=backend").items
                backend = [p.metadata.name for p in listed if p.status.phase == "Running"]
                if len(backend) >= 3:
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError("the backend pods never ran")
                time.sleep(0.5)
            print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores", flush=True)

            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", headless=True,
                                                     args=["--no-sandbox", "--disable-gpu"])
                context, page, timing = open_page(browser, url)
                print(f"page load with {len(backend) + 1} pods: {describe(timing)}")
                page.evaluate(OBSERVER)
                measure_changes(page, core, backend, count=5, start=0, spacing=args.spacing)  # warm-up
                report(f"change -> DOM, sample app, idle (changes {args.spacing * 1000:.0f} ms apart)",
                       measure_changes(page, core, backend, count=args.changes, start=1000,
                                       spacing=args.spacing))
                report("change -> DOM, sample app, back-to-back (50 ms apart: above 10 frames/s)",
                       measure_changes(page, core, backend, count=args.changes, start=1500, spacing=0.05))
                context.close()

                rows: dict[str, list[str]] = {}
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
                    timings = []
                    for _ in range(3):
                        context, page, timing = open_page(browser, url)
                        timings.append(timing)
                        context.close()
                    median = {key: statistics.median(t[key] for t in timings) for key in timings[0]}
                    print(f"first page load with {total} pods, median of 3: {describe(median)}", flush=True)
                    context, page, _ = open_page(browser, url)
                    resyncs = []
                    for _ in range(5):
                        time.sleep(1.2)  # the dashboard honours a resync at most once a second
                        resyncs.append(page.evaluate(RESYNC))
                    print(f"resync -> complete snapshot: median {statistics.median(resyncs):.0f} ms, "
                          f"max {max(resyncs):.0f} ms", flush=True)
                    weight = page_weight(context, page)
                    print(f"page: {weight['elements']:.0f} elements, {weight['nodes']:.0f} DOM nodes, "
                          f"JS heap {weight['heap']:.1f} MiB", flush=True)
                    page.evaluate(OBSERVER)
                    idle = report(f"change -> DOM with {total} pods, idle",
                                  measure_changes(page, core, backend, count=args.changes, start=serial,
                                                  spacing=args.spacing))
                    serial += args.changes
                    rss_idle = dashboard.memory_info().rss / 2**20
                    loaded, rate, failed = churned(page, core, kubeconfig, backend, fillers=created,
                                                   rate=args.rate, count=args.changes, start=serial,
                                                   spacing=args.spacing)
                    serial += args.changes
                    under = report(f"change -> DOM with {total} pods under {rate:.0f} pod events/s "
                                   f"({failed} background patches failed)", loaded)
                    rss = max(rss_idle, dashboard.memory_info().rss / 2**20)
                    context.close()
                    rows[f"{total:,} pods"] = [
                        f"{median['load']:.0f} ms ({median['bytes'] / 1024:.0f} KiB)",
                        f"{statistics.median(resyncs):.0f} / {max(resyncs):.0f} ms", idle, under,
                        f"{rss:.0f} MiB", f"{weight['elements']:.0f} / {weight['nodes']:.0f}",
                        f"{weight['heap']:.1f} MiB"]
                browser.close()
            api.close()
            labels = ["first load (load event)", "resync median / max", "change -> DOM idle p50 / p99",
                      f"change -> DOM under {args.rate}/s p50 / p99", "dashboard RSS (peak)",
                      "DOM elements / nodes", "JS heap used"]
            print()
            print("| | " + " | ".join(rows) + " |")
            print("|---|" + "---|" * len(rows))
            for i, label in enumerate(labels):
                print(f"| {label} | " + " | ".join(r[i] for r in rows.values()) + " |")
        finally:
            lab.stop()


def churned(page: Page, core: client.CoreV1Api, kubeconfig: Path, backend: list[str], *, fillers: int,
            rate: int, count: int, start: int, spacing: float) -> tuple[list[float], float, int]:
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
                own.patch_namespaced_pod(f"filler-{n % max(1, fillers):05d}", "default",
                                         {"metadata": {"annotations": {"bench/tick": str(n)}}})
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
        latencies = measure_changes(page, core, backend, count=count, start=start, spacing=spacing)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    return latencies, sent[0] / (time.monotonic() - began), failed[0]


if __name__ == "__main__":
    main()
