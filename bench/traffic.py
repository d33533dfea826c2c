"""Benchmark of the traffic lab: the engine's throughput next to Debian's `hey` on the same target,
and what a 1,000 requests/s run streaming to the page costs the dashboard.

Run: ``.venv/bin/python bench/traffic.py [--seconds S] [--conns N] [--skip-dashboard]``.

1. Throughput, keep-alive and new-connection, engine (``python -m dashboard.traffic``) vs
   ``hey`` with the same connection count, alternating on the same target (best of --rounds): a backend_pod
   on loopback, pinned to one core (load generators on the other), then the same through a
   sandbox Service (the real TCP proxy in between).
2. A lab like `make demo` (sandbox + dashboard), the page open in headless Chromium, a 1,000
   requests/s keep-alive run started from the panel: the dashboard process's CPU (it runs the
   engine too), the rate the engine achieved, and how many times a second the panel updated.

Nothing asserts; it prints figures. The machine is shared: run twice, keep the better run.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import psutil  # noqa: E402

from lab.launcher import Lab, free_port, stop_process, wait_for_port  # noqa: E402

PY = sys.executable
SERVER_CPU = "0"
CLIENT_CPUS = "1" if (os.cpu_count() or 1) > 1 else "0"


def taskset(cpus: str) -> list[str]:
    """A ``taskset -c cpus`` prefix, or nothing if taskset is missing."""
    return ["taskset", "-c", cpus] if shutil.which("taskset") else []


def hey(url: str, *, seconds: float, conns: int, keepalive: bool) -> float:
    """Requests/s reported by hey."""
    mode = [] if keepalive else ["-disable-keepalive"]
    cmd = [*taskset(CLIENT_CPUS), "hey", "-z", f"{seconds}s", "-c", str(conns), *mode, url]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60).stdout
    match = re.search(r"Requests/sec:\s+([\d.]+)", out)
    return float(match.group(1)) if match else 0.0


def engine(url: str, *, seconds: float, conns: int, keepalive: bool) -> tuple[float, dict]:
    """Requests/s of `python -m dashboard.traffic` (closed loop, like hey), plus its summary."""
    cmd = [*taskset(CLIENT_CPUS), PY, "-m", "dashboard.traffic", url, "-c", str(conns), "-z", str(seconds),
           "--mode", "keepalive" if keepalive else "new-conn", "--json"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60, cwd=REPO)
    summary = json.loads(out.stdout)
    return summary["rps"], summary


def compare(label: str, url: str, *, seconds: float, conns: int, rounds: int) -> None:
    """Print engine vs hey for both connection modes on one target: runs alternate, best of each."""
    print(f"\n{label}: {url} ({conns} connections, {seconds:g} s each, closed loop, best of {rounds})")
    print(f"  {'mode':<11} {'hey req/s':>10} {'engine req/s':>13} {'ratio':>6}  engine errors")
    for keepalive in (True, False):
        theirs = ours = 0.0
        errors = 0
        for _ in range(rounds):
            theirs = max(theirs, hey(url, seconds=seconds, conns=conns, keepalive=keepalive))
            rate, summary = engine(url, seconds=seconds, conns=conns, keepalive=keepalive)
            ours = max(ours, rate)
            errors += sum(summary["errors"].values())
        mode = "keep-alive" if keepalive else "new-conn"
        print(f"  {mode:<11} {theirs:>10.0f} {ours:>13.0f} {ours / theirs if theirs else 0:>6.2f}  {errors}")


def start_backend() -> tuple[subprocess.Popen, str]:
    """One backend_pod on a free loopback port, pinned to the server core."""
    port = free_port()
    proc = subprocess.Popen([*taskset(SERVER_CPU), PY, "-m", "backend_pod"], cwd=REPO,
                            env={**os.environ, "PORT": str(port), "BIND_ADDRESS": "127.0.0.1",
                                 "POD_NAME": "bench-pod", "ACCESS_LOG": "off", "SHUTDOWN_MODE": "abrupt"},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    wait_for_port("127.0.0.1", port, proc=proc, timeout=30, what="backend_pod")
    return proc, f"http://127.0.0.1:{port}/"


def bench_service(state: Path) -> tuple[Lab, str, str]:
    """A lab (sandbox + dashboard) and a Service of its own with a random ClusterIP."""
    from kubernetes import client, config

    lab = Lab()
    kubeconfig = lab.start_sandbox(state_dir=state / "state", api_port=free_port(),
                                   log_file=state / "sandbox.log")
    token = secrets.token_urlsafe(24)
    lab.start_dashboard(port=free_port(), log_file=state / "dashboard.log",
                        env={"KUBECONFIG": str(kubeconfig), "LBDEMO_LOGIN_TOKEN": token,
                             "LBDEMO_DB_PATH": str(state / "dashboard.sqlite3")})
    api = config.new_client_from_config(config_file=str(kubeconfig))
    ip = f"127.96.{random.randint(100, 250)}.{random.randint(2, 250)}"
    client.CoreV1Api(api).create_namespaced_service("default", {
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "bench"},
        "spec": {"clusterIP": ip, "selector": {"app": "backend"},
                 "ports": [{"port": 80, "targetPort": 8080}]}})
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        slices = client.DiscoveryV1Api(api).list_namespaced_endpoint_slice(
            "default", label_selector="kubernetes.io/service-name=bench").items
        ready = [e for s in slices for e in s.endpoints or [] if e.conditions and e.conditions.ready]
        if len(ready) == 3:
            break
        time.sleep(0.5)
    api.close()
    return lab, f"http://{ip}/", f"{lab.dashboard_url}?token={token}"


def dashboard_under_load(lab: Lab, login_url: str, *, seconds: int) -> None:
    """Start a 1,000 req/s run from the page; print dashboard CPU, achieved rate, panel update rate."""
    from playwright.sync_api import sync_playwright

    daphne = psutil.Process(lab.processes[-1].pid)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=shutil.which("chromium") or "/usr/bin/chromium",
                                             headless=True, args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1300, "height": 2000})
        page.goto(login_url)
        page.wait_for_selector("#traffic-target option[value='bench:80']", state="attached", timeout=60000)

        def panel() -> dict:
            return page.evaluate("() => ({...document.getElementById('traffic-panel').dataset})")

        page.select_option("#traffic-target", "bench:80")
        page.check("input[name=mode][value=keepalive]")
        page.fill("#traffic-conns", "8")
        page.fill("#traffic-rps", "1000")
        page.fill("#traffic-duration", str(seconds + 4))
        idle_cpu = daphne.cpu_times()
        idle_at = time.monotonic()
        time.sleep(3)
        idle = (sum(daphne.cpu_times()[:2]) - sum(idle_cpu[:2])) / (time.monotonic() - idle_at)
        page.click("#traffic-start")
        deadline = time.monotonic() + 30
        while panel().get("runState") != "running":
            if time.monotonic() > deadline:
                raise SystemExit("the run did not start: " + (page.text_content("#traffic-message") or "?"))
            time.sleep(0.05)
        time.sleep(2)  # past the connection set-up
        cpu0, updates0, requests0, t0 = (daphne.cpu_times(), int(panel().get("updates", 0)),
                                         int(panel().get("requests", 0)), time.monotonic())
        time.sleep(seconds)
        state = panel()
        cpu1, t1 = daphne.cpu_times(), time.monotonic()
        elapsed = t1 - t0
        busy = (sum(cpu1[:2]) - sum(cpu0[:2])) / elapsed
        rate = (int(state.get("requests", 0)) - requests0) / elapsed
        updates = (int(state.get("updates", 0)) - updates0) / elapsed
        page.screenshot(path=str(REPO / "test-artifacts" / "bench-traffic-1000rps.png"), full_page=True)
        browser.close()
    print(f"\nDashboard during a 1,000 req/s keep-alive run (8 connections) streaming to one page, "
          f"{seconds} s:")
    print(f"  dashboard process CPU (daphne + the engine thread): {busy * 100:.0f}% of one core "
          f"(idle with the page open: {idle * 100:.0f}%)")
    print(f"  requests/s achieved by the engine: {rate:.0f}")
    print(f"  panel updates/s in the browser: {updates:.1f} "
          f"(page's own 2 s window: {state.get('updateRate')})")
    print(f"  errors: {state.get('errors')}, dropped connections: {state.get('dropped')}")


def main() -> int:
    """Entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="length of each throughput run")
    parser.add_argument("--conns", type=int, default=4, help="connections for the throughput runs")
    parser.add_argument("--rounds", type=int, default=2, help="alternating runs per tool; the best counts")
    parser.add_argument("--skip-dashboard", action="store_true", help="only the throughput comparison")
    args = parser.parse_args()
    if not shutil.which("hey"):
        print("hey is not installed (apt-get install hey)", file=sys.stderr)
        return 1
    (REPO / "test-artifacts").mkdir(exist_ok=True)
    proc, url = start_backend()
    try:
        compare("Direct to one backend_pod (server on one core)", url, seconds=args.seconds, conns=args.conns,
                rounds=args.rounds)
    finally:
        stop_process(proc, grace=5)
    with tempfile.TemporaryDirectory(prefix="bench-traffic-") as tmp:
        lab, service_url, login_url = bench_service(Path(tmp))
        try:
            compare("Through a sandbox Service (real TCP proxy, 3 pods)", service_url, seconds=args.seconds,
                    conns=args.conns, rounds=args.rounds)
            if not args.skip_dashboard:
                dashboard_under_load(lab, login_url, seconds=10)
        finally:
            lab.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
