"""The sandbox kubelet and scheduler against a live sandbox, through the bundled kubectl: image
references that do not parse, scheduling gates, the state directory's permissions."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
import uuid

import pytest

from tests.conftest import Sandbox
from tests.sandbox.conftest import Kube, wait_until

pytestmark = pytest.mark.sandbox


@pytest.fixture
def ns_kube(sandbox: Sandbox) -> Kube:
    """kubectl against the shared sandbox, in a namespace of this test's own (the default
    namespace of the kubectl calls below is passed explicitly with -n)."""
    return Kube(sandbox)


def _namespace(kube: Kube) -> str:
    name = f"kubelet-{uuid.uuid4().hex[:8]}"
    kube.run("create", "namespace", name)
    return name


def _waiting(pod: dict) -> dict:
    statuses = pod.get("status", {}).get("containerStatuses") or [{}]
    return statuses[0].get("state", {}).get("waiting") or {}


def test_invalid_image_name_is_reported_and_the_pod_deletes(ns_kube: Kube) -> None:
    """An image typo (kubectl run refuses it, apply and set image do not): InvalidImageName as the
    kubelet reports it, and a pod that deletes normally."""
    ns = _namespace(ns_kube)
    ns_kube.run("-n", ns, "run", "typo", "--image=lb-demo", "--restart=Never")
    wait_until(
        lambda: ns_kube.get("-n", ns, "pod", "typo")["status"].get("phase") == "Running",
        what="pod typo Running",
    )
    bad = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "bad", "namespace": ns},
        "spec": {"containers": [{"name": "c", "image": "lb-demo:bad tag"}]},
    }
    ns_kube.run("apply", "-f", "-", stdin=json.dumps(bad))

    def invalid() -> dict | None:
        pod = ns_kube.get("-n", ns, "pod", "bad")
        return pod if _waiting(pod).get("reason") == "InvalidImageName" else None

    pod = wait_until(invalid, what="InvalidImageName")
    assert _waiting(pod)["message"] == (
        'Failed to apply default image tag "lb-demo:bad tag": couldn\'t parse image reference '
        '"lb-demo:bad tag": invalid reference format'
    )
    assert "InvalidImageName" in ns_kube.run("-n", ns, "get", "pod", "bad")
    events = json.loads(
        ns_kube.run("-n", ns, "get", "events", "--field-selector", "involvedObject.name=bad", "-o", "json")
    )["items"]
    reasons = {(e["type"], e["reason"]) for e in events}
    assert ("Warning", "InspectFailed") in reasons and ("Warning", "Failed") in reasons
    assert any(e["message"] == "Error: InvalidImageName" for e in events)
    # The `kubectl set image` typo on a running pod: the kubelet restarts the container with the
    # new image ("definition changed") and reports InvalidImageName too.
    ns_kube.run("-n", ns, "set", "image", "pod/typo", "typo=lb-demo:bad tag")

    def typo_invalid() -> bool:
        return _waiting(ns_kube.get("-n", ns, "pod", "typo")).get("reason") == "InvalidImageName"

    wait_until(typo_invalid, what="InvalidImageName after set image")
    assert "Container typo definition changed, will be restarted" in ns_kube.run(
        "-n", ns, "describe", "pod", "typo"
    )
    # A pod deletes normally (no --force) whatever its image.
    ns_kube.run("-n", ns, "delete", "pod", "bad", "typo", "--wait=true", "--timeout=60s")
    assert json.loads(ns_kube.run("-n", ns, "get", "pods", "-o", "json"))["items"] == []
    ns_kube.run("delete", "namespace", ns, "--wait=false")


def test_scheduling_gated_pod_is_not_bound(ns_kube: Kube) -> None:
    """A pod with schedulingGates stays unbound: PodScheduled False/SchedulingGated, shown as such."""
    ns = _namespace(ns_kube)
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "gated", "namespace": ns},
        "spec": {
            "schedulingGates": [{"name": "example.com/wait"}],
            "containers": [{"name": "c", "image": "lb-demo"}],
        },
    }
    ns_kube.run("apply", "-f", "-", stdin=json.dumps(pod))

    def gated() -> dict | None:
        got = ns_kube.get("-n", ns, "pod", "gated")
        conds = {c["type"]: c for c in got["status"].get("conditions") or []}
        scheduled = conds.get("PodScheduled") or {}
        return got if scheduled.get("reason") == "SchedulingGated" else None

    got = wait_until(gated, what="PodScheduled=False/SchedulingGated")
    scheduled = next(c for c in got["status"]["conditions"] if c["type"] == "PodScheduled")
    assert scheduled["status"] == "False"
    assert scheduled["message"] == "Scheduling is blocked due to non-empty scheduling gates"
    assert not got["spec"].get("nodeName")
    assert "SchedulingGated" in ns_kube.run("-n", ns, "get", "pod", "gated")
    events = json.loads(ns_kube.run("-n", ns, "get", "events", "-o", "json"))["items"]
    assert not [e for e in events if e["reason"] in ("Scheduled", "FailedScheduling")]
    ns_kube.run("delete", "namespace", ns, "--wait=false")


def test_state_directory_is_private(sandbox: Sandbox) -> None:
    """The state directory is 0700; the token, kubeconfig, store and container logs 0600."""
    state = sandbox.state_dir
    assert stat.S_IMODE(state.stat().st_mode) == 0o700
    for name in ("token", "kubeconfig", "store.sqlite3", "ca.key", "server.key"):
        assert stat.S_IMODE((state / name).stat().st_mode) == 0o600, name
    logs = wait_until(lambda: list((state / "logs").rglob("*.log")), what="a container log written")
    assert {str(p.relative_to(state)): oct(stat.S_IMODE(p.stat().st_mode)) for p in logs
            if stat.S_IMODE(p.stat().st_mode) != 0o600} == {}


def _ready(pod: dict) -> dict:
    return next((c for c in pod["status"].get("conditions") or [] if c["type"] == "Ready"), {})


def test_readiness_gate_decides_ready_and_the_endpoints(ns_kube: Kube) -> None:
    """A pod with the lb-demo.dev/serving gate starts serving (the sandbox's serving-gate
    controller); setting the condition False through pods/status makes it unready with the
    kubelet's reason and message, drops it from the endpoints, and True brings it back."""
    ns = _namespace(ns_kube)
    gate = "lb-demo.dev/serving"
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "gated", "namespace": ns, "labels": {"app": "gated"}},
        "spec": {
            "readinessGates": [{"conditionType": gate}],
            "containers": [
                {"name": "backend", "image": "lb-demo", "ports": [{"name": "http", "containerPort": 8080}]}
            ],
        },
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "gated", "namespace": ns},
        "spec": {"selector": {"app": "gated"}, "ports": [{"port": 80, "targetPort": "http"}]},
    }
    ns_kube.run("apply", "-f", "-", stdin=json.dumps(pod))
    ns_kube.run("apply", "-f", "-", stdin=json.dumps(service))

    def endpoint_ready() -> bool | None:
        slices = ns_kube.get("-n", ns, "endpointslices", "-l", "kubernetes.io/service-name=gated")["items"]
        endpoints = [e for s in slices for e in s.get("endpoints") or []]
        return endpoints[0]["conditions"]["ready"] if endpoints else None

    wait_until(
        lambda: _ready(ns_kube.get("-n", ns, "pod", "gated")).get("status") == "True",
        what="gated pod Ready",
    )
    got = ns_kube.get("-n", ns, "pod", "gated")
    condition = next(c for c in got["status"]["conditions"] if c["type"] == gate)
    assert (condition["status"], condition["reason"]) == ("True", "ServingByDefault")
    wait_until(lambda: endpoint_ready() is True, what="the endpoint ready")

    switch = {"status": {"conditions": [{"type": gate, "status": "False", "reason": "SwitchedOff"}]}}
    ns_kube.run(
        "-n",
        ns,
        "patch",
        "pod",
        "gated",
        "--subresource=status",
        "--type=strategic",
        "-p",
        json.dumps(switch),
    )
    wait_until(
        lambda: _ready(ns_kube.get("-n", ns, "pod", "gated")).get("status") == "False", what="Ready False"
    )
    ready = _ready(ns_kube.get("-n", ns, "pod", "gated"))
    assert ready["reason"] == "ReadinessGatesNotReady"
    assert ready["message"] == f'the status of pod readiness gate "{gate}" is not "True", but False'
    wait_until(lambda: endpoint_ready() is False, what="the endpoint not ready")
    described = ns_kube.run("-n", ns, "describe", "pod", "gated")
    assert "Readiness Gates:" in described
    assert any(line.split() == [gate, "False"] for line in described.splitlines())
    # The container itself never stopped being ready, nor running.
    got = ns_kube.get("-n", ns, "pod", "gated")
    assert got["status"]["containerStatuses"][0]["ready"] is True
    assert (
        next(c for c in got["status"]["conditions"] if c["type"] == "ContainersReady")["status"] == "True"
    )

    switch["status"]["conditions"][0].update(status="True", reason="SwitchedOn")
    ns_kube.run(
        "-n",
        ns,
        "patch",
        "pod",
        "gated",
        "--subresource=status",
        "--type=strategic",
        "-p",
        json.dumps(switch),
    )
    wait_until(lambda: endpoint_ready() is True, what="the endpoint ready again")
    assert "1/1" in ns_kube.run("-n", ns, "get", "pod", "gated", "-o", "wide")  # READINESS GATES
    ns_kube.run("delete", "namespace", ns, "--wait=false")


def _image_names(node: dict) -> set[str]:
    return {name for image in node["status"].get("images") or [] for name in image.get("names") or []}


def test_nodes_publish_their_images(ns_kube: Kube) -> None:
    """Every node lists the images it holds in status.images (biggest first, with digest and tag
    names, as `kubectl get node -o yaml` shows on a real cluster); an image loaded onto a node
    appears there within the next lease renewal (lesson 7: "the nodes' images")."""
    def real_nodes() -> list[dict]:
        nodes = json.loads(ns_kube.run("get", "nodes", "-o", "json"))["items"]
        return [n for n in nodes if not n["metadata"]["name"].startswith("sandbox-sim-")]

    real = wait_until(lambda: len(real_nodes()) == 3 and real_nodes(), what="the 3 nodes registered")
    for node in real:
        assert "docker.io/library/lb-demo:v2" in _image_names(node), node["metadata"]["name"]
        sizes = [image["sizeBytes"] for image in node["status"]["images"]]
        assert sizes == sorted(sizes, reverse=True)
    loaded = subprocess.run(
        [sys.executable, "-m", "sandbox", "image", "load", "busybox", "--node", "sandbox-node-1",
         "--state-dir", str(ns_kube.box.state_dir)],
        capture_output=True, text=True, timeout=60,
    )
    assert loaded.returncode == 0, loaded.stderr

    def published() -> bool:
        node = json.loads(ns_kube.run("get", "node", "sandbox-node-1", "-o", "json"))
        return "docker.io/library/busybox:latest" in _image_names(node)

    wait_until(published, timeout=60, what="busybox in sandbox-node-1's status.images")
