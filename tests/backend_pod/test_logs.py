"""What `kubectl logs` shows of a backend: lifecycle lines always, connections and requests on demand."""

from __future__ import annotations

import re
import signal
import socket
from collections.abc import Callable

from tests.backend_pod.conftest import TIMEOUT, Backend

LINE = re.compile(r'ts=\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z event=\w+( \w+=("([^"\\]|\\.)*"|\S+))*')


def test_lifecycle_lines_in_logfmt(start_backend: Callable[..., Backend]) -> None:
    backend = start_backend(env={"ACCESS_LOG": "off", "DRAIN_SECONDS": "0"})
    backend.get("/")
    backend.signal(signal.SIGTERM)
    assert backend.wait_exit() == 0
    lines = backend.logs().splitlines()
    assert [line.split()[1] for line in lines] == [
        "event=starting", "event=listening", "event=ready", "event=SIGTERM", "event=unready",
        "event=draining", "event=drain_window_over", "event=exit"]
    for line in lines:
        assert LINE.fullmatch(line), line
    assert "pod=backend-test-0" in lines[0] and "shutdown_mode=drain" in lines[0]


def test_default_logs_traffic_connections_but_not_probes(backend: Backend) -> None:
    for _ in range(3):
        backend.get("/healthz")
        backend.get("/readyz")
    conn = backend.connection()
    backend.get("/", conn=conn)
    backend.get("/", conn=conn)
    conn.close()
    logs = backend.wait_log("event=conn_closed")
    closed = [line for line in logs.splitlines() if "event=conn_closed" in line]
    assert len(closed) == 1
    assert "requests=2" in closed[0] and "reason=client" in closed[0]
    assert "event=request" not in logs


def test_access_log_all_logs_every_request_with_quoted_values(start_backend: Callable[..., Backend]) -> None:
    backend = start_backend(env={"ACCESS_LOG": "1"})
    with socket.create_connection((backend.host, backend.port), timeout=TIMEOUT) as sock:
        sock.sendall(b'GET /we"ird\\path HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
        while sock.recv(65536):
            pass
    probe = backend.get("/healthz").headers["X-Conn-Id"]
    logs = backend.wait_log(f"event=conn_closed conn={probe} ")
    assert 'path="/we\\"ird\\\\path" status=404' in logs
    assert f"event=request conn={probe} seq=1 method=GET path=/healthz status=200" in logs
    assert f"event=conn_open conn={probe} " in logs
    for line in logs.splitlines():
        assert LINE.fullmatch(line), line


def test_access_log_switches_at_runtime(backend: Backend) -> None:
    backend.post("/config?access_log=off")
    quiet = backend.get("/").headers["X-Conn-Id"]
    backend.post("/config?access_log=all")
    loud = backend.get("/status/418").headers["X-Conn-Id"]
    logs = backend.wait_log(f"event=conn_closed conn={loud} ")
    assert "status=418" in logs
    assert f"conn={quiet} " not in logs, "the connection closed while logging was off is not logged"
