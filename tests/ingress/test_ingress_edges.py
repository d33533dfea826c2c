"""The ingress proxy's edges: stale pooled connections, timeouts, Upgrade, interim, chunked and
unframed responses, back-pressure, and a repeated request following table changes."""

from __future__ import annotations

import http.client
import json
import select
import socket
from collections.abc import Callable

import pytest

import sandbox.ingress_proxy as ingress_proxy
from sandbox.ingress_rules import RouteTable, Target
from tests.backend_pod.conftest import Backend as Pod
from tests.backend_pod.conftest import wait_until
from tests.ingress.conftest import BACKEND, IngressHarness, RawPod, endpoints

Handler = Callable[[int, int, bytes, socket.socket], bool]


def ok(body: bytes, *, extra: bytes = b"") -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n%b\r\n%b" % (len(body), extra, body)


def raw_exchange(port: int, data: bytes) -> bytes:
    """Send ``data`` on a new connection and read until the proxy closes it."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(data)
        out = b""
        while chunk := sock.recv(65536):
            out += chunk
        return out


def read_response(sock: socket.socket) -> bytes:
    """One response with a Content-Length body from ``sock``."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
    while len(body) < length:
        body += sock.recv(65536)
    return head + b"\r\n\r\n" + body


def test_a_pooled_connection_the_pod_closed_is_retried_on_a_new_one(
    ingress: IngressHarness, raw_pod: Callable[[Handler], RawPod]
) -> None:
    def keep_alive_once(conn: int, request: int, head: bytes, sock: socket.socket) -> bool:
        if request == 2:
            return False  # closes the pooled connection instead of answering (its idle timeout fired)
        sock.sendall(ok(b"connection %d" % conn))
        return True

    pod = raw_pod(keep_alive_once)
    ingress.update(RouteTable(default=_default()), {BACKEND: [pod.endpoint()]})
    conn = http.client.HTTPConnection("127.0.0.1", ingress.port, timeout=30)
    answers = []
    for _ in range(3):
        conn.request("GET", "/")
        resp = conn.getresponse()
        answers.append((resp.status, resp.read()))
    assert answers == [(200, b"connection 1"), (200, b"connection 2"), (200, b"connection 3")]


def test_a_pod_that_closes_without_answering_gets_502(
    ingress: IngressHarness, raw_pod: Callable[[Handler], RawPod]
) -> None:
    pod = raw_pod(lambda conn, request, head, sock: False)
    ingress.update(RouteTable(default=_default()), {BACKEND: [pod.endpoint()]})
    conn = http.client.HTTPConnection("127.0.0.1", ingress.port, timeout=30)
    conn.request("GET", "/")
    resp = conn.getresponse()
    assert resp.status == 502 and b"502 Bad Gateway" in resp.read()
    assert pod.connections == 1  # a fresh connection is not retried


def test_a_slow_pod_gets_504_and_an_idle_client_is_closed(
    ingress: IngressHarness, start_backend: Callable[..., Pod], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ingress_proxy, "READ_TIMEOUT", 0.5)
    monkeypatch.setattr(ingress_proxy, "CLIENT_IDLE_TIMEOUT", 1.0)
    ingress.serve([start_backend()])
    ingress.sweep_every(0.1)
    with socket.create_connection(("127.0.0.1", ingress.port), timeout=30) as sock:
        sock.sendall(b"GET /delay?ms=10000 HTTP/1.1\r\nHost: a\r\n\r\n")
        answer = read_response(sock)
        assert answer.startswith(b"HTTP/1.1 504 Gateway Timeout") and b"Connection: keep-alive" in answer
        sock.sendall(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        assert read_response(sock).startswith(b"HTTP/1.1 200 OK")
        assert sock.recv(65536) == b""  # closed by the proxy once idle


def test_upgrade_requests_get_501(ingress: IngressHarness, start_backend: Callable[..., Pod]) -> None:
    ingress.serve([start_backend()])
    answer = raw_exchange(
        ingress.port, b"GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"
    )
    assert answer.startswith(b"HTTP/1.1 501 Not Implemented") and b"Connection: close" in answer


def test_expect_100_continue_passes_the_interim_response(
    ingress: IngressHarness, start_backend: Callable[..., Pod]
) -> None:
    ingress.serve([start_backend()])
    with socket.create_connection(("127.0.0.1", ingress.port), timeout=30) as sock:
        sock.sendall(b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
        interim = b""
        while b"\r\n\r\n" not in interim:
            interim += sock.recv(65536)
        assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(b"hello")
        head, _, body = read_response(sock).partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK") and json.loads(body)["request"]["body_bytes"] == 5


def test_chunked_and_unframed_responses_pass_through(
    ingress: IngressHarness, raw_pod: Callable[[Handler], RawPod]
) -> None:
    def framings(conn: int, request: int, head: bytes, sock: socket.socket) -> bool:
        if head.startswith(b"GET /chunked"):
            sock.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: keep-alive\r\n\r\n"
                         b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
            return True
        sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end")
        return False

    pod = raw_pod(framings)
    ingress.update(RouteTable(default=_default()), {BACKEND: [pod.endpoint()]})
    answer = raw_exchange(
        ingress.port, b"GET /chunked HTTP/1.1\r\nHost: a\r\n\r\nGET /eof HTTP/1.1\r\nHost: a\r\n\r\n"
    )
    first, _, second = answer.partition(b"0\r\n\r\n")
    # The pod's hop-by-hop Connection header is dropped; the chunked body passes as it came.
    assert first == b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n"
    # A body without a length ends when the pod closes: the client connection ends with it.
    assert second == b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\nuntil the end"


def test_a_big_response_to_a_client_that_does_not_read_holds_the_pod_back(
    ingress: IngressHarness, raw_pod: Callable[[Handler], RawPod]
) -> None:
    size, piece = 64 << 20, b"x" * (64 << 10)
    sent = [0]

    def big(conn: int, request: int, head: bytes, sock: socket.socket) -> bool:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 64 << 10)
        sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % size)
        for _ in range(size // len(piece)):
            sock.sendall(piece)
            sent[0] += len(piece)
        return True

    pod = raw_pod(big)
    ingress.update(RouteTable(default=_default()), {BACKEND: [pod.endpoint()]})
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 << 10)
        sock.settimeout(30)
        sock.connect(("127.0.0.1", ingress.port))
        sock.sendall(b"GET /big HTTP/1.1\r\nHost: a\r\n\r\n")
        seen: list[int] = []

        def settled() -> bool:
            seen.append(sent[0])
            return len(seen) > 3 and seen[-1] == seen[-4] > 0

        wait_until(settled, what="the pod's sending to stall")
        # The proxy stopped reading from the pod instead of buffering the body for the client.
        assert sent[0] < size // 2
        data = b""
        while b"\r\n\r\n" not in data:
            data += sock.recv(1 << 20)
        received = len(data.partition(b"\r\n\r\n")[2])
        while chunk := sock.recv(1 << 20):
            received += len(chunk)
            if received >= size:
                break
    assert received == size


def test_a_repeated_request_follows_endpoint_and_table_changes(
    ingress: IngressHarness, start_backend: Callable[..., Pod]
) -> None:
    pods = [start_backend() for _ in range(3)]
    ingress.serve(pods)
    request = b"GET /echo HTTP/1.1\r\nHost: shop.example\r\n\r\n"
    with socket.create_connection(("127.0.0.1", ingress.port), timeout=30) as sock:

        def send() -> bytes:
            sock.sendall(request)
            return read_response(sock)

        served = [send().split(b"X-Pod-Name: ")[1].split(b"\r\n")[0] for _ in range(6)]
        assert served == [b"backend-test-0", b"backend-test-1", b"backend-test-2"] * 2
        ingress.update(RouteTable(default=_default()), {BACKEND: endpoints(pods)[2:]})
        assert {send().split(b"X-Pod-Name: ")[1].split(b"\r\n")[0] for _ in range(3)} == {b"backend-test-2"}
        ingress.update(RouteTable(), {BACKEND: endpoints(pods)})
        assert send().startswith(b"HTTP/1.1 404 Not Found")
        ingress.serve(pods[:1])
        answer = send()
        assert answer.startswith(b"HTTP/1.1 200 OK") and b"X-Pod-Name: backend-test-0" in answer
        # Sent in two pieces, the same request is parsed again and answered the same (and half a
        # request gets no answer).
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.sendall(request[:20])
        assert select.select([sock], [], [], 0.3)[0] == []
        sock.sendall(request[20:])
        answer = read_response(sock)
        echoed = json.loads(answer.partition(b"\r\n\r\n")[2])["request"]["headers"]
        headers = {k.lower(): v for k, v in echoed.items()}
        assert headers["x-forwarded-host"] == "shop.example" and headers["x-real-ip"] == "127.0.0.1"


def test_a_head_read_whole_and_one_read_in_pieces_reach_the_pod_alike(
    ingress: IngressHarness, start_backend: Callable[..., Pod]
) -> None:
    ingress.serve([start_backend()])
    request = (b"GET /echo?x=1 HTTP/1.1\r\nHost:  shop.example  \r\nUser-Agent: test/1\r\n"
               b"Accept: */*\r\nCookie: a=b; c=d\r\n\r\n")
    with socket.create_connection(("127.0.0.1", ingress.port), timeout=30) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.sendall(request)
        whole = json.loads(read_response(sock).partition(b"\r\n\r\n")[2])["request"]
        sock.sendall(request[:30])
        assert select.select([sock], [], [], 0.3)[0] == []
        sock.sendall(request[30:])
        pieces = json.loads(read_response(sock).partition(b"\r\n\r\n")[2])["request"]
    assert whole == pieces
    assert whole["target"] == "/echo?x=1" and whole["http_version"] == "1.1"
    headers = {k.lower(): v for k, v in whole["headers"].items()}
    assert headers["x-forwarded-host"] == "shop.example" and headers["cookie"] == "a=b; c=d"
    assert headers["x-forwarded-for"] == headers["x-real-ip"] == "127.0.0.1"


def _default() -> Target:
    """The harness's catch-all target."""
    return Target(BACKEND, "default/test", "")
