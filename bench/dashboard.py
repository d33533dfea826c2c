"""Benchmark of the live cluster view: how fast an API change reaches the browser's DOM.

Starts a private sandbox and the dashboard exactly as `make demo` does, opens the page in
headless Chromium and prints:

1. change -> DOM latency (p50/p99 over N label changes on backend pods): wall time from just
   before the PATCH is sent to the moment a MutationObserver in the page sees the new label
   (browser and benchmark share the machine's clock);
2. with 1,000 more pods in the namespace (created bound to a node that does not exist, so no
   kubelet runs them): first page load time, the dashboard process's RSS, and the same
   change -> DOM latency while a background load modifies pods at 100 events/s.

Targets (issue 6): p50 < 100 ms, p99 < 300 ms; page load < 1 s; p99 under load < 500 ms.
Usage: .venv/bin/python bench/dashboard.py [--changes 60] [--filler 1000] [--rate 100]
"""

from __future__ import annotations

import argparse
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
                    start: int) -> list[float]:
    """Patch a label ``count`` times; return the change -> DOM latencies in ms."""
    latencies = []
    for i in range(start, start + count):
        label = f"bench={i}"
        sent = time.time() * 1000
        core.patch_namespaced_pod(pods[i % len(pods)], "default", {"metadata": {"labels": {"bench": str(i)}}})
        deadline = time.monotonic() + 15
        while True:
            seen = page.evaluate(f"window.__seen[{label!r}]")
            if seen is not None:
                latencies.append(seen - sent)
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"{label} never reached the page")
            time.sleep(0.005)
        time.sleep(0.05)
    return latencies


def report(title: str, latencies: list[float]) -> None:
    """Print p50/p99/max of a latency sample."""
    print(f"{title}: n={len(latencies)}  p50={statistics.median(latencies):.0f} ms  "
          f"p99={percentile(latencies, 99):.0f} ms  max={max(latencies):.0f} ms")


NAVIGATION = """() => {
  const n = performance.getEntriesByType('navigation')[0];
  return {server: n.responseStart - n.requestStart, html: n.responseEnd - n.startTime,
          dom: n.domContentLoadedEventEnd - n.startTime, load: n.loadEventEnd - n.startTime,
          bytes: n.transferSize};
}"""


def open_page(browser: Browser, login_url: str) -> tuple[BrowserContext, Page, dict[str, float]]:
    """Log a fresh browser context in, then load the page once more as a logged-in user and
    return (context, page, its navigation timings in ms)."""
    context = browser.new_context(viewport={"width": 1500, "height": 1000}, bypass_csp=True)
    page = context.new_page()
    page.goto(login_url, wait_until="load")
    page.goto(login_url.split("?")[0], wait_until="load")
    timing = page.evaluate(NAVIGATION)
    page.wait_for_selector("#status .status-text")
    return context, page, timing


def describe(timing: dict[str, float]) -> str:
    """One line of navigation timings."""
    return (f"server {timing['server']:.0f} ms, HTML received {timing['html']:.0f} ms, "
            f"DOMContentLoaded {timing['dom']:.0f} ms, load {timing['load']:.0f} ms, "
            f"{timing['bytes'] / 1024:.0f} KiB")


def main() -> None:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--changes", type=int, default=60)
    parser.add_argument("--filler", type=int, default=1000)
    parser.add_argument("--rate", type=int, default=100, help="background pod events per second")
    args = parser.parse_args()

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

            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", headless=True,
                                                     args=["--no-sandbox", "--disable-gpu"])
                context, page, timing = open_page(browser, url)
                print(f"page load with {len(backend) + 1} pods: {describe(timing)}")
                page.evaluate(OBSERVER)
                measure_changes(page, core, backend, count=5, start=0)  # warm-up
                idle = measure_changes(page, core, backend, count=args.changes, start=1000)
                report("change -> DOM, idle cluster", idle)
                context.close()

                print(f"creating {args.filler} pods bound to a node that does not exist ...")
                def create(i: int) -> None:
                    core.create_namespaced_pod("default", {
                        "apiVersion": "v1", "kind": "Pod",
                        "metadata": {"name": f"filler-{i:04d}", "labels": {"app": "filler"}},
                        "spec": {"nodeName": "bench-nowhere",
                                 "containers": [{"name": "c", "image": "lb-demo"}]}})
                with ThreadPoolExecutor(8) as pool:
                    list(pool.map(create, range(args.filler)))
                time.sleep(2)
                total = len(core.list_namespaced_pod("default").items)
                timings = []
                for _ in range(5):
                    context, page, timing = open_page(browser, url)
                    timings.append(timing)
                    cards = page.locator(".pod-card").count()
                    context.close()
                median = {key: statistics.median(t[key] for t in timings) for key in timings[0]}
                print(f"first page load with {total} pods ({cards} cards), median of {len(timings)}: "
                      f"{describe(median)}")
                print(f"dashboard RSS with {total} pods: {dashboard.memory_info().rss / 2**20:.1f} MiB")

                context, page, _ = open_page(browser, url)
                page.evaluate(OBSERVER)
                stop = threading.Event()
                sent = [0]

                failed = [0]

                def churn(worker: int, workers: int) -> None:
                    pace = workers / args.rate
                    n = worker
                    next_at = time.monotonic()
                    own = client.CoreV1Api(config.new_client_from_config(config_file=str(kubeconfig)))
                    while not stop.is_set():
                        try:
                            own.patch_namespaced_pod(f"filler-{n % args.filler:04d}", "default",
                                                     {"metadata": {"annotations": {"bench/tick": str(n)}}})
                            sent[0] += 1
                        except Exception:
                            failed[0] += 1
                        n += workers
                        next_at += pace
                        time.sleep(max(0.0, next_at - time.monotonic()))

                workers = 4
                threads = [threading.Thread(target=churn, args=(w, workers), daemon=True)
                           for w in range(workers)]
                churn_started = time.monotonic()
                for thread in threads:
                    thread.start()
                time.sleep(2)
                loaded_latencies = measure_changes(page, core, backend, count=args.changes, start=2000)
                stop.set()
                for thread in threads:
                    thread.join()
                rate = sent[0] / (time.monotonic() - churn_started)
                report(f"change -> DOM with {total} pods under {rate:.0f} pod events/s "
                       f"({failed[0]} background patches failed)", loaded_latencies)
                print(f"dashboard RSS after the load: {dashboard.memory_info().rss / 2**20:.1f} MiB")
                context.close()
                browser.close()
            api.close()
        finally:
            lab.stop()


if __name__ == "__main__":
    main()
