"""Simulated nodes (`python -m sandbox up --simulated-nodes N`, `sandbox/kubelet/simulated.py`),
against a live sandbox with the bundled kubectl: a Deployment scales to 300 pods that all turn
Ready on the simulated nodes without a single process, readiness gates hold them back like on
a real node, and a scale-down deletes every one."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from lab.launcher import Lab, free_port
from tests.conftest import BackgroundStops, Sandbox
from tests.polling import wait_until

pytestmark = pytest.mark.sandbox

REPO = Path(__file__).resolve().parents[2]
CROWD = REPO / "docs" / "examples" / "crowd.yaml"
SIMULATED = 10


@pytest.fixture(scope="module")
def sim_box(tmp_path_factory: pytest.TempPathFactory, background_stops: BackgroundStops) -> Iterator[Sandbox]:
    """A sandbox of this module's with one real node and ten simulated ones (short phase delays);
    each test uses Deployments of its own."""
    lab = Lab()
    tmp_path = tmp_path_factory.mktemp("simulated")
    state_dir = tmp_path / "state"
    try:
        lab.start_sandbox(state_dir=state_dir, api_port=free_port(), nodes=1, simulated_nodes=SIMULATED,
                          simulated_delays={"pending": 0.2, "creating": 0.3, "ready": 0.3, "grace": 0.5},
                          log_file=tmp_path / "sandbox.log")
    except Exception:
        lab.stop()
        raise
    box = Sandbox(lab, state_dir)
    wait_until(lambda: len(json.loads(box.kubectl("get", "nodes", "-o", "json"))["items"]) == SIMULATED + 1,
               timeout=120, interval=0.5, what="eleven nodes registered")
    yield box
    background_stops.stop(box.stop)


def crowd_pods(box: Sandbox) -> list[dict]:
    return json.loads(box.kubectl("get", "pods", "-l", "app=crowd", "-o", "json"))["items"]


def is_ready(pod: dict) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (pod.get("status") or {}).get("conditions") or [])


def test_simulated_nodes_say_so_and_only_tolerating_pods_land_there(sim_box: Sandbox) -> None:
    nodes = json.loads(sim_box.kubectl("get", "nodes", "-o", "json"))["items"]
    simulated = [n for n in nodes if n["metadata"]["labels"].get("lb-demo.dev/simulated") == "true"]
    assert sorted(n["metadata"]["name"] for n in simulated) == sorted(
        f"sandbox-sim-{i}" for i in range(1, SIMULATED + 1))
    for node in simulated:
        assert node["spec"]["taints"] == [{"key": "lb-demo.dev/simulated", "value": "true",
                                           "effect": "NoSchedule"}]
        assert node["status"]["nodeInfo"]["containerRuntimeVersion"].startswith("simulated://")
    # The sample app has no toleration: it runs on the real node only.
    wait_until(lambda: len([p for p in json.loads(sim_box.kubectl("get", "pods", "-l", "app=backend", "-o",
                                                                  "json"))["items"] if is_ready(p)]) == 3,
               timeout=120, interval=0.5, what="the sample backend Ready")
    backend = json.loads(sim_box.kubectl("get", "pods", "-l", "app=backend", "-o", "json"))["items"]
    assert {p["spec"]["nodeName"] for p in backend} == {"sandbox-node-1"}


def test_a_deployment_scales_to_300_simulated_pods_and_back(sim_box: Sandbox) -> None:
    sim_box.kubectl("apply", "-f", str(CROWD))
    sim_box.kubectl("scale", "deployment", "crowd", "--replicas=300")
    seen_phases: set[str] = set()

    def all_ready() -> bool:
        pods = crowd_pods(sim_box)
        for pod in pods:
            waiting = [(c.get("state") or {}).get("waiting", {}).get("reason")
                       for c in pod["status"].get("containerStatuses") or []]
            phase = pod["status"].get("phase")
            seen_phases.add("ContainerCreating" if "ContainerCreating" in waiting else phase)
        return len(pods) == 300 and all(is_ready(p) for p in pods)

    wait_until(all_ready, timeout=300, interval=1.0, what="300 crowd pods Ready")
    assert "Running" in seen_phases
    pods = crowd_pods(sim_box)
    assert {p["spec"]["nodeName"] for p in pods} == {f"sandbox-sim-{i}" for i in range(1, SIMULATED + 1)}
    ips = [p["status"]["podIP"] for p in pods]
    assert len(set(ips)) == 300, "every simulated pod has an IP of its own"
    # kubectl shows them like any pod: 1/1 Running.
    table = sim_box.kubectl("get", "pods", "-l", "app=crowd", "--no-headers")
    assert table.count(" 1/1 ") == 300 and table.count("Running") == 300
    # Nothing listens on a simulated pod's IP: the connection is refused at once.
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((ips[0], 8000), timeout=5).close()

    sim_box.kubectl("scale", "deployment", "crowd", "--replicas=0")
    wait_until(lambda: not crowd_pods(sim_box), timeout=300, interval=1.0, what="every crowd pod deleted")


def test_a_readiness_gate_holds_a_simulated_pod_back_until_its_condition_is_true(sim_box: Sandbox) -> None:
    deployment = yaml.safe_load(CROWD.read_text())
    deployment["metadata"]["name"] = "gated"
    deployment["spec"]["replicas"] = 1
    deployment["spec"]["selector"]["matchLabels"] = {"app": "gated"}
    deployment["spec"]["template"]["metadata"]["labels"] = {"app": "gated"}
    deployment["spec"]["template"]["spec"]["readinessGates"] = [{"conditionType": "example.com/gate"}]
    sim_box.kubectl("apply", "-f", "-", stdin=yaml.safe_dump(deployment))

    def the_pod() -> dict | None:
        items = json.loads(sim_box.kubectl("get", "pods", "-l", "app=gated", "-o", "json"))["items"]
        return items[0] if items else None

    def waiting_on_gate() -> dict | None:
        pod = the_pod()
        ready = [c for c in ((pod or {}).get("status") or {}).get("conditions") or [] if c["type"] == "Ready"]
        if ready and ready[0].get("reason") == "ReadinessGatesNotReady":
            return pod
        return None

    pod = wait_until(waiting_on_gate, timeout=120, interval=0.5, what="Ready=False/ReadinessGatesNotReady")
    assert pod["status"]["phase"] == "Running"
    assert any(c["type"] == "ContainersReady" and c["status"] == "True" for c in pod["status"]["conditions"])
    name = pod["metadata"]["name"]
    sim_box.kubectl("patch", "pod", name, "--subresource=status", "--type=strategic", "-p", json.dumps(
        {"status": {"conditions": [{"type": "example.com/gate", "status": "True"}]}}))
    wait_until(lambda: (p := the_pod()) is not None and is_ready(p), timeout=120, interval=0.5,
               what="the gated pod Ready once its condition is True")


def test_a_daemonset_reaches_simulated_nodes_only_when_it_tolerates_them(sim_box: Sandbox) -> None:
    """(apps) DaemonSet pods follow the simulated nodes' NoSchedule taint like any other pod."""
    def daemonset(name: str, tolerations: list[dict]) -> str:
        return yaml.safe_dump({
            "apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": name},
            "spec": {"selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"tolerations": tolerations,
                                           "containers": [{"name": "agent", "image": "lb-demo:latest"}]}}}})

    def status(name: str) -> dict:
        return json.loads(sim_box.kubectl("get", "ds", name, "-o", "json")).get("status") or {}

    sim_box.kubectl("apply", "-f", "-", stdin=daemonset("local-agent", []))
    sim_box.kubectl("apply", "-f", "-", stdin=daemonset("sim-agent", [
        {"key": "lb-demo.dev/simulated", "operator": "Exists", "effect": "NoSchedule"}]))
    wait_until(lambda: status("sim-agent").get("numberReady") == SIMULATED + 1, timeout=120, interval=0.5,
               what="sim-agent Ready on every node")
    wait_until(lambda: status("local-agent").get("numberReady") == 1, timeout=60, interval=0.5,
               what="local-agent Ready on the real node")
    listed = sim_box.kubectl("get", "pods", "-l", "app in (local-agent,sim-agent)", "-o", "json")
    pods = json.loads(listed)["items"]
    on = {name: sorted(p["spec"]["nodeName"] for p in pods if p["metadata"]["labels"]["app"] == name)
          for name in ("local-agent", "sim-agent")}
    assert on["local-agent"] == ["sandbox-node-1"]
    simulated = [f"sandbox-sim-{i}" for i in range(1, SIMULATED + 1)]
    assert on["sim-agent"] == sorted(["sandbox-node-1", *simulated])
    assert status("local-agent")["desiredNumberScheduled"] == 1
    sim_box.kubectl("delete", "ds", "local-agent", "sim-agent")
