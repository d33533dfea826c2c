"""`manage.py demo` (what `make demo` runs) end to end: login URL, live cluster, clean stop."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from http.cookiejar import CookieJar
from pathlib import Path

import psutil
import pytest

from lab.launcher import free_port

REPO = Path(__file__).resolve().parents[2]


def start_demo(tmp_path: Path) -> subprocess.Popen:
    """Run `manage.py demo` as a user would, on free ports, with its state under ``tmp_path``."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("KUBECONFIG", None)
    return subprocess.Popen(
        [sys.executable, "manage.py", "demo", "--port", str(free_port()), "--api-port", str(free_port()),
         "--state-dir", str(tmp_path / "state")],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )


def read_until(proc: subprocess.Popen, pattern: str, *, timeout: float) -> re.Match:
    """Read the demo's stdout until a line matches, failing if it exits or takes too long."""
    deadline = time.monotonic() + timeout
    seen: list[str] = []
    assert proc.stdout is not None, "the demo's stdout is not a pipe"
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            if proc.poll() is not None:
                raise AssertionError(f"demo exited {proc.returncode}:\n{''.join(seen)}")
            continue
        seen.append(line)
        match = re.search(pattern, line)
        if match:
            return match
    raise AssertionError(f"no line matching {pattern!r} within {timeout} s:\n{''.join(seen)}")


def test_demo_prints_a_login_url_serves_the_lab_and_stops_without_orphans(tmp_path: Path) -> None:
    proc = start_demo(tmp_path)
    try:
        url = read_until(proc, r"Dashboard: (http://127\.0\.0\.1:\d+/\?token=\S+)", timeout=120).group(1)
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(CookieJar()))
        with opener.open(url, timeout=30) as response:
            page = response.read().decode()
        assert response.status == 200
        assert "backend" in page
        # The token works once: a second browser presenting it is not logged in.
        fresh = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(CookieJar()))
        with pytest.raises(urllib.error.HTTPError) as refused:
            fresh.open(url, timeout=30)
        assert refused.value.code in (401, 403)
        # This lab's own Service addresses (not 127.0.0.1:30080, which another lab may hold):
        # the printed NodePort address answers from one of this lab's backend pods.
        service = read_until(proc, r"(http://[\d.]+:30080/)\s+NodePort on sandbox-node-1", timeout=60)[1]
        assert not service.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(service, timeout=30) as answer:
            assert answer.headers["X-Pod-Name"].startswith("backend-")
        read_until(proc, r"ClusterIP", timeout=10)
        children = psutil.Process(proc.pid).children(recursive=True)
        assert len(children) >= 2, "the sandbox and the dashboard run as child processes"
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and any(c.is_running() and c.status() != psutil.STATUS_ZOMBIE
                                              for c in children):
        time.sleep(0.2)
    left = [c for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]
    assert not left, f"processes left behind: {left}"


def test_ctrl_c_during_start_up_stops_cleanly(tmp_path: Path) -> None:
    proc = start_demo(tmp_path)
    read_until(proc, r"Starting the sandbox cluster", timeout=60)
    proc.send_signal(signal.SIGINT)
    output, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, output
    assert "Traceback" not in output
    assert "Dashboard:" not in output, "an interrupted start-up does not go on to print the URL"
    assert not processes_mentioning(str(tmp_path)), "no sandbox or pod process is left behind"


def processes_mentioning(text: str) -> list[psutil.Process]:
    """Live processes whose command line mentions ``text`` (e.g. a test's state directory)."""
    found = []
    for process in psutil.process_iter(["cmdline", "status"]):
        cmdline = " ".join(process.info["cmdline"] or [])
        if text in cmdline and process.info["status"] != psutil.STATUS_ZOMBIE:
            found.append(process)
    return found


def test_a_killed_demo_takes_its_lab_with_it(tmp_path: Path) -> None:
    proc = start_demo(tmp_path)
    read_until(proc, r"Dashboard: ", timeout=120)
    assert processes_mentioning(str(tmp_path)), "the sandbox runs"
    proc.kill()  # SIGKILL: the demo gets no chance to clean up
    proc.wait(timeout=10)
    deadline = time.monotonic() + 45
    while processes_mentioning(str(tmp_path)) and time.monotonic() < deadline:
        time.sleep(0.3)
    assert not processes_mentioning(str(tmp_path)), "the sandbox and its pods stop when the demo dies"
