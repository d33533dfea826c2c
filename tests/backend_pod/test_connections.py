"""Connection identity, keep-alive, pipelining, recycling and bad input on the wire."""

from __future__ import annotations

import contextlib
import http.client
import json
import random
import socket
import time
import urllib.request
from collections.abc import Callable

import pytest

from tests.backend_pod.conftest import TIMEOUT, Backend, wait_until


def split_responses(data: bytes) -> list[tuple[int, dict[str, str], bytes]]:
    """Parse a byte stream of HTTP/1.1 responses that all carry Content-Length."""
    out = []
    while data:
        head, _, rest = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0"))
        out.append((int(lines[0].split()[1]), headers, rest[:length]))
        data = rest[length:]
    return out


def test_sequence_numbers_count_up_on_a_reused_connection(backend: Backend) -> None:
    conn = backend.connection()
    seen = [backend.get("/", conn=conn) for _ in range(5)]
    conn.close()
    ids = {r.headers["X-Conn-Id"] for r in seen}
    assert len(ids) == 1
    assert [int(r.headers["X-Conn-Seq"]) for r in seen] == [1, 2, 3, 4, 5]
    assert [r.json()["connection"]["seq"] for r in seen] == [1, 2, 3, 4, 5]
    ages = [r.json()["connection"]["age_ms"] for r in seen]
    assert ages == sorted(ages)
    assert len({r.json()["request_id"] for r in seen}) == 5
    other = backend.get("/")
    assert other.headers["X-Conn-Id"] != seen[0].headers["X-Conn-Id"] and other.headers["X-Conn-Seq"] == "1"


def test_connection_ids_are_unique_across_pods(start_backend: Callable[..., Backend]) -> None:
    first, second = start_backend(), start_backend()
    ids = {b.get("/").headers["X-Conn-Id"] for b in (first, second, first, second)}
    assert len(ids) == 4
    assert len({i.split("-")[0] for i in ids}) == 2, "each process has its own random prefix"


def test_pipelined_requests_answered_in_order(backend: Backend) -> None:
    reqs = (b"GET /delay?ms=50 HTTP/1.1\r\nHost: x\r\n\r\n"
            b"GET /status/404 HTTP/1.1\r\nHost: x\r\n\r\n"
            b"POST /config HTTP/1.1\r\nHost: x\r\nContent-Length: 25\r\n\r\n{\"max_conn_requests\": 0}\n"
            b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    responses = split_responses(backend.raw(reqs))
    assert [status for status, _, _ in responses] == [200, 404, 200, 200]
    assert [h["x-conn-seq"] for _, h, _ in responses] == ["1", "2", "3", "4"]
    assert json.loads(responses[0][2])["delay_ms"] == 50
    assert responses[3][1]["connection"] == "close"


def test_http_1_0_closes_unless_keep_alive_asked(backend: Backend) -> None:
    data = backend.raw(b"GET / HTTP/1.0\r\n\r\n")
    assert data.startswith(b"HTTP/1.1 200 OK\r\n") and b"Connection: close\r\n" in data
    with socket.create_connection((backend.host, backend.port), timeout=TIMEOUT) as sock:
        sock.sendall(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /healthz HTTP/1.0\r\n\r\n")
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    responses = split_responses(data)
    assert [h.get("connection") for _, h, _ in responses] == ["keep-alive", "close"]
    assert [h["x-conn-seq"] for _, h, _ in responses] == ["1", "2"]


def test_bare_lf_line_ends_are_accepted(backend: Backend) -> None:
    data = backend.raw(b"GET /healthz HTTP/1.1\nHost: x\nConnection: close\n\n")
    assert data.startswith(b"HTTP/1.1 200 OK")


def test_chunked_and_expect_continue_bodies(backend: Backend) -> None:
    body = b'{"max_conn_requests": 9}'
    chunked = (b"POST /config HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
               + b"%x\r\n" % 10 + body[:10] + b"\r\n" + b"%x;ext=1\r\n" % (len(body) - 10) + body[10:]
               + b"\r\n0\r\nX-Trailer: y\r\n\r\n")
    status, _, resp_body = split_responses(backend.raw(chunked))[0]
    assert status == 200 and json.loads(resp_body)["max_conn_requests"] == 9
    with socket.create_connection((backend.host, backend.port), timeout=TIMEOUT) as sock:
        sock.sendall(b"POST /config HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nConnection: close\r\n"
                     b"Content-Length: 24\r\n\r\n")
        assert sock.recv(1024) == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(b'{"max_conn_requests": 2}')
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    assert data.startswith(b"HTTP/1.1 200 OK") and b'"max_conn_requests":2' in data


def test_recycling_by_request_count_set_at_start(start_backend: Callable[..., Backend]) -> None:
    backend = start_backend(env={"MAX_CONN_REQUESTS": "3"})
    conn = backend.connection()
    first = [backend.get("/", conn=conn) for _ in range(3)]
    assert [r.headers.get("Connection") for r in first] == [None, None, "close"]
    assert first[2].json()["connection"]["keep_alive"] is False
    after = backend.get("/", conn=conn)  # http.client reconnects after Connection: close
    conn.close()
    assert after.headers["X-Conn-Id"] != first[0].headers["X-Conn-Id"] and after.headers["X-Conn-Seq"] == "1"
    wait_until(lambda: 'backend_connections_closed_total{reason="max_requests"} 1' in
               backend.get("/metrics").body.decode(), what="recycled connection counted")
    assert "reason=max_requests" in backend.wait_log("reason=max_requests")


def test_recycling_changed_at_runtime_applies_to_open_connections(backend: Backend) -> None:
    conn = backend.connection()
    for _ in range(4):
        assert backend.get("/", conn=conn).headers.get("Connection") is None
    backend.post("/config", body='{"max_conn_requests": 5}', headers={"Content-Type": "application/json"})
    fifth = backend.get("/", conn=conn)
    assert fifth.headers["X-Conn-Seq"] == "5" and fifth.headers["Connection"] == "close"
    backend.post("/config?max_conn_requests=0")
    sixth = backend.get("/", conn=conn)
    conn.close()
    assert sixth.headers["X-Conn-Seq"] == "1" and sixth.headers.get("Connection") is None


def test_recycling_by_connection_age(start_backend: Callable[..., Backend]) -> None:
    backend = start_backend(env={"MAX_CONN_AGE": "60"})
    assert backend.get("/config").json()["max_conn_age"] == 60
    conn = backend.connection()
    first = backend.get("/", conn=conn)
    assert first.headers.get("Connection") is None
    backend.post("/config?max_conn_age=0.3")
    time.sleep(0.4)  # the connection is now older than the new MAX_CONN_AGE
    aged = backend.get("/", conn=conn)
    conn.close()
    assert aged.headers["X-Conn-Id"] == first.headers["X-Conn-Id"]
    assert aged.headers["Connection"] == "close" and aged.json()["connection"]["age_ms"] >= 300
    assert "reason=max_age" in backend.wait_log("reason=max_age")


def test_binds_the_given_pod_ip(start_backend: Callable[..., Backend]) -> None:
    backend = start_backend(host="127.244.0.9", env={"POD_IP": ""})
    resp = backend.get("/")
    assert resp.headers["X-Pod-IP"] == "127.244.0.9" and resp.json()["pod"]["ip"] == "127.244.0.9"
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", backend.port), timeout=2).close()
    assert "event=listening address=127.244.0.9:" in backend.logs()


BAD_REQUESTS = [
    (b"GARBAGE\r\n\r\n", 400, "malformed request line"),
    (b"GET /\r\n\r\n", 400, "malformed request line"),
    (b"GET  / HTTP/1.1\r\nHost: x\r\n\r\n", 400, "malformed request line"),
    (b"G(T / HTTP/1.1\r\nHost: x\r\n\r\n", 400, "invalid method"),
    (b"GET / HTTP/9.9\r\nHost: x\r\n\r\n", 505, "not supported"),
    (b"GET / FTP/1.1\r\nHost: x\r\n\r\n", 400, "invalid HTTP version"),
    (b"GET nopath HTTP/1.1\r\nHost: x\r\n\r\n", 400, "absolute path"),
    (b"GET / HTTP/1.1\r\n\r\n", 400, "Host header"),
    (b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400, "duplicate host"),
    (b"GET / HTTP/1.1\r\nHost: x\r\nBad Header: y\r\n\r\n", 400, "malformed header"),
    (b"GET / HTTP/1.1\r\nHost: x\r\nNoColon\r\n\r\n", 400, "malformed header"),
    (b"GET / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n", 400, "folding"),
    (b"GET / HTTP/1.1\r\nHost: x\x01\r\n\r\n", 400, "control characters"),
    (b"GET / HTTP/1.1\r\nHost: x\rY: z\r\n\r\n", 400, "control characters"),
    (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n", 400, "Content-Length"),
    (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", 400, "duplicate"),
    (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", 400, "both"),
    (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", 501, "chunked"),
    (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400, "chunk size"),
    (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2000000\r\n\r\n", 413, "exceeds"),
    (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n200000\r\n", 413, "exceeds"),
    (b"GET / HTTP/1.1\r\nHost: x\r\nExpect: magic\r\n\r\n", 417, "100-continue"),
    (b"GET /#frag HTTP/1.1\r\nHost: x\r\n\r\n", 400, "fragment"),
]


@pytest.mark.parametrize(("raw", "status", "message"), BAD_REQUESTS,
                         ids=[f"{status}-{i}" for i, (_, status, _) in enumerate(BAD_REQUESTS)])
def test_malformed_requests_get_an_error_and_a_close(backend: Backend, raw: bytes, status: int,
                                                     message: str) -> None:
    responses = split_responses(backend.raw(raw))
    assert len(responses) == 1
    got, headers, body = responses[0]
    assert got == status
    assert headers["connection"] == "close" and headers["x-pod-name"] == "backend-test-0"
    assert message.lower() in json.loads(body)["error"].lower()
    assert backend.get("/healthz").status == 200, "the server survives"


def test_oversize_headers_are_refused(backend: Backend) -> None:
    huge = b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 17000 + b"\r\n\r\n"
    status, headers, _ = split_responses(backend.raw(huge))[0]
    assert status == 431 and headers["connection"] == "close"
    many = b"GET / HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-%d: y\r\n" % i for i in range(120)) + b"\r\n"
    assert split_responses(backend.raw(many))[0][0] == 431
    # A head that never ends is refused as soon as it passes the limit.
    with socket.create_connection((backend.host, backend.port), timeout=TIMEOUT) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nX-Endless: " + b"b" * 20000)
        assert sock.recv(65536).startswith(b"HTTP/1.1 431 ")


def test_oversize_body_is_refused_with_413_not_a_reset(backend: Backend) -> None:
    conn = backend.connection()
    conn.putrequest("POST", "/config")
    conn.putheader("Content-Length", str(2 * 1024 * 1024))
    conn.endheaders()
    with contextlib.suppress(OSError):  # the server may stop reading; the response must still arrive
        conn.send(b"x" * (2 * 1024 * 1024))
    resp = conn.getresponse()
    assert resp.status == 413 and b"exceeds" in resp.read()
    conn.close()


def test_random_garbage_never_crashes_the_server(backend: Backend) -> None:
    rng = random.Random(5)
    for _ in range(40):
        junk = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 300)))
        with socket.create_connection((backend.host, backend.port), timeout=TIMEOUT) as sock:
            sock.sendall(junk + b"\r\n\r\n")
            sock.shutdown(socket.SHUT_WR)
            while sock.recv(65536):
                pass
    assert backend.get("/").status == 200
    assert backend.proc.poll() is None


def test_client_closing_mid_request_is_harmless(backend: Backend) -> None:
    for partial in (b"GET / HT", b"POST /config HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nab"):
        with socket.create_connection((backend.host, backend.port), timeout=TIMEOUT) as sock:
            sock.sendall(partial)
    conn = backend.connection()
    conn.request("GET", "/delay?ms=300")
    conn.sock.close()  # leave while the response is pending
    conn.close()
    wait_until(lambda: backend.metric("backend_in_flight_requests") == 0, what="the delayed request to end")
    assert backend.get("/healthz").status == 200


def test_http_client_library_compatibility(backend: Backend) -> None:
    with urllib.request.urlopen(f"http://{backend.host}:{backend.port}/", timeout=TIMEOUT) as resp:
        assert json.loads(resp.read())["pod"]["name"] == "backend-test-0"
    conn = http.client.HTTPConnection(backend.host, backend.port, timeout=TIMEOUT)
    conn.request("GET", f"http://{backend.host}:{backend.port}/healthz?x")  # absolute-form target
    assert conn.getresponse().status == 200
    conn.close()


def test_request_arriving_byte_by_byte(backend: Backend) -> None:
    request = (b"POST /config?max_conn_age=0 HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"
               b"GET / HTTP/1.1\r\nHost: x\r\n")
    with socket.create_connection((backend.host, backend.port), timeout=TIMEOUT) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for i in range(len(request)):
            sock.sendall(request[i:i + 1])
        sock.sendall(b"Connection: close\r\n\r\n")
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    assert [status for status, _, _ in split_responses(data)] == [200, 200]


def test_empty_lines_between_requests_are_ignored(backend: Backend) -> None:
    with socket.create_connection((backend.host, backend.port), timeout=TIMEOUT) as sock:
        sock.sendall(b"\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n\r\n")
        assert sock.recv(65536).startswith(b"HTTP/1.1 200 OK")
        wait_until(lambda: backend.metric("backend_open_connections") == 2, what="the connection kept open")
        sock.sendall(b"\nGET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    assert [h["x-conn-seq"] for _, h, _ in split_responses(data)] == ["2"]
