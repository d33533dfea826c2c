"""Debian's kubectl 1.20 against the sandbox, as a learner on an old distribution runs it: apply
(with its client-side validation from `/openapi/v2`), explain, get, describe, scale, rollout
status, logs, exec and port-forward (a plain `Upgrade: SPDY/3.1`) and autoscale (autoscaling/v1)."""

from __future__ import annotations

import http.client
import json
import signal
import subprocess
from typing import Any

import yaml

from tests import polling
from tests.conftest import free_port
from tests.kubectl120.conftest import Kubectl120
from tests.terminal import Terminal


def deployment(replicas: int, *, extra_port_field: dict | None = None) -> str:
    port: dict = {"containerPort": 8080, **(extra_port_field or {})}
    return yaml.safe_dump({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}},
                              "spec": {"containers": [{"name": "web", "image": "lb-demo", "ports": [port],
                                                       "resources": {"requests": {"cpu": "50m"}}}]}}},
    })


def running(k: Kubectl120) -> str:
    """Apply the web Deployment with one replica and wait for it; its pod's name."""
    assert "deployment.apps/web created" in k.ok("apply", "-f", "-", stdin=deployment(1))
    assert 'deployment "web" successfully rolled out' in k.ok("rollout", "status", "deploy/web",
                                                              "--timeout=120s", timeout=150)
    pods = json.loads(k.ok("get", "pods", "-l", "app=web", "-o", "json"))["items"]
    return str(pods[0]["metadata"]["name"])


def test_apply_validates_with_openapi_v2_and_the_everyday_commands_work(kubectl120: Kubectl120) -> None:
    k = kubectl120
    pod = running(k)
    assert "deployment.apps/web unchanged" in k.ok("apply", "-f", "-", stdin=deployment(1))
    # Client-side validation reads the protobuf /openapi/v2: an unknown field is refused before
    # anything is sent, with the schema's definition name.
    bad = k.run("apply", "-f", "-", stdin=deployment(2, extra_port_field={"bogus": 1}))
    assert bad.returncode == 1
    assert 'unknown field "bogus" in io.k8s.api.core.v1.ContainerPort' in bad.stderr
    assert json.loads(k.ok("get", "deploy", "web", "-o", "json"))["spec"]["replicas"] == 1
    assert "deployment.apps/web configured" in k.ok("apply", "-f", "-", stdin=deployment(2))

    explained = k.ok("explain", "deployment.spec.replicas")
    assert "KIND:     Deployment" in explained and "FIELD:    replicas <integer>" in explained
    assert "Number of desired pods." in explained
    assert "VERSION:  autoscaling/v2" in k.ok("explain", "hpa")

    table = k.ok("get", "deploy")
    assert table.split("\n")[0].split() == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
    described = k.ok("describe", "deploy", "web")
    assert "Replicas:               2 desired" in described
    assert "deployment.apps/web scaled" in k.ok("scale", "deploy/web", "--replicas=1")
    polling.wait_until(lambda: "1/1" in k.ok("get", "deploy", "web"), timeout=120, interval=0.5,
                       what="the Deployment scaled back to one Ready replica")
    assert "event=listening" in k.ok("logs", pod)


def test_exec_and_port_forward_over_a_plain_spdy_upgrade(kubectl120: Kubectl120) -> None:
    k = kubectl120
    pod = running(k)
    done = k.run("exec", pod, "--", "sh", "-c", "hostname; echo oops >&2; exit 3")
    assert done.stdout == f"{pod}\n"
    assert "oops" in done.stderr and "command terminated with exit code 3" in done.stderr
    assert done.returncode == 3
    counted = k.ok("exec", "-i", pod, "--", "wc", "-l", stdin="".join(f"{i}\n" for i in range(20000)))
    assert counted.strip() == "20000"

    port = free_port()
    forward = subprocess.Popen(k.argv("port-forward", pod, f"{port}:8080"), env=k.box.kubectl_env(),
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert forward.stdout is not None
        assert f"Forwarding from 127.0.0.1:{port} -> 8080" in forward.stdout.readline()
        for _ in range(3):  # three connections over the one SPDY connection
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            conn.request("GET", "/")
            answer = json.loads(conn.getresponse().read())
            conn.close()
            assert answer["pod"]["name"] == pod
    finally:
        forward.send_signal(signal.SIGINT)
        forward.wait(timeout=30)


def test_exec_with_a_terminal_gets_its_size_over_the_resize_stream(kubectl120: Kubectl120) -> None:
    k = kubectl120
    pod = running(k)
    terminal = Terminal(k.argv("exec", "-it", pod, "--", "sh"), k.box.kubectl_env())
    try:
        terminal.resize(33, 111)
        # the first resize races the first command: ask until it has arrived
        assert terminal.ask_until(b"stty size\r", b"\n33 111\r\n"), terminal.output
        terminal.resize(40, 120)
        assert terminal.ask_until(b"stty size\r", b"\n40 120\r\n"), terminal.output
        terminal.write(b"exit 4\r")
        assert terminal.read_until(b"command terminated with exit code 4"), terminal.output
        assert terminal.wait() == 4
    finally:
        terminal.close()


def test_autoscale_creates_an_autoscaling_v1_hpa_that_v2_clients_see(kubectl120: Kubectl120) -> None:
    k = kubectl120
    k.ok("apply", "-f", "-", stdin=deployment(1))
    created = k.run("autoscale", "deployment", "web", "--cpu-percent=60", "--min=1", "--max=3", "-v=6")
    assert created.returncode == 0, created.stderr
    assert f"POST {k.box.url}/apis/autoscaling/v1/namespaces/{k.namespace}/horizontalpodautoscalers" \
        in created.stderr
    assert "horizontalpodautoscaler.autoscaling/web autoscaled" in created.stdout
    row = k.ok("get", "hpa", "web").split("\n")[1].split()
    assert row[:3] == ["web", "Deployment/web", "cpu:"] and row[3].endswith("/60%"), row
    described = k.ok("describe", "hpa", "web")  # 1.20's describer falls back to autoscaling/v1
    assert "Target CPU utilization:   60%" in described
    stored = json.loads(k.box.kubectl("get", "horizontalpodautoscalers.v2.autoscaling", "web", "-n",
                                      k.namespace, "-o", "json"))
    assert stored["spec"]["metrics"] == [{"type": "Resource", "resource": {
        "name": "cpu", "target": {"type": "Utilization", "averageUtilization": 60}}}]


def test_apply_of_a_v1_hpa_is_validated_and_patched_at_v1(kubectl120: Kubectl120) -> None:
    k = kubectl120
    spec: dict[str, Any] = {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                            "maxReplicas": 3, "targetCPUUtilizationPercentage": 33}
    hpa = {"apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "web"},
           "spec": spec}
    assert "autoscaling/web created" in k.ok("apply", "-f", "-", stdin=json.dumps(hpa))
    spec["targetCPUUtilizationPercentage"] = 55
    assert "autoscaling/web configured" in k.ok("apply", "-f", "-", stdin=json.dumps(hpa))
    spec["targetCPU"] = 1
    refused = k.run("apply", "-f", "-", stdin=json.dumps(hpa))
    assert refused.returncode == 1
    assert 'unknown field "targetCPU" in io.k8s.api.autoscaling.v1.HorizontalPodAutoscalerSpec' \
        in refused.stderr
    row = k.ok("get", "hpa", "web", "--no-headers").split()
    assert row[3].endswith("/55%"), row
