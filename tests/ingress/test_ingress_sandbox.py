"""The ingress controller in a live sandbox: kubectl's view, and per-request vs per-connection balancing."""

from __future__ import annotations

import http.client
import json
from collections import Counter

from tests import polling
from tests.conftest import Sandbox


def kubectl(sandbox: Sandbox, *args: str, input_: str | None = None, check: bool = True) -> str:
    out = sandbox.run_kubectl(*args, stdin=input_, check=check)
    return out.stdout + out.stderr


def get_json(sandbox: Sandbox, *args: str) -> dict:
    return json.loads(kubectl(sandbox, "get", *args, "-o", "json"))


def ingress_address(sandbox: Sandbox) -> tuple[str, int]:
    """Where `kubectl get ingress backend` says the controller listens (ip, port)."""

    def published() -> tuple[str, int] | None:
        lb = (get_json(sandbox, "ingress", "backend").get("status") or {}).get("loadBalancer") or {}
        entries = lb.get("ingress") or []
        if not entries:
            return None
        ports = entries[0].get("ports") or [{"port": 80}]
        return entries[0]["ip"], int(ports[0]["port"])

    return polling.wait_until(published, timeout=60, what="the Ingress's published address")


def ready_pods(sandbox: Sandbox) -> set[str]:
    pods = get_json(sandbox, "pods", "-l", "app=backend")["items"]
    return {
        p["metadata"]["name"]
        for p in pods
        if any(c["type"] == "Ready" and c["status"] == "True" for c in p["status"].get("conditions") or [])
    }


def pods_on_one_connection(host: str, port: int, requests: int) -> Counter:
    conn = http.client.HTTPConnection(host, port, timeout=30)
    served: Counter = Counter()
    try:
        for _ in range(requests):
            conn.request("GET", "/")
            resp = conn.getresponse()
            resp.read()
            assert resp.status == 200
            served[resp.headers["X-Pod-Name"]] += 1
    finally:
        conn.close()
    return served


def test_kubectl_shows_the_sample_ingress_and_its_class(sandbox: Sandbox) -> None:
    ip, _ = ingress_address(sandbox)
    table = kubectl(sandbox, "get", "ingress")
    header, row = table.splitlines()[:2]
    assert header.split() == ["NAME", "CLASS", "HOSTS", "ADDRESS", "PORTS", "AGE"]
    assert row.split()[:5] == ["backend", "nginx", "*", ip, "80"]
    assert "lb-demo.dev/sandbox-ingress" in kubectl(sandbox, "get", "ingressclass")
    described = kubectl(sandbox, "describe", "ingress", "backend")
    assert f"Address:          {ip}" in described
    assert "backend-service:http (" in described


def test_service_pins_a_keepalive_connection_the_ingress_spreads_it(sandbox: Sandbox) -> None:
    pods = polling.wait_until(
        lambda: len(ready_pods(sandbox)) == 3 and ready_pods(sandbox),
        timeout=120,
        what="3 ready backend pods",
    )
    ip, port = ingress_address(sandbox)
    svc = get_json(sandbox, "service", "backend-service")["spec"]
    through_service = pods_on_one_connection(svc["clusterIP"], 80, 30)
    assert len(through_service) == 1, through_service
    through_ingress = polling.wait_until(
        lambda: (c := pods_on_one_connection(ip, port, 30)) and set(c) == pods and c,
        timeout=30,
        what="the Ingress reaching every ready pod",
    )
    assert sorted(through_ingress.values()) == [10, 10, 10]


def test_requests_without_a_matching_rule_get_404(sandbox: Sandbox) -> None:
    ip, port = ingress_address(sandbox)
    kubectl(
        sandbox,
        "apply",
        "-f",
        "-",
        input_=json.dumps(
            {
                "apiVersion": "networking.k8s.io/v1",
                "kind": "Ingress",
                "metadata": {"name": "shop-only", "namespace": "default"},
                "spec": {
                    "rules": [
                        {
                            "host": "shop.test",
                            "http": {
                                "paths": [
                                    {
                                        "path": "/",
                                        "pathType": "Prefix",
                                        "backend": {
                                            "service": {"name": "nothing-here", "port": {"number": 80}}
                                        },
                                    }
                                ]
                            },
                        }
                    ]
                },
            }
        ),
    )
    try:
        assert get_json(sandbox, "ingress", "shop-only")["spec"]["ingressClassName"] == "nginx"

        def status() -> int:
            conn = http.client.HTTPConnection(ip, port, timeout=30)
            conn.request("GET", "/", headers={"Host": "shop.test"})
            return conn.getresponse().status

        assert polling.wait_until(lambda: status() == 503, timeout=30, what="503 for a backend without pods")
    finally:
        kubectl(sandbox, "delete", "ingress", "shop-only")


def test_bad_ingresses_are_rejected_with_causes(sandbox: Sandbox) -> None:
    bad = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"name": "bad"},
        "spec": {
            "rules": [
                {
                    "host": "10.0.0.1",
                    "http": {
                        "paths": [
                            {
                                "path": "api",
                                "pathType": "Prefix",
                                "backend": {"service": {"name": "backend-service", "port": {}}},
                            }
                        ]
                    },
                }
            ]
        },
    }
    out = kubectl(sandbox, "create", "-f", "-", input_=json.dumps(bad), check=False)
    assert 'The Ingress "bad" is invalid' in out
    assert 'spec.rules[0].host: Invalid value: "10.0.0.1": must be a DNS name, not an IP address' in out
    assert 'spec.rules[0].http.paths[0].path: Invalid value: "api": must be an absolute path' in out
    assert "spec.rules[0].http.paths[0].backend: Required value: port name or number is required" in out
    assert "NotFound" in kubectl(sandbox, "get", "ingress", "bad", check=False)
