"""The Service proxy's live connection table against a live sandbox: each connection through a
Service is listed (client, service, listener, pod) with the bytes it carried each way, and
leaves the table when it closes."""

from __future__ import annotations

import json
import socket

import pytest

from tests.sandbox.conftest import Kube, wait_until

pytestmark = pytest.mark.sandbox


def _read_response(sock: socket.socket) -> bytes:
    """One HTTP/1.1 response with a Content-Length, read whole off a keep-alive connection."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"EOF inside the headers: {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        chunk = sock.recv(65536)
        assert chunk, "EOF inside the body"
        body += chunk
    return data[: len(head) + 4] + body


def test_the_connection_table_lists_each_connection_with_its_bytes(kube: Kube) -> None:
    ip = kube.make_service()
    table = kube.box.state_dir / "proxy-connections.json"

    def connect() -> socket.socket | None:
        try:
            return socket.create_connection((ip, 80), timeout=10)
        except OSError:
            return None

    sock = wait_until(connect, timeout=30, what="the Service to accept connections")
    with sock:
        client = "{}:{}".format(*sock.getsockname())
        requests = [b"GET / HTTP/1.1\r\nHost: lb-test\r\nAccept: application/json\r\n\r\n",
                    b"GET /healthz HTTP/1.1\r\nHost: lb-test\r\nX-Padding: " + b"x" * 3000 + b"\r\n\r\n"]
        answers = []
        for request in requests:
            sock.sendall(request)
            answers.append(_read_response(sock))
        pod = next(
            line.split(b":", 1)[1].strip().decode()
            for line in answers[0].split(b"\r\n")
            if line.lower().startswith(b"x-pod-name:")
        )

        def row() -> dict | None:
            try:
                rows = json.loads(table.read_text())["connections"]
            except (OSError, ValueError):
                return None
            mine = [r for r in rows if r["client"] == client]
            if mine and mine[0]["bytesOut"] == sum(map(len, answers)):
                return mine[0]
            return None

        found = wait_until(row, timeout=30, what=f"{client}'s row with its byte counts")
        assert found["service"] == f"{kube.namespace}/lb-test:http"
        assert found["listener"] == f"{ip}:80"
        assert found["pod"] == pod
        assert found["endpoint"].endswith(":8080")
        assert found["bytesIn"] == sum(map(len, requests))
    wait_until(
        lambda: client not in {r["client"] for r in json.loads(table.read_text())["connections"]},
        timeout=30,
        what="the closed connection to leave the table",
    )
