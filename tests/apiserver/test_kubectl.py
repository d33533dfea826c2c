"""The bundled kubectl 1.37 against a live sandbox: every command of the seed notes plus
apply, delete, watch, rollout status, logs, events, endpoints, `get all` and `-o wide`.

Read-only checks use the shared sandbox's sample objects (default namespace). Tests that
change things work in their own namespace, or in a private sandbox when they change the
sample objects themselves."""

from __future__ import annotations

import functools
import json
import re
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from sandbox import crilog
from tests import polling
from tests.conftest import KUBECTL, REPO, Sandbox

from .conftest import header_of, kubectl

pytestmark = pytest.mark.sandbox


def apply_doc(box: Sandbox, doc: dict, *extra: str) -> str:
    """`kubectl apply -f -` of one manifest; returns stdout."""
    return kubectl(box, "apply", "-f", "-", *extra, stdin=json.dumps(doc)).stdout


def ghost_pod(name: str, namespace: str, **labels: str) -> dict:
    """A pod bound to a node no kubelet runs, so nothing but the test changes it."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": labels or {"app": name}},
        "spec": {"nodeName": "ghost-node", "containers": [{"name": "main", "image": "lb-demo"}]},
    }


wait_for = functools.partial(polling.wait_until, timeout=60.0, interval=0.1)


def test_seed_commands_read_the_sample_app(sandbox: Sandbox) -> None:
    pods = kubectl(sandbox, "get", "pods").stdout
    assert header_of(pods) == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    assert re.search(r"^frontend\s+\d/1\s+\S+\s+\d+", pods, re.M)
    described = kubectl(sandbox, "describe", "pod", "frontend").stdout
    assert re.search(r"^Name:\s+frontend$", described, re.M)
    assert re.search(r"^Labels:\s+app=frontend$", described, re.M)
    assert "Containers:" in described and "Events:" in described
    deployments = kubectl(sandbox, "get", "deployment").stdout
    assert header_of(deployments) == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
    assert re.search(r"^backend\s+\d+/\d+", deployments, re.M)
    described = kubectl(sandbox, "describe", "deployment", "backend").stdout
    assert re.search(r"^Selector:\s+app=backend$", described, re.M)
    assert re.search(r"^StrategyType:\s+RollingUpdate$", described, re.M)
    assert re.search(r"^RollingUpdateStrategy:\s+0 max unavailable, 1 max surge$", described, re.M)
    services = kubectl(sandbox, "get", "svc").stdout
    assert header_of(services) == ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"]
    assert re.search(
        r"^backend-service\s+NodePort\s+127\.96\.\d+\.\d+\s+<none>\s+80:30080/TCP", services, re.M
    )
    described = kubectl(sandbox, "describe", "svc", "backend-service").stdout
    assert re.search(r"^Selector:\s+app=backend$", described, re.M)
    assert re.search(r"^NodePort:\s+http\s+30080/TCP$", described, re.M)
    assert re.search(r"^Endpoints:", described, re.M)


def test_wide_all_events_and_endpoints(sandbox: Sandbox, namespace: str) -> None:
    apply_doc(sandbox, ghost_pod("wide", namespace))
    wide = kubectl(sandbox, "get", "pods", "-o", "wide", "-n", namespace).stdout
    assert header_of(wide) == [
        "NAME",
        "READY",
        "STATUS",
        "RESTARTS",
        "AGE",
        "IP",
        "NODE",
        "NOMINATED NODE",
        "READINESS GATES",
    ]
    assert re.search(r"^wide\s+0/1\s+Pending\s+0\s+\S+\s+<none>\s+ghost-node\s+<none>\s+<none>", wide, re.M)
    uid = kubectl(sandbox, "get", "pod", "wide", "-n", namespace, "-o", "jsonpath={.metadata.uid}").stdout
    apply_doc(
        sandbox,
        {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": "wide.1", "namespace": namespace},
            "involvedObject": {"kind": "Pod", "name": "wide", "namespace": namespace, "uid": uid},
            "reason": "Testing",
            "message": "hello from the test",
            "type": "Normal",
            "firstTimestamp": "2026-01-01T00:00:00Z",
            "lastTimestamp": "2026-01-01T00:00:00Z",
            "count": 1,
            "source": {"component": "tests"},
        },
    )
    events = kubectl(sandbox, "get", "events", "-n", namespace).stdout
    assert header_of(events) == ["LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]
    assert re.search(r"Normal\s+Testing\s+pod/wide\s+hello from the test", events)
    described = kubectl(sandbox, "describe", "pod", "wide", "-n", namespace).stdout
    assert re.search(r"Normal\s+Testing\s+.*hello from the test", described)
    apply_doc(
        sandbox,
        {
            "apiVersion": "v1",
            "kind": "Endpoints",
            "metadata": {"name": "manual", "namespace": namespace},
            "subsets": [
                {"addresses": [{"ip": "127.244.9.1"}, {"ip": "127.244.9.2"}], "ports": [{"port": 8080}]}
            ],
        },
    )
    endpoints = kubectl(sandbox, "get", "endpoints", "-n", namespace).stdout
    assert header_of(endpoints) == ["NAME", "ENDPOINTS", "AGE"]
    assert re.search(r"^manual\s+127\.244\.9\.1:8080,127\.244\.9\.2:8080\s", endpoints, re.M)
    apply_doc(
        sandbox,
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "web", "namespace": namespace},
            "spec": {"selector": {"app": "nothing"}, "ports": [{"port": 80}]},
        },
    )
    everything = kubectl(sandbox, "get", "all", "-n", namespace).stdout
    assert re.search(r"^pod/wide\s", everything, re.M)
    assert re.search(r"^service/web\s+ClusterIP\s+127\.96\.", everything, re.M)


def test_get_pods_watch_streams_changes(sandbox: Sandbox, namespace: str) -> None:
    proc = subprocess.Popen(
        [str(KUBECTL), "get", "pods", "-w", "-n", namespace, "--request-timeout=60s"],
        env=sandbox.kubectl_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        time.sleep(0.5)
        apply_doc(sandbox, ghost_pod("watched", namespace))
        lines = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = proc.stdout.readline() if proc.stdout else ""
            lines.append(line)
            if line.startswith("watched"):
                break
        assert any(line.startswith("watched") for line in lines), lines
        assert re.match(r"watched\s+0/1\s+Pending\s+0\s", next(x for x in lines if x.startswith("watched")))
    finally:
        proc.terminate()
        proc.communicate(timeout=30)


def test_logs_tail_previous_and_follow(sandbox: Sandbox, namespace: str) -> None:
    apply_doc(sandbox, ghost_pod("talker", namespace))
    uid = kubectl(sandbox, "get", "pod", "talker", "-n", namespace, "-o", "jsonpath={.metadata.uid}").stdout
    waiting = kubectl(sandbox, "logs", "talker", "-n", namespace, check=False)
    assert waiting.returncode != 0 and "is waiting to start: ContainerCreating" in waiting.stderr
    log_dir = sandbox.state_dir / "logs" / f"{namespace}_talker_{uid}" / "main"
    log_dir.mkdir(parents=True)
    (log_dir / "0.log").write_bytes(crilog.encode("stdout", b"first run", full=True))  # as the kubelet writes
    current = log_dir / "1.log"
    current.write_bytes(crilog.encode("stdout", b"line one", full=True)
                        + crilog.encode("stderr", b"line two", full=True))
    for written in log_dir.glob("*.log"):  # as the kubelet writes them: private to the sandbox
        written.chmod(0o600)
    assert kubectl(sandbox, "logs", "talker", "-n", namespace).stdout == "line one\nline two\n"
    assert kubectl(sandbox, "logs", "talker", "-n", namespace, "--tail=1").stdout == "line two\n"
    assert kubectl(sandbox, "logs", "talker", "-n", namespace, "--previous").stdout == "first run\n"
    follower = subprocess.Popen(
        [str(KUBECTL), "logs", "-f", "talker", "-n", namespace],
        env=sandbox.kubectl_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert follower.stdout is not None
        assert follower.stdout.readline() == "line one\n"
        with current.open("ab") as handle:
            handle.write(crilog.encode("stdout", b"appended later", full=True))
        assert follower.stdout.readline() == "line two\n"
        assert follower.stdout.readline() == "appended later\n"
        kubectl(sandbox, "delete", "pod", "talker", "-n", namespace)
        follower.wait(timeout=30)
    finally:
        if follower.poll() is None:
            follower.kill()
        follower.communicate(timeout=30)


def test_rollout_status_uses_watch_list(sandbox: Sandbox, namespace: str) -> None:
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "idle", "namespace": namespace},
        "spec": {
            "replicas": 0,
            "selector": {"matchLabels": {"app": "idle"}},
            "template": {
                "metadata": {"labels": {"app": "idle"}},
                "spec": {"containers": [{"name": "main", "image": "lb-demo"}]},
            },
        },
    }
    apply_doc(sandbox, deployment)
    status = {
        "status": {
            "observedGeneration": 1,
            "replicas": 0,
            "updatedReplicas": 0,
            "readyReplicas": 0,
            "availableReplicas": 0,
        }
    }
    kubectl(
        sandbox,
        "patch",
        "deployment",
        "idle",
        "-n",
        namespace,
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps(status),
    )
    result = kubectl(sandbox, "rollout", "status", "deployment", "idle", "-n", namespace, "--timeout=60s")
    assert 'deployment "idle" successfully rolled out' in result.stdout


def test_scale_apply_and_delete_on_a_private_sandbox(sandbox_factory, tmp_path: Path) -> None:
    box = sandbox_factory(nodes=1)
    assert (
        kubectl(box, "scale", "deployment", "backend", "--replicas=5").stdout.strip()
        == "deployment.apps/backend scaled"
    )
    replicas = kubectl(box, "get", "deployment", "backend", "-o", "jsonpath={.spec.replicas}").stdout
    assert replicas == "5"
    unchanged = kubectl(box, "apply", "-f", str(REPO / "k8s") + "/").stdout
    assert "deployment.apps/backend configured" in unchanged
    assert "service/backend-service unchanged" in unchanged and "pod/frontend unchanged" in unchanged
    assert kubectl(box, "get", "deployment", "backend", "-o", "jsonpath={.spec.replicas}").stdout == "3"
    docs = list(yaml.safe_load_all((REPO / "k8s" / "backend.yaml").read_text()))
    docs[0]["spec"]["replicas"] = 2
    docs[0]["spec"]["template"]["spec"]["containers"][0]["image"] = "lb-demo:v2"
    changed = tmp_path / "backend-v2.yaml"
    changed.write_text(yaml.safe_dump_all(docs))
    assert "deployment.apps/backend configured" in kubectl(box, "apply", "-f", str(changed)).stdout
    spec = json.loads(kubectl(box, "get", "deployment", "backend", "-o", "json").stdout)["spec"]
    assert spec["replicas"] == 2 and spec["template"]["spec"]["containers"][0]["image"] == "lb-demo:v2"
    rollout = kubectl(box, "rollout", "status", "deployment", "backend", "--timeout=240s", timeout=300)
    assert 'deployment "backend" successfully rolled out' in rollout.stdout
    created = kubectl(box, "apply", "-f", str(REPO / "k8s" / "dashboard") + "/").stdout
    assert "created" in created
    deleted = kubectl(box, "delete", "pod", "frontend", timeout=120).stdout
    assert deleted.strip().startswith('pod "frontend" deleted')
    missing = kubectl(box, "get", "pod", "frontend", check=False)
    assert missing.returncode != 0 and 'pods "frontend" not found' in missing.stderr


def test_kubectl_create_commands_send_protobuf(sandbox: Sandbox, namespace: str) -> None:
    ns = ("-n", namespace)
    assert (
        kubectl(
            sandbox, "create", "deployment", "made", "--image=lb-demo", "--replicas=0", "--port=8080", *ns
        ).stdout.strip()
        == "deployment.apps/made created"
    )
    kubectl(sandbox, "create", "configmap", "settings", "--from-literal=colour=blue", *ns)
    kubectl(sandbox, "create", "serviceaccount", "robot", *ns)
    kubectl(sandbox, "create", "service", "clusterip", "made", "--tcp=80:8080", *ns)
    kubectl(sandbox, "create", "role", "reader", "--verb=get,list", "--resource=pods", *ns)
    kubectl(
        sandbox,
        "create",
        "rolebinding",
        "reader",
        "--role=reader",
        f"--serviceaccount={namespace}:robot",
        *ns,
    )
    deployment = json.loads(kubectl(sandbox, "get", "deployment", "made", "-o", "json", *ns).stdout)
    assert deployment["spec"]["replicas"] == 0
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert (container["image"], container["ports"][0]["containerPort"]) == ("lb-demo", 8080)
    assert (
        kubectl(sandbox, "get", "configmap", "settings", "-o", "jsonpath={.data.colour}", *ns).stdout
        == "blue"
    )
    service = json.loads(kubectl(sandbox, "get", "service", "made", "-o", "json", *ns).stdout)
    assert service["spec"]["ports"][0]["targetPort"] == 8080 and service["spec"]["selector"] == {
        "app": "made"
    }
    rules = json.loads(kubectl(sandbox, "get", "role", "reader", "-o", "json", *ns).stdout)["rules"]
    assert rules == [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}]
    subjects = json.loads(kubectl(sandbox, "get", "rolebinding", "reader", "-o", "json", *ns).stdout)[
        "subjects"
    ]
    assert [(s["kind"], s["name"], s["namespace"]) for s in subjects] == [
        ("ServiceAccount", "robot", namespace)
    ]


def test_node_lease_shows_in_describe_node(sandbox: Sandbox) -> None:
    def nodes() -> list[str]:
        return kubectl(sandbox, "get", "nodes", "-o", "jsonpath={.items[*].metadata.name}").stdout.split()

    wait_for(nodes)
    node = nodes()[0]
    renewed = time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime())
    apply_doc(sandbox, {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                        "metadata": {"name": node, "namespace": "kube-node-lease"},
                        "spec": {"holderIdentity": node, "leaseDurationSeconds": 40, "renewTime": renewed}})
    leases = kubectl(sandbox, "get", "leases", "-n", "kube-node-lease").stdout
    assert header_of(leases) == ["NAME", "HOLDER", "AGE"]
    assert re.search(rf"^{re.escape(node)}\s+{re.escape(node)}\s+", leases, re.M)
    described = kubectl(sandbox, "describe", "node", node).stdout
    assert "Failed to get lease" not in described
    assert re.search(rf"^Lease:\n\s+HolderIdentity:\s+{re.escape(node)}$", described, re.M)
