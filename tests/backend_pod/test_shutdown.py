"""SIGTERM behaviour: drain (default) versus abrupt, including failed requests during a kill under load."""

from __future__ import annotations

import http.client
import signal
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable

from tests.backend_pod.conftest import TIMEOUT, Backend, wait_until


def test_drain_reports_unready_keeps_serving_and_exits_zero(start_backend: Callable[..., Backend]) -> None:
    backend = start_backend(env={"DRAIN_SECONDS": "4"})
    conn = backend.connection()
    assert backend.get("/", conn=conn).headers.get("Connection") is None
    backend.signal(signal.SIGTERM)
    backend.wait_log("event=draining")
    ready = backend.get("/readyz")
    assert ready.status == 503 and ready.json()["reason"] == "draining after SIGTERM"
    assert backend.get("/healthz").status == 200, "a draining pod is alive"
    on_old = backend.get("/", conn=conn)
    conn.close()
    assert on_old.status == 200 and on_old.headers["Connection"] == "close"
    assert on_old.json()["connection"]["keep_alive"] is False
    fresh = backend.get("/")
    assert fresh.status == 200 and fresh.headers["Connection"] == "close", "new connections are still served"
    assert backend.metric("backend_draining") == 1
    assert backend.wait_exit() == 0
    logs = backend.logs()
    for event in ("event=SIGTERM shutdown_mode=drain", 'event=unready reason="draining after SIGTERM"',
                  "event=draining seconds=4", "event=drain_window_over", "event=exit status=0"):
        assert event in logs
    assert logs.index("event=SIGTERM") < logs.index("event=draining") < logs.index("event=exit")
    with socket.socket() as sock:
        assert sock.connect_ex((backend.host, backend.port)) != 0, "the port is closed after exit"


def test_drain_closes_idle_keepalive_connections(start_backend: Callable[..., Backend]) -> None:
    backend = start_backend(env={"DRAIN_SECONDS": "10"})
    with socket.create_connection((backend.host, backend.port), timeout=TIMEOUT) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert sock.recv(65536).startswith(b"HTTP/1.1 200 OK")
        backend.signal(signal.SIGTERM)
        assert sock.recv(65536) == b"", "the idle keep-alive connection is closed by the server"
    assert backend.proc.poll() is None, "still draining: idle connections close long before the exit"
    assert "reason=drain" in backend.wait_log("reason=drain")
    backend.signal(signal.SIGTERM)  # a second signal ends the drain at once
    assert backend.wait_exit() == 128 + signal.SIGTERM
    assert "event=signal_again" in backend.logs()


def test_drain_lets_in_flight_requests_finish(start_backend: Callable[..., Backend]) -> None:
    backend = start_backend(env={"DRAIN_SECONDS": "0.2"})
    conn = backend.connection()
    conn.request("GET", "/delay?ms=3000")
    wait_until(lambda: backend.metric("backend_in_flight_requests") == 1, what="the request in flight")
    backend.signal(signal.SIGTERM)
    resp = conn.getresponse()
    assert resp.status == 200 and resp.headers["Connection"] == "close"
    conn.close()
    assert backend.wait_exit() == 0
    assert "event=exit status=0 dropped_connections=0" in backend.logs()


def test_abrupt_exits_at_once_and_fails_in_flight_requests(start_backend: Callable[..., Backend]) -> None:
    backend = start_backend(env={"SHUTDOWN_MODE": "abrupt", "DRAIN_SECONDS": "10"})
    conn = backend.connection()
    conn.request("GET", "/delay?ms=20000")
    wait_until(lambda: backend.metric("backend_in_flight_requests") == 1, what="the request in flight")
    backend.signal(signal.SIGTERM)
    assert backend.wait_exit() == 128 + signal.SIGTERM
    try:
        resp = conn.getresponse()
        raise AssertionError(f"the in-flight request got an answer: {resp.status}")
    except (OSError, http.client.HTTPException):
        pass
    finally:
        conn.close()
    logs = backend.logs()
    assert "event=SIGTERM shutdown_mode=abrupt open_connections=" in logs
    assert "event=exit status=143 dropped_connections=" in logs
    assert "event=draining" not in logs


class LoadClient(threading.Thread):
    """Loops requests over a keep-alive connection, reconnecting (through ``pick``) when closed."""

    def __init__(self, pick: Callable[[], tuple[str, int]]) -> None:
        super().__init__(daemon=True)
        self.pick = pick
        self.stop = threading.Event()
        self.pods: Counter[str] = Counter()
        self.errors: list[str] = []
        self.closes = 0

    def run(self) -> None:
        conn: http.client.HTTPConnection | None = None
        while not self.stop.is_set():
            if conn is None:
                conn = http.client.HTTPConnection(*self.pick(), timeout=10)
            try:
                conn.request("GET", "/delay?ms=5")
                resp = conn.getresponse()
                resp.read()
                self.pods[resp.headers["X-Pod-Name"]] += 1
                if resp.will_close:
                    self.closes += 1
                    conn.close()
                    conn = None
            except (OSError, http.client.HTTPException) as exc:
                self.errors.append(repr(exc))
                if conn is not None:
                    conn.close()
                conn = None
                time.sleep(0.01)
        if conn is not None:
            conn.close()


def kill_under_load(start_backend: Callable[..., Backend], mode: str) -> tuple[list[LoadClient], Backend]:
    """Kill pod A while clients loop requests at it; after the kill the "endpoints" move to pod B.

    Like a Service, the clients pick a pod only when they open a connection, and pod A stays a
    target until the endpoint update (0.5 s after SIGTERM for drain; after the first failures for
    abrupt, so that the failures are certain to be observed).
    """
    pod_a = start_backend(env={"POD_NAME": "pod-a", "SHUTDOWN_MODE": mode, "DRAIN_SECONDS": "2"})
    pod_b = start_backend(env={"POD_NAME": "pod-b"})
    moved = threading.Event()

    def pick() -> tuple[str, int]:
        target = pod_b if moved.is_set() else pod_a
        return target.host, target.port

    clients = [LoadClient(pick) for _ in range(3)]
    for client in clients:
        client.start()
    try:
        wait_until(lambda: all(c.pods["pod-a"] >= 5 for c in clients), what="load on pod A")
        pod_a.signal(signal.SIGTERM)
        if mode == "drain":
            time.sleep(0.5)  # kube-proxy learns of the terminating endpoint a little later
        else:
            wait_until(lambda: any(c.errors for c in clients), what="failed requests after the abrupt kill")
        moved.set()
        pod_a.wait_exit()
        before = sum(c.pods["pod-b"] for c in clients)
        wait_until(lambda: sum(c.pods["pod-b"] for c in clients) > before + 10, what="load on pod B")
    finally:
        for client in clients:
            client.stop.set()
        for client in clients:
            client.join(timeout=TIMEOUT)
    return clients, pod_a


def test_kill_under_load_drain_loses_no_request(start_backend: Callable[..., Backend]) -> None:
    clients, pod_a = kill_under_load(start_backend, "drain")
    assert [c.errors for c in clients] == [[], [], []]
    assert pod_a.proc.returncode == 0
    assert all(c.closes >= 1 for c in clients), "each client was told Connection: close and reconnected"


def test_kill_under_load_abrupt_fails_requests(start_backend: Callable[..., Backend]) -> None:
    clients, pod_a = kill_under_load(start_backend, "abrupt")
    assert sum(len(c.errors) for c in clients) >= 1
    assert pod_a.proc.returncode == 128 + signal.SIGTERM


def test_sigint_drains_like_sigterm(start_backend: Callable[..., Backend]) -> None:
    backend = start_backend(env={"DRAIN_SECONDS": "0"})
    backend.signal(signal.SIGINT)
    assert backend.wait_exit() == 0
    assert "event=SIGINT shutdown_mode=drain" in backend.logs()
