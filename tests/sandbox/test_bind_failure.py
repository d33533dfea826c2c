"""A Service address the proxy cannot listen on is reported on the Service, the Kubernetes way:
a Warning Event, once, and the listener comes up by itself when the address is freed."""

from __future__ import annotations

import json
import random
import socket

import pytest

from tests.sandbox.conftest import Kube, wait_until

pytestmark = pytest.mark.sandbox


def _occupy_node_port() -> socket.socket:
    """A listening socket on 127.0.0.1:<a free port in the NodePort range>, as another program."""
    for port in random.sample(range(30000, 32768), 200):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            sock.close()
            continue
        sock.listen(1)
        return sock
    pytest.fail("no free port in the NodePort range")


def _answers(port: int) -> bool:
    """127.0.0.1:port accepts a connection and serves the backend."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=3) as conn:
            conn.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            return conn.recv(64).startswith(b"HTTP/1.1 200")
    except OSError:
        return False


def test_node_port_taken_by_another_program_is_a_warning_event(kube: Kube) -> None:
    """127.0.0.1:<nodePort> held elsewhere: FailedToBindPort naming the address and the error,
    not repeated by the proxy's retries; freeing the port lets the Service answer there."""
    blocker = _occupy_node_port()
    port = blocker.getsockname()[1]
    try:
        service = {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "taken"},
            "spec": {
                "type": "NodePort",
                "selector": {"app": "backend"},
                "ports": [{"name": "http", "port": 80, "targetPort": "http", "nodePort": port}],
            },
        }
        kube.run("apply", "-f", "-", stdin=json.dumps(service))

        def warnings() -> list[dict]:
            return kube.get(
                "events", "--field-selector", "involvedObject.name=taken,reason=FailedToBindPort"
            )["items"]

        (event,) = wait_until(warnings, timeout=60, what="a FailedToBindPort event on the Service")
        assert event["type"] == "Warning"
        assert event["involvedObject"]["kind"] == "Service"
        assert f"127.0.0.1:{port}" in event["message"]
        assert "address already in use" in event["message"]
        assert f"127.0.0.1:{port}" in kube.run("describe", "service", "taken")
    finally:
        blocker.close()
    wait_until(lambda: _answers(port), timeout=60, what=f"the Service to answer on 127.0.0.1:{port}")
    assert len(warnings()) == 1
