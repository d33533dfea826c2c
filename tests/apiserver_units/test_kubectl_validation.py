"""End to end through the bundled kubectl: the server-side validation, OpenAPI and Tables of this
package as a user sees them (the messages, `kubectl explain`, the `-o wide` columns)."""

from __future__ import annotations

import json
import re
import subprocess
import time

import pytest

from tests.conftest import REPO, Sandbox

pytestmark = pytest.mark.sandbox


def kubectl(box: Sandbox, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    """Run the bundled kubectl against ``box`` (bounded, never raises on a non-zero exit)."""
    return box.run_kubectl(*args, stdin=stdin, check=False)


def test_invalid_manifest_gets_the_real_message_and_creates_nothing(sandbox: Sandbox) -> None:
    manifest = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "Bad_Name"},
        "spec": {
            "replicas": -1,
            "selector": {"matchLabels": {"app": "bad"}},
            "template": {
                "metadata": {"labels": {"app": "bad"}},
                "spec": {
                    "containers": [{"name": "web", "image": "nginx", "ports": [{"containerPort": 70000}]}]
                },
            },
        },
    }
    result = kubectl(sandbox, "apply", "-f", "-", stdin=json.dumps(manifest))
    assert result.returncode != 0
    assert 'The Deployment "Bad_Name" is invalid:' in result.stderr
    assert "* spec.replicas: Invalid value: -1: must be greater than or equal to 0" in result.stderr
    assert (
        "* spec.template.spec.containers[0].ports[0].containerPort: Invalid value: 70000: "
        "must be between 1 and 65535, inclusive"
    ) in result.stderr
    assert '* metadata.name: Invalid value: "Bad_Name": a lowercase RFC 1123 subdomain' in result.stderr
    names = kubectl(sandbox, "get", "deployments", "-o", "name")
    assert "Bad_Name" not in names.stdout


def test_unknown_fields_are_rejected_like_a_real_server(sandbox: Sandbox) -> None:
    manifest = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "strict-check"},
        "data": {"a": "1"},
        "dta": {"b": "2"},
    }
    result = kubectl(sandbox, "apply", "-f", "-", stdin=json.dumps(manifest))
    assert result.returncode != 0
    assert 'strict decoding error: unknown field "dta"' in result.stderr


def test_plain_apply_of_the_sample_manifests_validates(sandbox: Sandbox) -> None:
    result = kubectl(sandbox, "apply", "--dry-run=server", "-f", str(REPO / "k8s"))
    assert result.returncode == 0, result.stderr
    for name in ("deployment.apps/backend", "service/backend-service", "pod/frontend"):
        assert re.search(rf"^{re.escape(name)} \w+ \(server dry run\)$", result.stdout, re.M), result.stdout


def test_kubectl_explain_reads_the_openapi_documents(sandbox: Sandbox) -> None:
    result = kubectl(sandbox, "explain", "deployment.spec.strategy")
    assert result.returncode == 0, result.stderr
    assert "KIND:       Deployment" in result.stdout
    assert "FIELD: strategy <DeploymentStrategy>" in result.stdout
    assert re.search(r"^\s+rollingUpdate\s+<RollingUpdateDeployment>", result.stdout, re.M)
    ports = kubectl(sandbox, "explain", "pods.spec.containers.ports.containerPort")
    assert "FIELD: containerPort <integer>" in ports.stdout
    target = kubectl(sandbox, "explain", "svc.spec.ports.targetPort")
    assert "FIELD: targetPort <IntOrString>" in target.stdout
    limits = kubectl(sandbox, "explain", "pods.spec.containers.resources.limits")
    assert "FIELD: limits <map[string]Quantity>" in limits.stdout


def listed(box: Sandbox, *args: str, timeout: float = 60.0) -> str:
    """`kubectl get ...` output once it lists something (controllers create objects asynchronously)."""
    deadline = time.monotonic() + timeout
    while True:
        output = kubectl(box, "get", *args).stdout
        if output.strip() or time.monotonic() > deadline:
            return output
        time.sleep(0.2)


def header_of(output: str) -> list[str]:
    return re.split(r"\s{2,}", output.splitlines()[0].strip())


def test_wide_columns_of_the_sample_app(sandbox: Sandbox) -> None:
    deploy = listed(sandbox, "deployment", "backend", "-o", "wide")
    assert header_of(deploy) == [
        "NAME",
        "READY",
        "UP-TO-DATE",
        "AVAILABLE",
        "AGE",
        "CONTAINERS",
        "IMAGES",
        "SELECTOR",
    ]
    assert re.search(r"^backend\s+\d+/\d+\s+\d+\s+\d+\s+\S+\s+backend\s+lb-demo\s+app=backend$", deploy, re.M)
    rs = listed(sandbox, "rs", "-l", "app=backend", "-o", "wide")
    assert header_of(rs) == ["NAME", "DESIRED", "CURRENT", "READY", "AGE", "CONTAINERS", "IMAGES", "SELECTOR"]
    svc = listed(sandbox, "svc", "backend-service", "-o", "wide")
    assert header_of(svc) == ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE", "SELECTOR"]
    assert re.search(
        r"^backend-service\s+NodePort\s+\S+\s+<none>\s+80:30080/TCP\s+\S+\s+app=backend$", svc, re.M
    )
    nodes = listed(sandbox, "nodes", "-o", "wide")
    assert header_of(nodes) == [
        "NAME",
        "STATUS",
        "ROLES",
        "AGE",
        "VERSION",
        "INTERNAL-IP",
        "EXTERNAL-IP",
        "OS-IMAGE",
        "KERNEL-VERSION",
        "CONTAINER-RUNTIME",
    ]
    slices = kubectl(
        sandbox, "get", "endpointslices", "-l", "kubernetes.io/service-name=backend-service"
    ).stdout
    assert header_of(slices) == ["NAME", "ADDRESSTYPE", "PORTS", "ENDPOINTS", "AGE"]


def test_a_nodes_pod_cidr_cannot_be_changed(sandbox: Sandbox) -> None:
    name = "cidr-node"
    node = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name},
            "spec": {"podCIDRs": ["10.244.7.0/24"]}}
    assert kubectl(sandbox, "apply", "-f", "-", stdin=json.dumps(node)).returncode == 0
    try:
        change = json.dumps({"spec": {"podCIDR": "10.250.1.0/24", "podCIDRs": ["10.250.1.0/24"]}})
        result = kubectl(sandbox, "patch", "node", name, "--type", "merge", "-p", change)
        assert result.returncode == 1
        assert (f'The Node "{name}" is invalid: spec.podCIDRs: Forbidden: node updates may not change '
                'podCIDR except from "" to valid') in result.stderr
        after = json.loads(kubectl(sandbox, "get", "node", name, "-o", "json").stdout)
        assert after["spec"]["podCIDRs"] == ["10.244.7.0/24"] and after["spec"]["podCIDR"] == "10.244.7.0/24"
    finally:
        kubectl(sandbox, "delete", "node", name)
