"""Benchmark of the live topology view (issue 12): change -> topology updated, and first render.

Starts a private sandbox and the dashboard exactly as `make demo` does, adds pods bound to a
node that does not exist (no kubelet runs them, so only the API and the dashboard work), opens
the page in headless Chromium and prints:

1. change -> topology updated, p50/p99 over N readiness flips of one such pod (its Ready
   condition written through pods/status, as a kubelet would): wall time from just before the
   PATCH to the moment a MutationObserver in the page sees the redrawn element — the pod's
   group (counts) in the default, grouped view, and the pod itself with every group expanded;
2. first render with 100 and 1,000 pods: the time from navigation start until topology.js has
   drawn the graph the page arrived with (``data-first-render-at``; most of it is the page's own
   HTML arriving, printed beside it), the script's own time (parse the graph and draw it,
   ``data-init-ms``), the SVG element count, and the same with every group expanded.

Targets (issue 12): p99 < 200 ms with 100 pods; first render < 500 ms at 1,000 pods.
Usage: .venv/bin/python bench/topology.py [--changes 40] [--sizes 100,1000]
"""

from __future__ import annotations

import argparse
import secrets
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

from kubernetes import client, config

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from lab.launcher import Lab, free_port  # noqa: E402

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, Page

OBSERVER = """() => {
  window.__seen = {};
  const note = (node) => {
    if (!node.dataset || !node.dataset.name) return;
    const key = node.dataset.kind + ':' + node.dataset.name + ':' + node.dataset.ready;
    if (!(key in window.__seen)) window.__seen[key] = performance.timeOrigin + performance.now();
  };
  new MutationObserver((records) => {
    for (const record of records) record.addedNodes.forEach(note);
  }).observe(document.getElementById('topology'), {childList: true, subtree: true});
}"""

FIRST_RENDER = """() => {
  const root = document.getElementById('topology');
  const n = performance.getEntriesByType('navigation')[0];
  return {at: Number(root.dataset.firstRenderAt), ms: Number(root.dataset.initMs),
          html: n.responseEnd - n.startTime, kib: n.transferSize / 1024,
          elements: root.querySelectorAll('*').length,
          pods: root.querySelectorAll('[data-kind=Pod]').length,
          groups: root.querySelectorAll('[data-kind=PodGroup]').length};
}"""


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))]


def report(title: str, latencies: list[float]) -> None:
    """Print p50/p99/max of a latency sample."""
    print(f"{title}: n={len(latencies)}  p50={statistics.median(latencies):.0f} ms  "
          f"p99={percentile(latencies, 99):.0f} ms  max={max(latencies):.0f} ms", flush=True)


def set_ready(core: client.CoreV1Api, name: str, ready: bool) -> None:
    """Write the pod's status as a kubelet would: Running, Ready or not."""
    status = "True" if ready else "False"
    core.patch_namespaced_pod_status(name, "default", {"status": {
        "phase": "Running", "podIP": "127.250.0.9",
        "conditions": [{"type": "Ready", "status": status}, {"type": "ContainersReady", "status": status}]}})


def group_ready(page: Page, name: str) -> int:
    """How many ready pods the group element ``name`` counts."""
    return int(page.evaluate(
        f"document.querySelector('#topology [data-kind=PodGroup][data-name=\"{name}\"]').dataset.ready"))


def measure(page: Page, core: client.CoreV1Api, pod: str, *, count: int, key: object) -> list[float]:
    """Flip ``pod``'s readiness ``count`` times; ``key(ready)`` names the element that shows it."""
    latencies = []
    for i in range(count):
        ready = i % 2 == 0
        wanted = key(ready)  # type: ignore[operator]
        page.evaluate(f"delete window.__seen[{wanted!r}]")
        sent = time.time() * 1000
        set_ready(core, pod, ready)
        deadline = time.monotonic() + 15
        while True:
            seen = page.evaluate(f"window.__seen[{wanted!r}]")
            if seen is not None:
                latencies.append(seen - sent)
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"{wanted} never reached the topology")
            time.sleep(0.003)
        time.sleep(0.15)
    return latencies


def open_page(browser: Browser, url: str) -> tuple[BrowserContext, Page]:
    """A logged-in page whose topology has drawn the graph it arrived with."""
    context = browser.new_context(viewport={"width": 1500, "height": 1000},
                                  bypass_csp=True)  # page.wait_for_function evaluates strings
    page = context.new_page()
    page.goto(url, wait_until="load")
    page.goto(url.split("?")[0], wait_until="load")
    page.wait_for_function("document.getElementById('topology').dataset.firstRenderAt")
    return context, page


def create_pods(core: client.CoreV1Api, start: int, stop: int) -> None:
    """Pods bound to a node that does not exist, outside the Service's selector."""
    def create(i: int) -> None:
        core.create_namespaced_pod("default", {
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": f"bench-{i:04d}", "labels": {"app": "bench"}},
            "spec": {"nodeName": "bench-nowhere", "containers": [{"name": "c", "image": "lb-demo"}]}})
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(create, range(start, stop)))


def first_renders(browser: Browser, url: str, total: int) -> None:
    """Print the first render at ``total`` pods (median of 5 loads), grouped and expanded."""
    for expand in (False, True):
        runs = []
        for _ in range(5):
            context, page = open_page(browser, url)
            if expand:
                started = page.evaluate("performance.now()")
                page.click("#topology-expand")
                page.wait_for_function(
                    "document.querySelectorAll('#topology [data-kind=Pod]').length >= " + str(total))
                done = page.evaluate("performance.now()")
                figures = page.evaluate(FIRST_RENDER)
                figures["at"], figures["ms"] = done - started, float(page.evaluate(
                    "document.getElementById('topology').dataset.renderMs"))
            else:
                figures = page.evaluate(FIRST_RENDER)
            runs.append(figures)
            context.close()
        median = {key: statistics.median(r[key] for r in runs) for key in runs[0]}
        what = ("every group expanded (click -> drawn)" if expand
                else "first render (navigation start -> drawn)")
        page_part = "" if expand else (f" (the page's HTML, {median['kib']:.0f} KiB, received at "
                                       f"{median['html']:.0f} ms)")
        print(f"{total} pods, {what}: {median['at']:.0f} ms{page_part}; "
              f"topology script {median['ms']:.1f} ms; "
              f"{median['elements']:.0f} SVG elements, {median['pods']:.0f} pods and "
              f"{median['groups']:.0f} groups drawn (median of {len(runs)})", flush=True)


def main() -> None:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--changes", type=int, default=100)
    parser.add_argument("--sizes", default="100,1000", help="pod counts for the first-render figures")
    args = parser.parse_args()
    sizes = sorted(int(s) for s in args.sizes.split(","))

    from playwright.sync_api import sync_playwright

    token = secrets.token_urlsafe(16)
    with tempfile.TemporaryDirectory(prefix="lbdemo-bench-topology-") as tmp:
        lab = Lab()
        try:
            kubeconfig = lab.start_sandbox(state_dir=Path(tmp) / "state", api_port=free_port(),
                                           log_file=Path(tmp) / "sandbox.log")
            lab.start_dashboard(port=free_port(), log_file=Path(tmp) / "dashboard.log", env={
                "KUBECONFIG": str(kubeconfig), "LBDEMO_TOKEN": token,
                "LBDEMO_DB_PATH": str(Path(tmp) / "dashboard.sqlite3"), "LBDEMO_LOG_LEVEL": "WARNING"})
            api = config.new_client_from_config(config_file=str(kubeconfig))
            core = client.CoreV1Api(api)
            url = f"{lab.dashboard_url}?token={token}"
            deadline = time.monotonic() + 90
            def running() -> int:
                return sum(p.status.phase == "Running" for p in core.list_namespaced_pod("default").items)

            while running() < 4:
                if time.monotonic() > deadline:
                    raise RuntimeError("the sample pods never ran")
                time.sleep(0.5)
            existing = len(core.list_namespaced_pod("default").items)
            created = 0
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", headless=True,
                                                     args=["--no-sandbox", "--disable-gpu"])
                for size in sizes:
                    create_pods(core, created, size - existing)
                    created = size - existing
                    time.sleep(2)
                    total = len(core.list_namespaced_pod("default").items)
                    first_renders(browser, url, total)
                    if size != sizes[0]:
                        continue
                    probe = "bench-0000"
                    context, page = open_page(browser, url)
                    page.evaluate(OBSERVER)
                    group = "app=bench"
                    before = group_ready(page, group)
                    def group_key(ready: bool, group: str = group, before: int = before) -> str:
                        return f"PodGroup:{group}:{before + ready}"

                    measure(page, core, probe, count=4, key=group_key)  # warm-up
                    grouped = measure(page, core, probe, count=args.changes, key=group_key)
                    report(f"change -> topology updated, {total} pods, grouped (the pod's group)", grouped)
                    page.click("#topology-expand")
                    page.wait_for_function(
                        "document.querySelectorAll('#topology [data-kind=Pod]').length >= " + str(total))
                    expanded = measure(page, core, probe, count=args.changes,
                                       key=lambda ready: f"Pod:{probe}:{str(ready).lower()}")
                    report(f"change -> topology updated, {total} pods, all expanded (the pod)", expanded)
                    context.close()
                browser.close()
            api.close()
        finally:
            lab.stop()


if __name__ == "__main__":
    main()
