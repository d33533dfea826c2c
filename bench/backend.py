"""Benchmark of backend_pod: throughput on one core, startup time, memory, and failed requests
when a pod is killed under load in each SHUTDOWN_MODE.

Run: ``.venv/bin/python bench/backend.py [--duration S] [--connections N]``. The server is
pinned to one core with ``taskset`` and the load generators (Debian's ``wrk`` and ``hey``) to
another when the machine has two, so the figure is "requests per second on one core". Nothing
here asserts: it prints figures for the README and the issue notes. Other processes on a shared
machine lower the numbers; run it twice and take the better run.
"""

from __future__ import annotations

import argparse
import http.client
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from lab.launcher import free_port  # noqa: E402 - needs the repo on sys.path first

SERVER_CPU = "0"
CLIENT_CPUS = "1" if (os.cpu_count() or 1) > 1 else "0"


def taskset(cpus: str) -> list[str]:
    """A ``taskset -c cpus`` prefix, or nothing if taskset is missing."""
    return ["taskset", "-c", cpus] if shutil.which("taskset") else []


class Server:
    """One backend_pod process for the benchmark."""

    def __init__(self, *, env: dict[str, str] | None = None, name: str = "bench-pod") -> None:
        self.port = free_port()
        full_env = {**os.environ, "PORT": str(self.port), "BIND_ADDRESS": "127.0.0.1", "POD_NAME": name,
                    **(env or {})}
        self.started = time.perf_counter()
        self.proc = subprocess.Popen([*taskset(SERVER_CPU), sys.executable, "-m", "backend_pod"], cwd=REPO,
                                     env=full_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.startup = self._wait_listening()

    def _wait_listening(self) -> float:
        """Seconds from spawn until the port accepts a connection."""
        deadline = self.started + 30
        while time.perf_counter() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"backend_pod exited with {self.proc.returncode}")
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", self.port)) == 0:
                    return time.perf_counter() - self.started
            time.sleep(0.001)
        raise RuntimeError("backend_pod did not listen within 30 s")

    @property
    def url(self) -> str:
        """Base URL of the server."""
        return f"http://127.0.0.1:{self.port}/"

    def rss_kib(self) -> tuple[int, int]:
        """(current RSS, peak RSS) in KiB of the python process."""
        pid = self.proc.pid
        status = Path(f"/proc/{pid}/status").read_text()
        rss = int(found(r"VmRSS:\s+(\d+)", status))
        hwm = int(found(r"VmHWM:\s+(\d+)", status))
        return rss, hwm

    def cpu_seconds(self) -> float:
        """User + system CPU time the server has used so far."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def requests_served(self) -> int:
        """The server's own count of responses (from /metrics, excluding this scrape)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        conn.request("GET", "/metrics")
        text = conn.getresponse().read().decode()
        conn.close()
        return sum(int(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                   if line.startswith("backend_http_requests_total{"))

    def measured(self, label: str, run: Callable[[], str]) -> None:
        """Print a load run's own figures and the server's requests per CPU-second during it.

        Requests per CPU-second is what one core sustains when the server has it to itself; on
        a busy shared machine it is the steadier figure of the two."""
        served, cpu = self.requests_served(), self.cpu_seconds()
        figures = run()
        served, cpu = self.requests_served() - served - 1, self.cpu_seconds() - cpu
        print(f"{label:<30}: {figures}  | {served / cpu:,.0f} req per server CPU-second")

    def stop(self) -> None:
        """Kill the server."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


def found(pattern: str, text: str, flags: int = 0) -> str:
    """The first group of ``pattern`` in a tool's output; a clear error when the output lacks it."""
    match = re.search(pattern, text, flags)
    if match is None:
        raise RuntimeError(f"no {pattern!r} in:\n{text}")
    return match.group(1)


def run_wrk(url: str, *, duration: int, connections: int) -> str:
    """wrk keep-alive throughput: 'N req/s, p50/p99 latency' from its output."""
    out = subprocess.run([*taskset(CLIENT_CPUS), "wrk", "-t1", f"-c{connections}", f"-d{duration}s",
                          "--latency", url], capture_output=True, text=True, check=True).stdout
    rps = float(found(r"Requests/sec:\s+([\d.]+)", out))
    p50 = found(r"^\s+50%\s+(\S+)", out, re.M)
    p99 = found(r"^\s+99%\s+(\S+)", out, re.M)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)|Socket errors: (.*)", out)
    return f"{rps:,.0f} req/s  p50 {p50}  p99 {p99}" + (f"  ({errors.group(0)})" if errors else "")


def run_hey(url: str, *, duration: int, connections: int, keepalive: bool) -> str:
    """hey throughput with or without keep-alive."""
    cmd = [*taskset(CLIENT_CPUS), "hey", "-z", f"{duration}s", "-c", str(connections)]
    if not keepalive:
        cmd.append("-disable-keepalive")
    out = subprocess.run([*cmd, url], capture_output=True, text=True, check=True).stdout
    rps = float(found(r"Requests/sec:\s+([\d.]+)", out))
    p99 = found(r"99% in ([\d.]+) secs", out)
    codes = re.findall(r"\[(\d{3})\]\s+(\d+) responses", out)
    code_text = ", ".join(f"{n}x{c}" for c, n in codes)
    return f"{rps:,.0f} req/s  p99 {float(p99) * 1000:.1f}ms  [{code_text}]"


def kill_under_load(mode: str, *, clients: int = 4, propagation: float = 0.5) -> tuple[int, int, int]:
    """Kill pod A (SIGTERM) while clients loop keep-alive requests; new connections go to pod B
    ``propagation`` seconds later (like endpoints reaching kube-proxy). Returns
    (requests ok, requests failed, requests served by A after SIGTERM)."""
    pod_a = Server(env={"SHUTDOWN_MODE": mode, "DRAIN_SECONDS": "2"}, name="pod-a")
    pod_b = Server(name="pod-b")
    moved = threading.Event()
    stop = threading.Event()
    killed = threading.Event()
    ok: Counter[int] = Counter()
    failed: Counter[int] = Counter()
    after_kill: Counter[int] = Counter()

    def loop(i: int) -> None:
        """One client: requests over keep-alive, reconnecting when told or on failure."""
        conn: http.client.HTTPConnection | None = None
        while not stop.is_set():
            if conn is None:
                target = pod_b if moved.is_set() else pod_a
                conn = http.client.HTTPConnection("127.0.0.1", target.port, timeout=10)
            try:
                conn.request("GET", "/delay?ms=5")
                resp = conn.getresponse()
                resp.read()
                ok[i] += 1
                if killed.is_set() and resp.headers["X-Pod-Name"] == "pod-a":
                    after_kill[i] += 1
                if resp.will_close:
                    conn.close()
                    conn = None
            except (OSError, http.client.HTTPException):
                failed[i] += 1
                if conn is not None:
                    conn.close()
                conn = None
                time.sleep(0.005)

    threads = [threading.Thread(target=loop, args=(i,), daemon=True) for i in range(clients)]
    for thread in threads:
        thread.start()
    time.sleep(1.0)
    pod_a.proc.send_signal(signal.SIGTERM)
    killed.set()
    time.sleep(propagation)
    moved.set()
    pod_a.proc.wait(timeout=30)
    time.sleep(0.5)
    stop.set()
    for thread in threads:
        thread.join(timeout=30)
    pod_a.stop()
    pod_b.stop()
    return sum(ok.values()), sum(failed.values()), sum(after_kill.values())


def main() -> int:
    """Run every measurement and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=8, help="seconds per load run (default 8)")
    parser.add_argument("--connections", type=int, default=50, help="concurrent connections (default 50)")
    args = parser.parse_args()
    missing = [tool for tool in ("wrk", "hey") if not shutil.which(tool)]
    if missing:
        print(f"missing load generators: {', '.join(missing)} (apt-get install {' '.join(missing)})")
        return 1
    print(f"backend_pod benchmark: server pinned to CPU {SERVER_CPU}, load generator on CPU {CLIENT_CPUS}, "
          f"{args.connections} connections, {args.duration} s per run")

    startups = []
    for _ in range(5):
        server = Server()
        startups.append(server.startup)
        server.stop()
    print(f"startup (spawn -> listening), 5 runs: median {statistics.median(startups) * 1000:.0f} ms, "
          f"max {max(startups) * 1000:.0f} ms")

    server = Server()
    try:
        rss, _ = server.rss_kib()
        print(f"memory at start: RSS {rss / 1024:.1f} MiB")
        load = {"duration": args.duration, "connections": args.connections}
        server.measured("wrk keep-alive GET /", lambda: run_wrk(server.url, **load))
        server.measured("hey keep-alive GET /", lambda: run_hey(server.url, keepalive=True, **load))
        server.measured("hey new connection per request",
                        lambda: run_hey(server.url, keepalive=False, **load))
        server.measured("wrk keep-alive GET /healthz", lambda: run_wrk(server.url + "healthz", **load))
        rss, hwm = server.rss_kib()
        print(f"memory after load: RSS {rss / 1024:.1f} MiB, peak {hwm / 1024:.1f} MiB")
    finally:
        server.stop()

    for mode in ("drain", "abrupt"):
        ok, failed, after = kill_under_load(mode)
        print(f"SIGTERM under load, SHUTDOWN_MODE={mode:<6}: {failed} failed, {ok} ok "
              f"({after} served by the terminating pod after SIGTERM)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
