"""Pure parts of the sandbox kubelet: QoS, image references, pod status and readiness gates."""

from __future__ import annotations

import pytest

from sandbox.images import ImageError, InvalidReference, normalize
from sandbox.kubelet.status import ContainerFacts, generate_pod_status
from sandbox.qos import qos_class

GATE = "lb-demo.dev/serving"


@pytest.mark.parametrize(
    ("containers", "pod_level", "expected"),
    [
        ([{}], None, "BestEffort"),
        ([{"requests": {"cpu": "0", "memory": "0"}}], None, "BestEffort"),
        ([{"requests": {"cpu": "50m"}}], None, "Burstable"),
        # Quantities compare as quantities: 1 == 1000m, 1Gi == 1024Mi.
        (
            [{"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"cpu": "1000m", "memory": "1024Mi"}}],
            None,
            "Guaranteed",
        ),
        (
            [{"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"cpu": "2", "memory": "1Gi"}}],
            None,
            "Burstable",
        ),
        (
            [{"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "1", "memory": "1Gi"}}, {}],
            None,
            "Burstable",
        ),
        ([{"requests": {"ephemeral-storage": "1Gi"}}], None, "BestEffort"),
        (
            [{}],
            {"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"cpu": "1", "memory": "1Gi"}},
            "Guaranteed",
        ),
    ],
)
def test_qos_class_compares_quantities(
    containers: list[dict], pod_level: dict | None, expected: str
) -> None:
    spec: dict = {"containers": [{"name": f"c{i}", "resources": r} for i, r in enumerate(containers)]}
    if pod_level:
        spec["resources"] = pod_level
    assert qos_class(spec) == expected


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        ("lb-demo:bad tag", 'couldn\'t parse image reference "lb-demo:bad tag": invalid reference format'),
        ("Lb-Demo", "repository name must be lowercase"),
        ("lb-demo:", "invalid reference format"),
        ("a:b:c", "invalid reference format"),
        ("", "invalid reference format"),
    ],
)
def test_invalid_image_references_raise_the_image_error_class(ref: str, message: str) -> None:
    with pytest.raises(InvalidReference, match=message) as caught:
        normalize(ref)
    assert isinstance(caught.value, ImageError)


def test_valid_image_references_normalize() -> None:
    assert normalize("nginx") == "nginx:latest"
    assert normalize("docker.io/library/busybox:1.36") == "busybox:1.36"
    assert normalize("localhost:5000/team/app:v1") == "localhost:5000/team/app:v1"


def _pod(gates: list[str], conditions: list[dict]) -> dict:
    return {
        "metadata": {"name": "p", "namespace": "default", "uid": "u"},
        "spec": {
            "containers": [{"name": "backend"}],
            "readinessGates": [{"conditionType": g} for g in gates],
        },
        "status": {"conditions": conditions},
    }


def _status(pod: dict, *, ready: bool, previous: list[dict] | None = None, now: str = "T1") -> dict:
    container = {
        "name": "backend",
        "ready": ready,
        "state": {"running": {"startedAt": "T0"}},
        "lastState": {},
    }
    return generate_pod_status(
        pod,
        [ContainerFacts(container, False)],
        pod_ip="127.200.1.2",
        host_ip="127.200.0.1",
        start_time="T0",
        previous=previous or [],
        now=now,
    )


def _condition(status: dict, kind: str) -> dict:
    return next(c for c in status["conditions"] if c["type"] == kind)


def test_ready_needs_ready_containers_and_every_gate_true() -> None:
    missing = _status(_pod([GATE], []), ready=True)
    assert _condition(missing, "ContainersReady")["status"] == "True"
    ready = _condition(missing, "Ready")
    assert ready["status"] == "False" and ready["reason"] == "ReadinessGatesNotReady"
    assert ready["message"] == f'corresponding condition of pod readiness gate "{GATE}" does not exist.'

    false = _status(_pod([GATE], [{"type": GATE, "status": "False"}]), ready=True)
    assert (
        _condition(false, "Ready")["message"]
        == f'the status of pod readiness gate "{GATE}" is not "True", but False'
    )

    true = _status(_pod([GATE], [{"type": GATE, "status": "True"}]), ready=True)
    assert _condition(true, "Ready")["status"] == "True"
    # The kubelet reports only its own conditions: the gate's stays its owner's.
    assert {c["type"] for c in true["conditions"]} == {
        "PodReadyToStartContainers",
        "Initialized",
        "Ready",
        "ContainersReady",
    }

    unready = _condition(_status(_pod([GATE], [{"type": GATE, "status": "True"}]), ready=False), "Ready")
    assert (unready["reason"], unready["message"]) == (
        "ContainersNotReady",
        "containers with unready status: [backend]",
    )


def test_transition_time_holds_while_the_status_does() -> None:
    pod = _pod([], [])
    first = _status(pod, ready=False, now="T1")
    second = _status(pod, ready=False, previous=first["conditions"], now="T2")
    assert _condition(second, "Ready")["lastTransitionTime"] == "T1"
    third = _status(pod, ready=True, previous=second["conditions"], now="T3")
    assert _condition(third, "Ready")["lastTransitionTime"] == "T3"
    assert third["qosClass"] == "BestEffort" and third["phase"] == "Running"


def test_service_environment_variables_follow_from_services() -> None:
    from sandbox.kubelet.envvars import service_env, visible_services

    def svc(name: str, ns: str, ip: str, ports: list[dict]) -> dict:
        return {"metadata": {"name": name, "namespace": ns}, "spec": {"clusterIP": ip, "ports": ports}}

    services = [
        svc("backend-service", "default", "127.96.1.2", [{"name": "http", "port": 80, "protocol": "TCP"}]),
        svc("kubernetes", "default", "127.96.0.1", [{"name": "https", "port": 443}]),
        svc("other", "elsewhere", "127.96.1.3", [{"port": 81}]),
        svc("headless", "default", "None", [{"port": 82}]),
    ]
    pod = {"metadata": {"name": "p", "namespace": "default"}, "spec": {}}
    env = service_env(visible_services(pod, services))
    assert env["BACKEND_SERVICE_SERVICE_HOST"] == "127.96.1.2"
    assert env["BACKEND_SERVICE_SERVICE_PORT"] == "80"
    assert env["BACKEND_SERVICE_SERVICE_PORT_HTTP"] == "80"
    assert env["BACKEND_SERVICE_PORT"] == "tcp://127.96.1.2:80"
    assert env["BACKEND_SERVICE_PORT_80_TCP"] == "tcp://127.96.1.2:80"
    assert env["BACKEND_SERVICE_PORT_80_TCP_PROTO"] == "tcp"
    assert env["BACKEND_SERVICE_PORT_80_TCP_PORT"] == "80"
    assert env["BACKEND_SERVICE_PORT_80_TCP_ADDR"] == "127.96.1.2"
    assert env["KUBERNETES_SERVICE_HOST"] == "127.96.0.1" and env["KUBERNETES_SERVICE_PORT"] == "443"
    assert not any(k.startswith(("OTHER_", "HEADLESS_")) for k in env)
    # Another namespace still sees default/kubernetes; enableServiceLinks: false keeps only it.
    elsewhere = {"metadata": {"name": "p", "namespace": "elsewhere"}, "spec": {"enableServiceLinks": False}}
    assert {
        k for k in service_env(visible_services(elsewhere, services)) if k.endswith("_SERVICE_HOST")
    } == {"KUBERNETES_SERVICE_HOST"}


def test_config_map_and_secret_references_resolve_or_fail_like_the_kubelet() -> None:
    import base64

    from sandbox.kubelet.envvars import EnvError, container_env

    objects = {
        ("ConfigMap", "default", "app"): {"data": {"MODE": "demo", "level": "3"}},
        ("Secret", "default", "creds"): {"data": {"password": base64.b64encode(b"s3cret").decode()}},
    }

    def lookup(kind: str, ns: str, name: str) -> dict | None:
        return objects.get((kind, ns, name))

    pod = {"metadata": {"name": "p", "namespace": "default", "uid": "u"}, "spec": {"nodeName": "n"}}

    def env_of(container: dict) -> dict[str, str]:
        return container_env(
            pod, container, image_env={}, pod_ip="1.2.3.4", host_ip="1.2.3.1", node="n", lookup=lookup
        )

    env = env_of(
        {
            "envFrom": [
                {"configMapRef": {"name": "app"}, "prefix": "APP_"},
                {"secretRef": {"name": "creds"}},
            ],
            "env": [
                {"name": "LEVEL", "valueFrom": {"configMapKeyRef": {"name": "app", "key": "level"}}},
                {"name": "PW", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "password"}}},
                {
                    "name": "MAYBE",
                    "valueFrom": {"configMapKeyRef": {"name": "gone", "key": "x", "optional": True}},
                },
            ],
        }
    )
    assert (env["APP_MODE"], env["APP_level"], env["password"]) == ("demo", "3", "s3cret")
    assert (env["LEVEL"], env["PW"]) == ("3", "s3cret") and "MAYBE" not in env
    with pytest.raises(EnvError, match=r'^configmap "gone" not found$'):
        env_of({"envFrom": [{"configMapRef": {"name": "gone"}}]})
    with pytest.raises(EnvError, match=r"^couldn't find key nope in ConfigMap default/app$"):
        env_of({"env": [{"name": "X", "valueFrom": {"configMapKeyRef": {"name": "app", "key": "nope"}}}]})
    with pytest.raises(EnvError, match=r'^secret "missing" not found$'):
        env_of({"env": [{"name": "X", "valueFrom": {"secretKeyRef": {"name": "missing", "key": "k"}}}]})


def test_cluster_dns_answers_service_names_and_nothing_else() -> None:
    import struct

    from sandbox.kubelet.dns import answer

    services = [
        {
            "metadata": {"name": "backend-service", "namespace": "default"},
            "spec": {"clusterIP": "127.96.1.2"},
        }
    ]

    def query(name: str, qtype: int = 1) -> bytes:
        labels = b"".join(bytes([len(p)]) + p.encode() for p in name.split("."))
        return struct.pack("!HHHHHH", 7, 0x0100, 1, 0, 0, 0) + labels + b"\0" + struct.pack("!HH", qtype, 1)

    reply = answer(query("backend-service.default.svc.cluster.local"), services)
    assert reply is not None
    ident, flags, _, ancount = struct.unpack("!HHHH", reply[:8])
    assert (ident, flags & 0xF, ancount) == (7, 0, 1) and reply[-4:] == bytes([127, 96, 1, 2])
    svc = answer(query("backend-service.default.svc"), services)
    assert svc is not None and struct.unpack("!HHHH", svc[:8])[3] == 1
    nx = answer(query("example.com"), services)
    assert nx is not None and struct.unpack("!H", nx[2:4])[0] & 0xF == 3  # NXDOMAIN
    aaaa = answer(query("backend-service.default.svc.cluster.local", 28), services)
    assert aaaa is not None
    assert struct.unpack("!HHHH", aaaa[:8])[3] == 0 and struct.unpack("!H", aaaa[2:4])[0] & 0xF == 0
