"""`kubectl port-forward` to a pod and to `svc/NAME` with real kubectl (the WebSocket-tunnelled
SPDY protocol of kubectl 1.37), and its error when nothing listens on the pod's port."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager

from tests.conftest import KUBECTL
from tests.sandbox.conftest import Kube


@contextmanager
def port_forward(kube: Kube, target: str, remote: int, *,
                 pod_port: int | None = None) -> Iterator[tuple[int, subprocess.Popen[str]]]:
    """`kubectl port-forward TARGET :REMOTE`; (the local port kubectl chose, the process). kubectl
    says which pod port it forwards to (a Service port's targetPort for `svc/NAME`)."""
    proc = subprocess.Popen([str(KUBECTL), "-n", str(kube.namespace), "port-forward", target, f":{remote}"],
                            env=kube.box.kubectl_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        found = re.match(r"Forwarding from 127\.0\.0\.1:(\d+) -> (\d+)", line)
        assert found and found.group(2) == str(pod_port or remote), line
        yield int(found.group(1)), proc
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def get(port: int, path: str = "/", body: bytes | None = None) -> dict:
    with urllib.request.urlopen(urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=body),
                                timeout=30) as response:
        answer: dict = json.loads(response.read())
        return answer


def test_port_forward_to_a_pod_carries_requests_both_ways(kube: Kube) -> None:
    pod = kube.ready_pods()[0]["metadata"]["name"]
    with port_forward(kube, f"pod/{pod}", 8080) as (port, _):
        for _ in range(3):  # one SPDY stream pair per connection, on one tunnel
            assert get(port)["pod"]["name"] == pod
        payload = bytes(range(256)) * 2000  # 512 KB up
        assert get(port, "/echo", payload)["request"]["body_bytes"] == len(payload)


def test_port_forward_to_a_service_picks_one_of_its_pods(kube: Kube) -> None:
    ready = {p["metadata"]["name"] for p in kube.ready_pods()}
    with port_forward(kube, "svc/backend-service", 80, pod_port=8080) as (port, _):
        names = {get(port)["pod"]["name"] for _ in range(5)}
    assert len(names) == 1 and names <= ready  # kubectl resolves the Service to a single pod


def test_port_forward_to_a_closed_port_reports_the_dial_error(kube: Kube) -> None:
    pod = kube.ready_pods()[0]["metadata"]["name"]
    with port_forward(kube, f"pod/{pod}", 9) as (port, proc):
        with socket.create_connection(("127.0.0.1", port), timeout=30) as conn:
            assert conn.recv(1) == b""  # closed: nothing listens on port 9 of the pod
        out, _ = proc.communicate(timeout=30)
    assert f"error forwarding port 9 to pod {pod}" in out
    assert ":9: connect: connection refused" in out
