"""Fixtures for backend_pod tests: start the real `python -m backend_pod` process on loopback.

Every test talks to a real process over TCP exactly as kube-proxy, the kubelet's probes or a
browser would. Processes are killed at the end of the test, and stdout (the pod log) is kept in
a file the test can read.
"""

from __future__ import annotations

import functools
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from lab.launcher import BASE_DIR, free_port, wait_for_port
from tests import polling

# Variables the backend reads; removed from the inherited environment so tests set them explicitly.
BACKEND_VARS = ("PORT", "BIND_ADDRESS", "POD_NAME", "HOSTNAME", "POD_IP", "NODE_NAME", "POD_NAMESPACE",
                "VERSION", "COLOR", "START_DELAY", "MAX_CONN_REQUESTS", "MAX_CONN_AGE", "SHUTDOWN_MODE",
                "DRAIN_SECONDS", "ACCESS_LOG")
TIMEOUT = 30.0


wait_until = functools.partial(polling.wait_until, timeout=TIMEOUT, interval=0.02)


@dataclass
class Response:
    """A response as a test sees it."""

    status: int
    headers: http.client.HTTPMessage
    body: bytes

    def json(self) -> dict:
        """The body parsed as JSON."""
        return json.loads(self.body)


@dataclass
class Backend:
    """A running backend process."""

    proc: subprocess.Popen
    host: str
    port: int
    log_path: Path

    def connection(self) -> http.client.HTTPConnection:
        """A new keep-alive capable client connection."""
        return http.client.HTTPConnection(self.host, self.port, timeout=TIMEOUT)

    def request(self, method: str, path: str, *, body: bytes | str | None = None,
                headers: Mapping[str, str] | None = None,
                conn: http.client.HTTPConnection | None = None) -> Response:
        """Send one request (on ``conn`` if given, else on a fresh connection) and read the answer."""
        own = conn is None
        conn = conn or self.connection()
        try:
            conn.request(method, path, body=body, headers=dict(headers or {}))
            resp = conn.getresponse()
            return Response(resp.status, resp.headers, resp.read())
        finally:
            if own:
                conn.close()

    def get(self, path: str, **kwargs: object) -> Response:
        """GET ``path``."""
        return self.request("GET", path, **kwargs)  # type: ignore[arg-type]

    def post(self, path: str, **kwargs: object) -> Response:
        """POST ``path``."""
        return self.request("POST", path, **kwargs)  # type: ignore[arg-type]

    def raw(self, data: bytes, *, read_until_close: bool = True) -> bytes:
        """Send raw bytes on a new socket and return everything received until the server closes."""
        with socket.create_connection((self.host, self.port), timeout=TIMEOUT) as sock:
            sock.sendall(data)
            chunks = []
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                chunks.append(chunk)
                if not read_until_close:
                    break
            return b"".join(chunks)

    def logs(self) -> str:
        """Everything the process printed so far (stdout and stderr)."""
        return self.log_path.read_text(errors="replace")

    def wait_log(self, text: str) -> str:
        """Wait until the log contains ``text``; return the log."""
        return wait_until(lambda: text in self.logs() and self.logs(), what=f"log line {text!r}")

    def signal(self, signum: int = signal.SIGTERM) -> None:
        """Send a signal to the process."""
        self.proc.send_signal(signum)

    def wait_exit(self, timeout: float = TIMEOUT) -> int:
        """Wait for the process to exit and return its status (negative: killed by a signal)."""
        return self.proc.wait(timeout=timeout)

    def metric(self, line_prefix: str) -> float:
        """The value of the first /metrics sample line starting with ``line_prefix``."""
        text = self.get("/metrics").body.decode()
        for line in text.splitlines():
            if line.startswith(line_prefix):
                return float(line.rsplit(" ", 1)[1])
        raise AssertionError(f"no metric line starting with {line_prefix!r} in:\n{text}")


def backend_env(env: Mapping[str, str] | None) -> dict[str, str]:
    """The inherited environment without backend variables, plus ``env``."""
    base = {k: v for k, v in os.environ.items() if k not in BACKEND_VARS}
    return {**base, **(env or {})}


def spawn(log_path: Path, *, args: Sequence[str] = (), env: Mapping[str, str] | None = None,
          stdin: int | None = subprocess.DEVNULL) -> subprocess.Popen:
    """Start `python -m backend_pod` with output going to ``log_path``."""
    with open(log_path, "ab") as out:
        return subprocess.Popen([sys.executable, "-m", "backend_pod", *args], cwd=BASE_DIR,
                                env=backend_env(env), stdout=out, stderr=subprocess.STDOUT, stdin=stdin)


@pytest.fixture
def start_backend(tmp_path: Path) -> Iterator[Callable[..., Backend]]:
    """Start backends on 127.0.0.1 (or ``host``) and a free port; all are killed after the test."""
    started: list[subprocess.Popen] = []

    def start(*, env: Mapping[str, str] | None = None, args: Sequence[str] = (),
              host: str = "127.0.0.1") -> Backend:
        port = free_port(host)
        log_path = tmp_path / f"backend-{len(started)}.log"
        full_env = {"PORT": str(port), "BIND_ADDRESS": host, "POD_NAME": f"backend-test-{len(started)}",
                    **(env or {})}
        proc = spawn(log_path, args=args, env=full_env)
        started.append(proc)
        wait_for_port(host, port, proc=proc, timeout=TIMEOUT, what="backend_pod")
        return Backend(proc, host, port, log_path)

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=TIMEOUT)


@pytest.fixture
def backend(start_backend: Callable[..., Backend]) -> Backend:
    """One backend with default settings (pod name backend-test-0)."""
    return start_backend()
