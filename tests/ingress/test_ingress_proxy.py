"""The ingress proxy against real backend_pod processes: per-request balancing, routing, errors."""

from __future__ import annotations

import http.client
import json
import socket
import threading
from collections import Counter
from collections.abc import Callable

from sandbox.ingress_rules import Backend, RouteTable, build_routes
from tests.backend_pod.conftest import Backend as Pod
from tests.backend_pod.conftest import wait_until
from tests.ingress.conftest import BACKEND, IngressHarness, endpoints


def client(ingress: IngressHarness) -> http.client.HTTPConnection:
    return http.client.HTTPConnection("127.0.0.1", ingress.port, timeout=30)


def get(conn: http.client.HTTPConnection, path: str = "/", **headers: str) -> tuple[int, dict, bytes]:
    conn.request("GET", path, headers=headers)
    resp = conn.getresponse()
    return resp.status, dict(resp.headers), resp.read()


def test_one_keepalive_connection_reaches_every_pod_in_turn(
    ingress: IngressHarness, start_backend: Callable[..., Pod]
) -> None:
    pods = [start_backend() for _ in range(3)]
    ingress.serve(pods)
    conn = client(ingress)
    served = [get(conn)[1]["X-Pod-Name"] for _ in range(30)]
    assert Counter(served) == {"backend-test-0": 10, "backend-test-1": 10, "backend-test-2": 10}
    assert len(set(served[:3])) == 3
    # The proxy keeps its upstream connections alive: each pod saw one connection, ten requests.
    assert {get(conn)[1]["X-Conn-Seq"] for _ in range(3)} == {"11"}


def test_forwarded_headers_reach_the_pod(ingress: IngressHarness, start_backend: Callable[..., Pod]) -> None:
    ingress.serve([start_backend()])
    status, _, body = get(client(ingress), "/echo", Host="shop.example", **{"X-Forwarded-For": "10.0.0.9"})
    headers = {k.lower(): v for k, v in json.loads(body)["request"]["headers"].items()}
    assert status == 200
    assert headers["x-forwarded-for"] == "10.0.0.9, 127.0.0.1"
    assert headers["x-forwarded-host"] == "shop.example"
    assert headers["x-forwarded-proto"] == "http"
    assert headers["x-forwarded-port"] == str(ingress.port)
    assert headers["x-real-ip"] == "127.0.0.1"
    assert headers["host"] == "shop.example"


def test_routes_by_host_and_path_and_answers_404_without_a_match(
    ingress: IngressHarness, start_backend: Callable[..., Pod]
) -> None:
    web, api = start_backend(), start_backend()
    ingresses = [
        {
            "metadata": {"name": "shop", "namespace": "default", "creationTimestamp": "2026-01-01T00:00:00Z"},
            "spec": {
                "ingressClassName": "nginx",
                "rules": [
                    {
                        "host": "shop.example",
                        "http": {
                            "paths": [
                                {
                                    "path": "/",
                                    "pathType": "Prefix",
                                    "backend": {"service": {"name": "web", "port": {"number": 80}}},
                                },
                                {
                                    "path": "/api",
                                    "pathType": "Prefix",
                                    "backend": {"service": {"name": "api", "port": {"name": "http"}}},
                                },
                            ]
                        },
                    },
                ],
            },
        }
    ]
    classes = [{"metadata": {"name": "nginx"}, "spec": {"controller": "test/ingress"}}]
    routes = build_routes(ingresses, classes, controller="test/ingress")
    ingress.update(
        routes,
        {
            Backend("default", "web", 80): endpoints([web]),
            Backend("default", "api", "http"): [(api.host, api.port, "api-pod")],
        },
    )
    conn = client(ingress)
    assert get(conn, "/api/orders?x=1", Host="shop.example")[1]["X-Pod-Name"] == "backend-test-1"
    assert get(conn, "/apis", Host="shop.example")[1]["X-Pod-Name"] == "backend-test-0"
    assert get(conn, "/", Host="SHOP.example:8080")[1]["X-Pod-Name"] == "backend-test-0"
    status, _, body = get(conn, "/", Host="other.example")
    assert status == 404 and b"404 Not Found" in body
    # A proxy-made answer keeps the connection usable.
    assert get(conn, "/api", Host="shop.example")[1]["X-Pod-Name"] == "backend-test-1"


def test_no_ready_endpoint_is_503(ingress: IngressHarness) -> None:
    ingress.serve([])
    status, _, body = get(client(ingress))
    assert status == 503 and b"503 Service Temporarily Unavailable" in body


def test_endpoint_changes_apply_to_the_next_request(
    ingress: IngressHarness, start_backend: Callable[..., Pod]
) -> None:
    pods = [start_backend() for _ in range(2)]
    ingress.serve(pods)
    conn = client(ingress)
    assert {get(conn)[1]["X-Pod-Name"] for _ in range(4)} == {"backend-test-0", "backend-test-1"}
    ingress.update(RouteTable(default=ingress.proxy.routes.default), {BACKEND: endpoints(pods)[:1]})
    assert {get(conn)[1]["X-Pod-Name"] for _ in range(4)} == {"backend-test-0"}
    # The endpoint that left is drained: its idle pooled connection is closed.
    wait_until(lambda: pods[1].metric("backend_open_connections") == 1, what="only the metrics connection")


def test_a_draining_endpoint_finishes_its_request_in_flight(
    ingress: IngressHarness, start_backend: Callable[..., Pod]
) -> None:
    pods = [start_backend() for _ in range(2)]
    ingress.serve(pods[:1])
    result: list[tuple[int, dict, bytes]] = []
    thread = threading.Thread(target=lambda: result.append(get(client(ingress), "/delay?ms=700")))
    thread.start()
    wait_until(lambda: pods[0].metric("backend_in_flight_requests") >= 1, what="the slow request in flight")
    ingress.serve(pods[1:])
    thread.join(timeout=30)
    assert result[0][0] == 200 and result[0][1]["X-Pod-Name"] == "backend-test-0"
    assert get(client(ingress))[1]["X-Pod-Name"] == "backend-test-1"
    wait_until(lambda: pods[0].metric("backend_open_connections") == 1, what="the drained connection closed")


def test_request_bodies_and_head_requests(ingress: IngressHarness, start_backend: Callable[..., Pod]) -> None:
    ingress.serve([start_backend()])
    conn = client(ingress)
    conn.request("POST", "/echo", body=b"x" * 5000)
    resp = conn.getresponse()
    assert json.loads(resp.read())["request"]["body_bytes"] == 5000
    conn.request(
        "POST",
        "/echo",
        body=iter([b"abc", b"defg"]),
        encode_chunked=True,
        headers={"Transfer-Encoding": "chunked"},
    )
    resp = conn.getresponse()
    assert json.loads(resp.read())["request"]["body_bytes"] == 7
    conn.request("HEAD", "/")
    resp = conn.getresponse()
    assert resp.status == 200 and resp.read() == b"" and int(resp.headers["Content-Length"]) > 0
    assert get(conn)[0] == 200


def test_pods_closing_connections_and_refusing_them(
    ingress: IngressHarness, start_backend: Callable[..., Pod]
) -> None:
    recycling = start_backend(env={"MAX_CONN_REQUESTS": "1"})
    ingress.serve([recycling])
    conn = client(ingress)
    for _ in range(5):
        status, headers, _ = get(conn)
        assert status == 200 and headers["X-Conn-Seq"] == "1" and "close" not in headers.get("Connection", "")
    dead = start_backend()
    dead.proc.kill()
    dead.proc.wait()
    ingress.serve([recycling, dead])
    assert {get(conn)[0] for _ in range(6)} == {200}
    ingress.serve([dead])
    assert get(conn)[0] == 502


def test_http10_client_and_pipelined_requests(
    ingress: IngressHarness, start_backend: Callable[..., Pod]
) -> None:
    ingress.serve([start_backend() for _ in range(2)])
    with socket.create_connection(("127.0.0.1", ingress.port), timeout=30) as sock:
        sock.sendall(
            b"GET / HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
        )
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    assert data.count(b"HTTP/1.1 200 OK") == 2
    assert b"X-Pod-Name: backend-test-0" in data and b"X-Pod-Name: backend-test-1" in data
    with socket.create_connection(("127.0.0.1", ingress.port), timeout=30) as sock:
        sock.sendall(b"GET / HTTP/1.0\r\n\r\n")
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    assert data.startswith(b"HTTP/1.1 200 OK") and b"Connection: close" in data


def test_malformed_requests_get_400(ingress: IngressHarness) -> None:
    ingress.serve([])
    with socket.create_connection(("127.0.0.1", ingress.port), timeout=30) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nBad Header\r\n\r\n")
        data = sock.recv(65536)
    assert data.startswith(b"HTTP/1.1 400 Bad Request")
