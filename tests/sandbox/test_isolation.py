"""Containers are isolated and tutorial images work, through the bundled kubectl against a live
sandbox: bubblewrap namespaces, a private filesystem, identities, and the kubernetes.io
tutorials' busybox and nginx flows."""

from __future__ import annotations

import contextlib
import json
import os
import stat
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO, Sandbox
from tests.sandbox.conftest import Kube, wait_until

pytestmark = pytest.mark.sandbox


@pytest.fixture
def kube_ns(sandbox: Sandbox) -> Iterator[tuple[Kube, str]]:
    """kubectl against the shared sandbox and a namespace of this test's own."""
    kube = Kube(sandbox)
    ns = f"iso-{uuid.uuid4().hex[:8]}"
    kube.run("create", "namespace", ns)
    yield kube, ns
    kube.run("delete", "namespace", ns, "--wait=false")


def pod_doc(name: str, ns: str, image: str, command: list[str], **spec: Any) -> str:
    container = {"name": name, "image": image, "command": command, **spec.pop("container", {})}
    return json.dumps({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": ns},
                       "spec": {"restartPolicy": "Never", "containers": [container], **spec}})


def run_to_completion(kube: Kube, ns: str, name: str, image: str, script: str, **spec: Any) -> str:
    """Run ``sh -c script`` in a pod until it finishes; its logs."""
    kube.run("apply", "-f", "-", stdin=pod_doc(name, ns, image, ["sh", "-c", script], **spec))
    wait_until(lambda: kube.get("-n", ns, "pod", name)["status"].get("phase") in ("Succeeded", "Failed"),
               timeout=90, what=f"pod {name} to finish")
    return kube.run("-n", ns, "logs", name)


def test_a_container_sees_only_its_own_pod(kube_ns: tuple[Kube, str]) -> None:
    """hostname = pod name; ps shows only the container's processes; no repository, state
    directory or token; root in the image runs as nobody; the root filesystem is private."""
    kube, ns = kube_ns
    state = kube.box.state_dir
    out = run_to_completion(kube, ns, "look", "busybox", f"""
        hostname; cat /etc/hostname; id -u
        ps -o pid,comm > /tmp/ps; echo "PS $(tail -n +2 /tmp/ps | tr -s ' \\n' ' ')"
        for p in {REPO} {REPO}/README.md {state} {state}/token /work /root; do
            [ -e "$p" ] && echo "VISIBLE $p"; done
        touch /usr/x /etc/x /x 2>/dev/null && echo WRITABLE
        echo hello > /tmp/mine && cat /tmp/mine
        echo done""")
    lines = out.split()
    assert lines[:3] == ["look", "look", "65534"], out
    ps = next(line for line in out.splitlines() if line.startswith("PS ")).split()[1:]
    assert dict(zip(ps[::2], ps[1::2], strict=True)) == {"1": "sh", ps[2]: "ps"}, out  # nothing else
    assert "VISIBLE" not in out and "WRITABLE" not in out, out
    assert lines[-2:] == ["hello", "done"]


def test_another_pods_files_and_the_host_are_out_of_reach(kube_ns: tuple[Kube, str], tmp_path: Path) -> None:
    """A root container (runAsUser: 0) deletes everything it can reach: the host, the
    repository and a neighbour pod keep every file; its own writable layer is gone."""
    kube, ns = kube_ns
    sentinel = tmp_path / "host-file"
    sentinel.write_text("keep me")
    kube.run("apply", "-f", "-", stdin=pod_doc(
        "neighbour", ns, "busybox",
        ["sh", "-c", "echo mine > /tmp/neighbour; while cat /tmp/neighbour; do sleep 0.5; done"]))
    wait_until(lambda: kube.get("-n", ns, "pod", "neighbour")["status"].get("phase") == "Running",
               what="the neighbour running")
    root = {"securityContext": {"runAsUser": 0}}
    # First prove every host directory in view is read-only, even for root; only then rm -rf /.
    probe = run_to_completion(kube, ns, "probe", "busybox", """
        for d in /usr /usr/bin /usr/lib /usr/sbin /lib64/; do
            touch "$d/.w" 2>/dev/null && echo "WRITABLE $d"; done
        id -u; ls /tmp/neighbour 2>&1 | head -1""", container=root)
    assert "WRITABLE" not in probe and probe.split()[0] == "0", probe
    assert "No such file" in probe
    wiped = run_to_completion(kube, ns, "wipe", "busybox", """
        echo x > /tmp/own; rm -rf / 2>/dev/null; [ -e /tmp/own ] && echo SURVIVED; echo wiped""",
                              container=root)
    assert wiped.split() == ["wiped"], wiped
    assert sentinel.read_text() == "keep me"
    assert (REPO / "README.md").is_file() and (kube.box.state_dir / "token").is_file()
    # The neighbour still reads its own /tmp file, after the wipe as before.
    seen = len(kube.run("-n", ns, "logs", "neighbour").split())
    wait_until(lambda: len(kube.run("-n", ns, "logs", "neighbour").split()) > seen + 2,
               what="more neighbour output")
    assert set(kube.run("-n", ns, "logs", "neighbour").split()) == {"mine"}
    assert kube.get("-n", ns, "pod", "neighbour")["status"]["phase"] == "Running"


def test_security_context_is_honoured(kube_ns: tuple[Kube, str]) -> None:
    """runAsUser/runAsGroup set the identity; runAsNonRoot on a root image is refused with the
    kubelet's CreateContainerConfigError message."""
    kube, ns = kube_ns
    out = run_to_completion(kube, ns, "who", "busybox", "id -u; id -g",
                            securityContext={"runAsUser": 1234, "runAsGroup": 4321})
    assert out.split() == ["1234", "4321"]
    # The lb-demo image's USER and WORKDIR (Dockerfile.backend: 10001, /app).
    assert run_to_completion(kube, ns, "app", "lb-demo", "id -u; pwd").split() == ["10001", "/app"]
    kube.run("apply", "-f", "-", stdin=pod_doc("nonroot", ns, "busybox", ["sleep", "60"],
                                             securityContext={"runAsNonRoot": True}))

    def config_error() -> dict | None:
        pod = kube.get("-n", ns, "pod", "nonroot")
        status = (pod["status"].get("containerStatuses") or [{}])[0]
        waiting = (status.get("state") or {}).get("waiting") or {}
        return pod if waiting.get("reason") == "CreateContainerConfigError" else None

    pod = config_error() or wait_until(config_error, what="CreateContainerConfigError")
    waiting = pod["status"]["containerStatuses"][0]["state"]["waiting"]
    uid = pod["metadata"]["uid"]
    assert waiting["message"] == (f'container has runAsNonRoot and image will run as root '
                                  f'(pod: "nonroot_{ns}({uid})", container: nonroot)')
    assert "CreateContainerConfigError" in kube.run("-n", ns, "get", "pod", "nonroot")


def test_command_args_and_working_dir_follow_kubernetes(kube_ns: tuple[Kube, str]) -> None:
    """args replace the image's CMD, command its ENTRYPOINT; workingDir is the cwd; an unknown
    executable is a StartError with containerd's message."""
    kube, ns = kube_ns
    doc = json.loads(pod_doc("args", ns, "busybox", []))
    container = doc["spec"]["containers"][0]
    del container["command"]
    container["args"] = ["sh", "-c", "pwd; echo $HOSTNAME"]
    container["workingDir"] = "/tmp"
    kube.run("apply", "-f", "-", stdin=json.dumps(doc))
    wait_until(lambda: kube.get("-n", ns, "pod", "args")["status"].get("phase") == "Succeeded",
               what="the args pod to succeed")
    assert kube.run("-n", ns, "logs", "args").split() == ["/tmp", "args"]
    kube.run("apply", "-f", "-", stdin=pod_doc("typo", ns, "busybox", ["slep", "1"]))

    def start_error() -> dict | None:
        status = (kube.get("-n", ns, "pod", "typo")["status"].get("containerStatuses") or [{}])[0]
        terminated = (status.get("state") or {}).get("terminated") or {}
        return terminated if terminated.get("reason") == "StartError" else None

    terminated = wait_until(start_error, what="StartError")
    assert terminated["exitCode"] == 128
    assert terminated["message"].endswith('exec: "slep": executable file not found in $PATH: unknown')


def test_tutorial_nginx_deployment_exposed_and_curled(kube_ns: tuple[Kube, str]) -> None:
    """kubernetes.io's first steps: create deployment nginx, expose it, curl the ClusterIP and a
    NodePort."""
    kube, ns = kube_ns
    kube.run("-n", ns, "create", "deployment", "nginx", "--image=nginx")
    kube.run("-n", ns, "expose", "deployment", "nginx", "--port=80")
    kube.run("-n", ns, "rollout", "status", "deployment/nginx", "--timeout=90s")
    ip = kube.get("-n", ns, "service", "nginx")["spec"]["clusterIP"]

    def page() -> str | None:
        try:
            with urllib.request.urlopen(f"http://{ip}/", timeout=5) as answer:
                return answer.read().decode()
        except OSError:
            return None

    assert "<title>Welcome to nginx!</title>" in wait_until(page, what="nginx through its ClusterIP")
    # And through a NodePort on a node's address, like minikube's `minikube service`.
    kube.run("-n", ns, "expose", "deployment", "nginx", "--name=nginx-np", "--type=NodePort", "--port=80")
    node_port = kube.get("-n", ns, "service", "nginx-np")["spec"]["ports"][0]["nodePort"]
    node = kube.get("nodes")["items"][0]
    node_ip = next(a["address"] for a in node["status"]["addresses"] if a["type"] == "InternalIP")

    def node_page() -> str | None:
        try:
            with urllib.request.urlopen(f"http://{node_ip}:{node_port}/", timeout=5) as answer:
                return answer.read().decode()
        except OSError:
            return None

    assert "<title>Welcome to nginx!</title>" in wait_until(node_page, what="nginx through its NodePort")
    events = json.loads(kube.run("-n", ns, "get", "events", "-o", "json"))["items"]
    assert any(e["reason"] == "Pulled" and e["message"].startswith('Successfully pulled image "nginx"')
               for e in events)
    logs = kube.run("-n", ns, "logs", "deployment/nginx")
    assert '"GET / HTTP/1.1" 200' in logs


def test_tutorial_busybox_reaches_the_backend_service(kube_ns: tuple[Kube, str]) -> None:
    """kubectl run busybox -- sh -c 'hostname; wget -qO- http://<ClusterIP>/' (logs via kubectl logs)."""
    kube, ns = kube_ns
    ip = kube.get("service", "backend-service")["spec"]["clusterIP"]
    kube.run("-n", ns, "run", "busybox", "--image=busybox", "--restart=Never", "--",
             "sh", "-c", f"hostname; wget -qO- http://{ip}/")
    wait_until(lambda: kube.get("-n", ns, "pod", "busybox")["status"].get("phase") == "Succeeded",
               timeout=90, what="busybox to finish")
    first, rest = kube.run("-n", ns, "logs", "busybox").split("\n", 1)
    assert first == "busybox"
    assert json.loads(rest)["pod"]["name"].startswith("backend-")


def test_container_logs_are_private_files(sandbox: Sandbox) -> None:
    """Container logs are 0600 in a 0700 tree (the container writes them through its stdout)."""
    modes = {}
    # os.walk, not rglob: other tests' pods are deleted meanwhile, and their directories go with them.
    for folder, _, files in os.walk(sandbox.state_dir / "logs"):
        for name in files:
            with contextlib.suppress(FileNotFoundError):
                modes[f"{folder}/{name}"] = stat.S_IMODE(os.stat(f"{folder}/{name}").st_mode)
    assert modes and {path: mode for path, mode in modes.items() if mode != 0o600} == {}
    assert stat.S_IMODE((sandbox.state_dir / "logs").stat().st_mode) == 0o700
    assert os.access(sandbox.state_dir, os.R_OK)


def test_service_discovery_env_hosts_and_config_from_a_config_map(kube_ns: tuple[Kube, str]) -> None:
    """Service variables and names as the kubelet provides them (hosts file standing in for cluster
    DNS), a ConfigMap through envFrom and configMapKeyRef, and CreateContainerConfigError when it
    is missing."""
    kube, ns = kube_ns
    kube.run("-n", ns, "create", "configmap", "app", "--from-literal=MODE=demo", "--from-literal=level=3")
    kube.run("-n", ns, "create", "service", "clusterip", "web", "--tcp=80:8080")
    ip = kube.get("-n", ns, "service", "web")["spec"]["clusterIP"]
    out = run_to_completion(kube, ns, "disco", "busybox", f"""
        echo "HOST=$WEB_SERVICE_HOST PORT=$WEB_PORT MODE=$APP_MODE LEVEL=$LEVEL K=$KUBERNETES_SERVICE_PORT"
        for n in web web.{ns} web.{ns}.svc web.{ns}.svc.cluster.local backend-service.default; do
            grep -qw "$n" /etc/hosts && echo "NAME $n"; done
        nslookup web.{ns}.svc.cluster.local | grep -A1 "^Name:" | tail -1""",
                            container={"envFrom": [{"configMapRef": {"name": "app"}, "prefix": "APP_"}],
                                       "env": [{"name": "LEVEL", "valueFrom": {
                                           "configMapKeyRef": {"name": "app", "key": "level"}}}]})
    assert f"HOST={ip} PORT=tcp://{ip}:80 MODE=demo LEVEL=3 K=443" in out
    assert out.strip().splitlines()[-1].split() == ["Address:", ip], out  # the cluster DNS
    assert [line.split()[1] for line in out.splitlines() if line.startswith("NAME ")] == [
        "web", f"web.{ns}", f"web.{ns}.svc", f"web.{ns}.svc.cluster.local", "backend-service.default"]
    kube.run("apply", "-f", "-", stdin=pod_doc("nocm", ns, "busybox", ["true"],
                                             container={"envFrom": [{"configMapRef": {"name": "gone"}}]}))

    def config_error() -> str | None:
        status = (kube.get("-n", ns, "pod", "nocm")["status"].get("containerStatuses") or [{}])[0]
        waiting = (status.get("state") or {}).get("waiting") or {}
        return waiting.get("message") if waiting.get("reason") == "CreateContainerConfigError" else None

    assert wait_until(config_error, what="CreateContainerConfigError") == 'configmap "gone" not found'
    kube.run("-n", ns, "create", "configmap", "gone", "--from-literal=x=1")
    wait_until(lambda: kube.get("-n", ns, "pod", "nocm")["status"].get("phase") == "Succeeded",
               timeout=90, what="the pod to run once its ConfigMap exists")


def test_volumes_config_map_secret_empty_dir_downward_api_and_live_update(kube_ns: tuple[Kube, str]) -> None:
    """configMap (items, defaultMode, subPath), secret, emptyDir shared by two containers,
    downwardAPI and projected volumes, laid out by the AtomicWriter (`password -> ..data/password`);
    a changed ConfigMap shows in the mounted file within
    seconds; a missing ConfigMap is a FailedMount with the kubelet's message."""
    kube, ns = kube_ns
    kube.run("-n", ns, "create", "configmap", "app", "--from-literal=greeting=hello",
             "--from-literal=mode=demo")
    kube.run("-n", ns, "create", "secret", "generic", "creds", "--from-literal=password=s3cret")
    script = """
        echo "GREETING $(cat /config/greeting.txt)"; echo "MODE $(cat /mode)"
        echo "PASSWORD $(cat /secret/password)"; echo "PERM $(stat -L -c %a /config/greeting.txt)"
        echo "LINK $(readlink /secret/password) DATA $(readlink /secret/..data | cut -c1-4)"
        echo "LABELS $(cat /info/labels)"; echo "PROJECTED $(cat /all/password) $(cat /all/greeting)"
        touch /config/x 2>/dev/null && echo WRITABLE-CONFIG
        while [ ! -f /shared/from-writer ]; do sleep 0.2; done; echo "SHARED $(cat /shared/from-writer)"
        while true; do echo "NOW $(cat /config/greeting.txt)"; sleep 0.5; done"""
    pod = {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "vols", "namespace": ns, "labels": {"app": "vols"}},
        "spec": {
            "volumes": [
                {"name": "config", "configMap": {"name": "app", "defaultMode": 0o600,
                                                 "items": [{"key": "greeting", "path": "greeting.txt"}]}},
                {"name": "whole", "configMap": {"name": "app"}},
                {"name": "secret", "secret": {"secretName": "creds"}},
                {"name": "shared", "emptyDir": {}},
                {"name": "info", "downwardAPI": {"items": [{"path": "labels",
                                                            "fieldRef": {"fieldPath": "metadata.labels"}}]}},
                {"name": "all", "projected": {"sources": [{"secret": {"name": "creds"}},
                                                          {"configMap": {"name": "app"}}]}},
            ],
            "containers": [
                {"name": "reader", "image": "busybox", "command": ["sh", "-c", script],
                 "securityContext": {"runAsUser": 0},
                 "volumeMounts": [{"name": "config", "mountPath": "/config"},
                                  {"name": "whole", "mountPath": "/mode", "subPath": "mode"},
                                  {"name": "secret", "mountPath": "/secret"},
                                  {"name": "shared", "mountPath": "/shared"},
                                  {"name": "info", "mountPath": "/info"},
                                  {"name": "all", "mountPath": "/all"}]},
                {"name": "writer", "image": "busybox",
                 "command": ["sh", "-c", "echo written > /data/from-writer; sleep 3600"],
                 "volumeMounts": [{"name": "shared", "mountPath": "/data"}]},
            ],
        },
    }
    kube.run("apply", "-f", "-", stdin=json.dumps(pod))

    def logs() -> str:
        return kube.run("-n", ns, "logs", "vols", "-c", "reader", check=False)

    wait_until(lambda: "NOW hello" in logs(), timeout=90, what="the reader's output")
    out = logs()
    for line in ("GREETING hello", "MODE demo", "PASSWORD s3cret", "PERM 600",
                 "LINK ..data/password DATA ..20", 'LABELS app="vols"', "PROJECTED s3cret hello",
                 "SHARED written"):
        assert line in out, out
    assert "WRITABLE-CONFIG" not in out
    kube.run("-n", ns, "patch", "configmap", "app", "-p", json.dumps({"data": {"greeting": "bonjour"}}))
    wait_until(lambda: "NOW bonjour" in logs(), timeout=30, what="the updated ConfigMap in the volume")

    missing = json.loads(pod_doc("nomount", ns, "busybox", ["true"]))
    missing["spec"]["volumes"] = [{"name": "config", "configMap": {"name": "gone"}}]
    missing["spec"]["containers"][0]["volumeMounts"] = [{"name": "config", "mountPath": "/config"}]
    kube.run("apply", "-f", "-", stdin=json.dumps(missing))

    def failed_mount() -> list[str]:
        events = json.loads(kube.run("-n", ns, "get", "events", "--field-selector",
                                     "involvedObject.name=nomount", "-o", "json"))["items"]
        return [e["message"] for e in events if e["reason"] == "FailedMount"]

    assert wait_until(failed_mount, what="FailedMount")[0] == (
        'MountVolume.SetUp failed for volume "config" : configmap "gone" not found')
    assert "ContainerCreating" in kube.run("-n", ns, "get", "pod", "nomount")


def test_projected_service_account_token_is_accepted_by_the_api_server(kube_ns: tuple[Kube, str]) -> None:
    """A projected serviceAccountToken: the kubelet requests a pod-bound token, the pod reads it
    from its volume, and the API server authenticates it as the pod's ServiceAccount."""
    kube, ns = kube_ns
    wait_until(lambda: kube.run("-n", ns, "get", "serviceaccount", "default", check=False), what="SA default")
    doc = json.loads(pod_doc("sa", ns, "busybox", ["sh", "-c", "cat /var/run/secrets/tokens/token; echo"]))
    doc["spec"]["volumes"] = [{"name": "api", "projected": {"sources": [
        {"serviceAccountToken": {"path": "token", "expirationSeconds": 3600}}]}}]
    doc["spec"]["containers"][0]["volumeMounts"] = [{"name": "api", "mountPath": "/var/run/secrets/tokens"}]
    kube.run("apply", "-f", "-", stdin=json.dumps(doc))
    wait_until(lambda: kube.get("-n", ns, "pod", "sa")["status"].get("phase") == "Succeeded",
               timeout=90, what="the token reader to finish")
    token = kube.run("-n", ns, "logs", "sa").strip()
    assert token.count(".") == 2, token
    request = urllib.request.Request(f"{kube.box.url}/apis/authentication.k8s.io/v1/selfsubjectreviews",
                                     method="POST", headers={"Authorization": f"Bearer {token}",
                                                             "Content-Type": "application/json"},
                                     data=json.dumps({"apiVersion": "authentication.k8s.io/v1",
                                                      "kind": "SelfSubjectReview"}).encode())
    import ssl

    context = ssl.create_default_context(cafile=str(kube.box.state_dir / "ca.crt"))
    with urllib.request.urlopen(request, timeout=10, context=context) as answer:
        review = json.loads(answer.read())
    assert review["status"]["userInfo"]["username"] == f"system:serviceaccount:{ns}:default"
