"""The seed notes' observations, reproduced against a live sandbox with the bundled kubectl.

Every behaviour here emerges from the sandbox's controllers, scheduler, kubelets and proxy;
traffic goes through a real Service listener to real pod processes. Each test gets the sample
app in a namespace of its own in the session's shared sandbox (`kube`), except the one that
stops and restarts the cluster (`private_kube`).
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable

import psutil
import pytest

from tests.conftest import Sandbox
from tests.sandbox.conftest import Kube, is_ready, wait_until

pytestmark = pytest.mark.sandbox


def get_pod_name(ip: str, *, conn: http.client.HTTPConnection | None = None) -> tuple[str, dict]:
    """GET / through ``ip``:80 (a new connection unless ``conn`` is given); (X-Pod-Name, body)."""
    own = conn is None
    conn = conn or http.client.HTTPConnection(ip, 80, timeout=5)
    try:
        conn.request("GET", "/", headers={"Accept": "application/json"})
        resp = conn.getresponse()
        body = json.loads(resp.read())
        assert resp.status == 200
        return resp.getheader("X-Pod-Name") or "", body
    finally:
        if own:
            conn.close()


def test_scale_to_five_gates_new_pods_on_readiness(kube: Kube) -> None:
    """`kubectl scale --replicas=5` gives 5 Ready pods; no pod is in the endpoints before it is Ready."""
    kube.run("scale", "deployment", "backend", "--replicas=5")
    seen_not_ready_outside = False

    def five_ready() -> bool:
        nonlocal seen_not_ready_outside
        ready_ips, _ = kube.endpoint_ips()
        pods = kube.pods()
        by_ip = {p["status"].get("podIP"): p for p in pods}
        for ip in ready_ips:
            assert ip in by_ip and is_ready(by_ip[ip]), f"{ip} is in the endpoints but its pod is not Ready"
        if any(not is_ready(p) and p["status"].get("podIP") not in ready_ips for p in pods):
            seen_not_ready_outside = True
        return len([p for p in pods if is_ready(p)]) == 5 and len(ready_ips) == 5

    wait_until(five_ready, timeout=60, interval=0.1, what="5 Ready pods in the endpoints")
    assert seen_not_ready_outside, "never saw a new, not yet Ready pod kept out of the endpoints"
    deploy = kube.get("deployment", "backend")
    assert deploy["status"]["availableReplicas"] == 5
    events = kube.run("get", "events", "--field-selector", "reason=ScalingReplicaSet")
    assert "from 3 to 5" in events


def test_deleted_pod_is_replaced_with_new_name_and_ip(kube: Kube) -> None:
    """Deleting a pod: the ReplicaSet creates a replacement with another name and another IP."""
    victim = kube.ready_pods()[0]
    name, ip = victim["metadata"]["name"], victim["status"]["podIP"]
    kube.run("delete", "pod", name, "--wait=false")

    def replaced() -> list[dict]:
        pods = kube.ready_pods()
        return (
            [p for p in pods if p["metadata"]["name"] != name]
            if len(pods) == 3 and name not in {p["metadata"]["name"] for p in pods}
            else []
        )

    pods = wait_until(replaced, timeout=60, what="a Ready replacement pod")
    assert ip not in {p["status"]["podIP"] for p in pods}
    wait_until(
        lambda: not [p for p in kube.pods() if p["metadata"]["name"] == name],
        timeout=40,
        what="the deleted pod to be gone",
    )


def test_readiness_failure_removes_pod_from_endpoints_without_killing_it(kube: Kube) -> None:
    """POST /readyz/disable: the pod goes NotReady and leaves the Service but keeps running, and a
    connection already established to it keeps going there (conntrack); back when enabled."""
    service_ip = kube.make_service()
    wait_until(lambda: _answers(service_ip), timeout=30, what="the Service to answer")
    established = http.client.HTTPConnection(service_ip, 80, timeout=5)
    name = get_pod_name(service_ip, conn=established)[0]
    table = kube.box.state_dir / "proxy-connections.json"
    wait_until(
        lambda: table.exists() and name in {c["pod"] for c in json.loads(table.read_text())["connections"]},
        timeout=10,
        what="the connection in the proxy's connection table",
    )
    pod = kube.get("pod", name)
    ip = pod["status"]["podIP"]
    conn = http.client.HTTPConnection(ip, 8080, timeout=5)
    conn.request("POST", "/readyz/disable")
    assert conn.getresponse().status == 200
    conn.close()
    wait_until(
        lambda: ip in kube.endpoint_ips()[1] and ip not in kube.endpoint_ips()[0],
        timeout=30,
        what="the pod in notReadyAddresses",
    )
    current = kube.get("pod", name)
    assert not is_ready(current)
    assert current["status"]["phase"] == "Running"
    assert current["status"]["containerStatuses"][0]["restartCount"] == 0
    assert "Readiness probe failed: HTTP probe failed with statuscode: 503" in kube.run(
        "describe", "pod", name
    )
    assert get_pod_name(service_ip, conn=established)[0] == name
    assert name not in {get_pod_name(service_ip)[0] for _ in range(30)}
    established.close()
    conn = http.client.HTTPConnection(ip, 8080, timeout=5)
    conn.request("POST", "/readyz/enable")
    assert conn.getresponse().status == 200
    conn.close()
    wait_until(lambda: ip in kube.endpoint_ips()[0], timeout=30, what="the pod back in the addresses")


def test_relabelled_pod_is_released_and_replaced(kube: Kube) -> None:
    """A pod relabelled out of the selector keeps running without an owner; a replacement is made."""
    pod = kube.ready_pods()[0]
    name = pod["metadata"]["name"]
    kube.run("label", "pod", name, "app=debug", "--overwrite")
    wait_until(
        lambda: (
            len(kube.ready_pods()) == 3 and name not in {p["metadata"]["name"] for p in kube.ready_pods()}
        ),
        timeout=60,
        what="a replacement pod",
    )
    released = wait_until(
        lambda: (p := kube.get("pod", name)) and not p["metadata"].get("ownerReferences") and p,
        timeout=30,
        what="the ownerReference to be removed",
    )
    assert is_ready(released) and released["status"]["podIP"] not in kube.endpoint_ips()[0]


def test_no_ready_endpoint_refuses_connections(kube: Kube) -> None:
    """With no ready pod behind it, a Service refuses connections, like iptables' REJECT."""
    ip = kube.make_service()
    wait_until(lambda: _answers(ip), timeout=30, what="the Service to answer")
    kube.run("scale", "deployment", "backend", "--replicas=0")

    def refused() -> bool:
        try:
            get_pod_name(ip)
        except ConnectionRefusedError:
            return True
        except OSError:
            return False
        return False

    wait_until(refused, timeout=60, what="connections to be refused")
    kube.run("scale", "deployment", "backend", "--replicas=1")
    wait_until(lambda: _answers(ip), timeout=60, what="the Service to answer again")


def test_keepalive_sticks_to_one_pod_new_connections_spread(kube: Kube) -> None:
    """One keep-alive connection: always the same pod. New connections: every Ready pod, never frontend."""
    ip = kube.make_service()
    wait_until(lambda: _answers(ip), timeout=30, what="the Service to answer")
    conn = http.client.HTTPConnection(ip, 80, timeout=5)
    names = {get_pod_name(ip, conn=conn)[0] for _ in range(30)}
    conn.close()
    assert len(names) == 1
    ready = {p["metadata"]["name"] for p in kube.ready_pods()}
    spread = {get_pod_name(ip)[0] for _ in range(120)}
    assert spread == ready
    node = kube.get("nodes")["items"][-1]
    node_ip = next(a["address"] for a in node["status"]["addresses"] if a["type"] == "InternalIP")
    node_port = kube.get("service", "backend-service")["spec"]["ports"][0]["nodePort"]
    via_node_port = http.client.HTTPConnection(node_ip, node_port, timeout=5)
    via_node_port.request("GET", "/")
    assert via_node_port.getresponse().getheader("X-Pod-Name") in ready
    via_node_port.close()
    frontend = wait_until(lambda: kube.ready_pods("app=frontend"), timeout=60, what="the frontend pod Ready")[
        0
    ]
    assert frontend["status"]["podIP"] not in kube.endpoint_ips()[0] | kube.endpoint_ips()[1]


def _answers(ip: str) -> bool:
    try:
        return bool(get_pod_name(ip)[0])
    except OSError:
        return False


def test_killed_container_is_restarted(kube: Kube) -> None:
    """kill -9 of a container process from outside: noticed, restarted, restartCount 1."""
    pod = kube.ready_pods()[0]
    name = pod["metadata"]["name"]
    pid = int(pod["status"]["containerStatuses"][0]["containerID"].removeprefix("sandbox://"))
    os.kill(pid, signal.SIGKILL)

    def restarted() -> dict | None:
        status = kube.get("pod", name)["status"]["containerStatuses"][0]
        return status if status["restartCount"] == 1 and status["ready"] else None

    status = wait_until(restarted, timeout=60, what="the container to be restarted")
    assert status["lastState"]["terminated"]["exitCode"] == 137
    assert status["containerID"] != f"sandbox://{pid}"


def test_rollout_to_v2_keeps_the_service_answering(kube: Kube) -> None:
    """`kubectl set image ... lb-demo:v2` rolls ReplicaSets over while requests never fail."""
    ip = kube.make_service()
    wait_until(lambda: _answers(ip), timeout=30, what="the Service to answer")
    versions: list[str] = []
    errors: list[str] = []
    stop = threading.Event()

    def traffic() -> None:
        while not stop.is_set():
            try:
                versions.append(get_pod_name(ip)[1]["pod"]["version"])
            except Exception as exc:
                errors.append(repr(exc))
            time.sleep(0.01)

    thread = threading.Thread(target=traffic, daemon=True)
    thread.start()
    try:
        old_rs = {rs["metadata"]["name"] for rs in kube.get("replicasets")["items"]}
        kube.run("set", "image", "deployment/backend", "backend=lb-demo:v2")
        kube.run("rollout", "status", "deployment/backend", "--timeout=120s")
        time.sleep(1.0)
    finally:
        stop.set()
        thread.join(10)
    assert not errors, errors[:5]
    assert "v1" in versions and versions[-1] == "v2"
    rss = {rs["metadata"]["name"]: rs for rs in kube.get("replicasets")["items"]}
    new = [rs for name, rs in rss.items() if name not in old_rs]
    assert len(new) == 1 and new[0]["spec"]["replicas"] == 3
    assert all(rss[name]["spec"]["replicas"] == 0 for name in old_rs)
    assert new[0]["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "2"


def test_unloaded_image_backs_off_until_loaded(kube: Kube) -> None:
    """lb-demo:v3 is not on the node: ErrImagePull/ImagePullBackOff until `sandbox image load`.
    (The only test that loads v3 into the shared sandbox's node.)"""
    kube.run("set", "image", "deployment/backend", "backend=lb-demo:v3")

    def backing_off() -> list[dict]:
        return [
            p
            for p in kube.pods()
            if any(
                (c.get("state", {}).get("waiting") or {}).get("reason") == "ImagePullBackOff"
                for c in p["status"].get("containerStatuses") or []
            )
        ]

    stuck = wait_until(backing_off, timeout=60, what="a pod in ImagePullBackOff")[0]
    assert "not found in the sandbox node's image store" in kube.run(
        "describe", "pod", stuck["metadata"]["name"]
    )
    assert len(kube.ready_pods()) == 3, "the old pods keep serving while the new image cannot be pulled"
    loaded = subprocess.run(
        [
            sys.executable,
            "-m",
            "sandbox",
            "image",
            "load",
            "lb-demo:v3",
            "--state-dir",
            str(kube.box.state_dir),
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert loaded.returncode == 0, loaded.stderr
    kube.run("rollout", "status", "deployment/backend", "--timeout=120s")
    images = {p["spec"]["containers"][0]["image"] for p in kube.ready_pods()}
    assert images == {"lb-demo:v3"}


def test_stop_leaves_no_pod_process_and_restart_restores_state(
    private_kube: Kube, sandbox_factory: Callable[..., Sandbox]
) -> None:
    """Stopping the sandbox ends every pod process; starting it again brings 3 Ready pods back;
    even a SIGKILLed sandbox leaves no pod process behind."""
    kube = private_kube
    state_dir = kube.box.state_dir
    pids = [_pid(p) for p in kube.pods("app in (backend,frontend)")]
    assert len(pids) == 4 and all(psutil.pid_exists(pid) for pid in pids)
    kube.box.stop()
    assert not [pid for pid in pids if _alive(pid)]
    again = Kube(sandbox_factory(state_dir=state_dir))

    def restarted() -> list[dict]:
        pods = again.ready_pods()
        fresh = [p for p in pods if _pid(p) not in pids]
        return fresh if len(fresh) == 3 else []

    pods = wait_until(restarted, timeout=90, what="3 Ready backend pods with new processes after the restart")
    assert all(p["status"]["containerStatuses"][0]["restartCount"] >= 1 for p in pods)
    assert all(psutil.pid_exists(_pid(p)) for p in pods)
    sandbox_up = again.box.lab.processes[0]
    os.kill(sandbox_up.pid, signal.SIGKILL)
    sandbox_up.wait(10)
    survivors = [_pid(p) for p in pods]
    wait_until(
        lambda: not [pid for pid in survivors if _alive(pid)],
        timeout=10,
        what="pod processes to die with a SIGKILLed sandbox",
    )


def _alive(pid: int) -> bool:
    """The process exists and is not a zombie."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _pid(pod: dict) -> int:
    """The process id in a pod's containerID (``sandbox://<pid>``)."""
    return int(pod["status"]["containerStatuses"][0]["containerID"].removeprefix("sandbox://"))


def test_client_ip_affinity_pins_new_connections_to_one_pod(kube: Kube) -> None:
    """sessionAffinity: ClientIP sends every new connection from one client address to one pod."""
    ip = kube.make_service("sticky", affinity=True)
    wait_until(lambda: _answers(ip), timeout=30, what="the Service to answer")
    assert len({get_pod_name(ip)[0] for _ in range(40)}) == 1


CRASHER_AND_PROBED = """
apiVersion: v1
kind: Pod
metadata: {name: crasher}
spec:
  containers:
  - name: main
    image: lb-demo
    command: ["python", "-c", "print('starting'); raise SystemExit(3)"]
---
apiVersion: v1
kind: Pod
metadata: {name: probed}
spec:
  containers:
  - name: main
    image: lb-demo:v2
    ports: [{name: web, containerPort: 8080}]
    startupProbe: {tcpSocket: {port: web}, periodSeconds: 1, failureThreshold: 30}
    readinessProbe:
      exec:
        command:
        - python
        - -c
        - "import os, urllib.request as u; u.urlopen('http://' + os.environ['POD_IP'] + ':8080/readyz')"
      periodSeconds: 1
    livenessProbe: {httpGet: {path: /healthz, port: web}, periodSeconds: 1, failureThreshold: 2}
"""


def test_crash_loop_back_off_and_probes_of_every_kind(kube: Kube) -> None:
    """A container that keeps exiting goes to CrashLoopBackOff with BackOff events and its logs;
    tcpSocket startup, exec readiness and httpGet liveness probes gate and restart a container."""
    kube.run("apply", "-f", "-", stdin=CRASHER_AND_PROBED)

    def backing_off() -> dict | None:
        status = (kube.get("pod", "crasher")["status"].get("containerStatuses") or [{}])[0]
        waiting = (status.get("state") or {}).get("waiting") or {}
        return status if waiting.get("reason") == "CrashLoopBackOff" else None

    status = wait_until(backing_off, timeout=60, what="CrashLoopBackOff")
    assert status["restartCount"] >= 1
    assert status["lastState"]["terminated"]["exitCode"] == 3
    assert "Back-off restarting failed container main" in kube.run("describe", "pod", "crasher")
    assert "starting" in kube.run("logs", "crasher")

    wait_until(lambda: kube.ready_pods("!app"), timeout=60, what="the probed pod Ready")
    probed = kube.get("pod", "probed")
    assert is_ready(probed) and probed["status"]["containerStatuses"][0]["started"]
    conn = http.client.HTTPConnection(probed["status"]["podIP"], 8080, timeout=5)
    conn.request("POST", "/healthz/fail")
    assert conn.getresponse().status == 200
    conn.close()

    def restarted() -> bool:
        status = kube.get("pod", "probed")["status"]["containerStatuses"][0]
        return status["restartCount"] == 1 and status["ready"]

    wait_until(restarted, timeout=90, what="the liveness probe to restart the container")
    described = kube.run("describe", "pod", "probed")
    assert "Liveness probe failed: HTTP probe failed with statuscode: 503" in described
    assert "Container main failed liveness probe, will be restarted" in described
