"""The traffic lab's lessons, in real headless Chromium against `make demo`'s setup.

Each scenario drives the panel like a learner (choose mode, connections, rate, start, stop),
changes the cluster through the API like kubectl would, and asserts on what the page shows:
heatmap rows receiving traffic, per-pod totals, errors and marks (mirrored in data-* attributes).
Screenshots land in test-artifacts/.

The runs target a Service the test creates with a ClusterIP of its own (same selector as
backend-service), so labs started by other tests on this machine cannot answer in its place.
"""

from __future__ import annotations

import functools
import random
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config

from tests import polling

pytestmark = [pytest.mark.browser, pytest.mark.sandbox]
SERVICE = "traffic-lab"


wait_for = functools.partial(polling.wait_until, timeout=40.0, interval=0.2)


class Cluster:
    """The lab's cluster through the official client, as a test (or kubectl) would use it."""

    def __init__(self, kubeconfig: Path, namespace: str) -> None:
        self.namespace = namespace
        self.api = config.new_client_from_config(config_file=str(kubeconfig))
        self.core = client.CoreV1Api(self.api)
        self.apps = client.AppsV1Api(self.api)
        self.discovery = client.DiscoveryV1Api(self.api)

    def create_service(self) -> None:
        """A ClusterIP Service over the backend pods on an address no other lab uses."""
        ip = f"127.96.{random.randint(100, 250)}.{random.randint(2, 250)}"
        body = {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": SERVICE},
            "spec": {
                "type": "ClusterIP",
                "clusterIP": ip,
                "selector": {"app": "backend"},
                "ports": [{"name": "http", "port": 80, "targetPort": 8080}],
            },
        }
        self.core.create_namespaced_service(self.namespace, body)

    def endpoints(self) -> dict[str, tuple[str, bool]]:
        """Pod name -> (pod IP, ready) behind the test's Service."""
        found = {}
        for item in self.discovery.list_namespaced_endpoint_slice(
            self.namespace, label_selector=f"kubernetes.io/service-name={SERVICE}"
        ).items:
            for endpoint in item.endpoints or []:
                ready = bool(endpoint.conditions and endpoint.conditions.ready)
                found[endpoint.target_ref.name] = (endpoint.addresses[0], ready)
        return found

    def ready_pods(self) -> set[str]:
        return {name for name, (_, ready) in self.endpoints().items() if ready}

    def wait_ready(self, count: int) -> set[str]:
        return wait_for(
            lambda: (pods := self.ready_pods()) and len(pods) == count and pods,
            timeout=60,
            what=f"{count} ready endpoints",
        )

    def scale(self, replicas: int) -> None:
        body = {"spec": {"replicas": replicas}}
        self.apps.patch_namespaced_deployment_scale("backend", self.namespace, body)

    def kill(self, pod: str) -> None:
        self.core.delete_namespaced_pod(pod, self.namespace)


class Panel:
    """The traffic panel as a learner sees it."""

    def __init__(self, page: Any, shots: Path) -> None:
        self.page = page
        self.shots = shots

    def state(self) -> dict[str, Any]:
        return self.page.evaluate("""() => ({
            panel: {...document.getElementById('traffic-panel').dataset},
            heat: {...document.getElementById('traffic-heatmap').dataset},
            lanes: {...document.getElementById('traffic-lanes').dataset},
            pods: Array.from(document.querySelectorAll('#traffic-pods tbody tr')).map((r) => ({
                pod: r.dataset.pod, state: r.dataset.state, requests: Number(r.dataset.requests),
                even: r.cells[3].textContent})),
        })""")

    def served(self) -> dict[str, int]:
        return {row["pod"]: row["requests"] for row in self.state()["pods"]}

    def requests(self) -> int:
        return int(self.state()["panel"].get("requests", "0"))

    def start(self, *, mode: str, conns: int, rps: int, duration: int, max_per_conn: int = 0) -> None:
        previous = self.state()["panel"].get("runId")
        self.page.select_option("#traffic-target", f"{SERVICE}:80")
        self.page.check(f"input[name=mode][value={mode}]")
        self.page.fill("#traffic-conns", str(conns))
        self.page.fill("#traffic-rps", str(rps))
        self.page.fill("#traffic-duration", str(duration))
        self.page.fill("#traffic-max-per-conn", str(max_per_conn))
        self.page.click("#traffic-start")
        wait_for(
            lambda: (
                (s := self.state()["panel"]).get("runId") not in (None, previous)
                and s.get("runState") == "running"
            ),
            what="the run to start on the page",
        )

    def wait_finished(self, timeout: float = 60) -> None:
        wait_for(
            lambda: self.state()["panel"].get("runState") in ("finished", "stopped"),
            timeout=timeout,
            what="the run to end",
        )

    def stop(self) -> None:
        self.page.click("#traffic-stop")
        self.wait_finished()

    def wait_requests(self, more: int) -> None:
        target = self.requests() + more
        wait_for(lambda: self.requests() >= target, what=f"{more} more requests")

    def screenshot(self, name: str) -> None:
        self.page.screenshot(path=str(self.shots / f"traffic-{name}.png"), full_page=True)


@pytest.fixture
def lab_panel(sample_lab, browser, artifacts_dir):
    """A dashboard on a fresh sample namespace of the shared sandbox, the test's Service with 3
    ready pods, and the page."""
    lab = sample_lab
    cluster = Cluster(lab.sandbox.kubeconfig, lab.namespace)
    cluster.create_service()
    cluster.wait_ready(3)
    context = browser.new_context(viewport={"width": 1300, "height": 2000})
    page = context.new_page()
    page.goto(lab.login_url)
    page.wait_for_selector(f"#traffic-target option[value='{SERVICE}:80']", state="attached", timeout=30000)
    yield cluster, Panel(page, artifacts_dir)
    context.close()
    cluster.api.close()


def test_keepalive_pins_new_connections_spread_and_not_ready_pods_get_none(lab_panel) -> None:
    cluster, panel = lab_panel
    pods = cluster.ready_pods()

    # One keep-alive connection -> one pod.
    panel.start(mode="keepalive", conns=1, rps=50, duration=3)
    panel.wait_finished()
    panel.screenshot("1-one-keepalive-connection")
    served = {pod for pod, count in panel.served().items() if count}
    assert len(served) == 1 and served <= pods
    state = panel.state()
    assert state["heat"]["rowsWithTraffic"] == "1"
    assert state["lanes"]["lanes"] == "1"

    # A new connection per request -> every ready pod.
    panel.start(mode="new-conn", conns=4, rps=100, duration=3)
    panel.wait_finished()
    panel.screenshot("2-new-connection-per-request")
    served = {pod for pod, count in panel.served().items() if count}
    assert served == pods
    assert panel.state()["heat"]["rowsWithTraffic"] == "3"

    # A pod that is not ready gets no new connection.
    unready = sorted(pods)[0]
    ip, _ = cluster.endpoints()[unready]
    urllib.request.urlopen(
        urllib.request.Request(f"http://{ip}:8080/readyz/disable", method="POST"), timeout=10
    )
    wait_for(lambda: unready not in cluster.ready_pods(), what="the endpoint to turn not ready")
    panel.start(mode="new-conn", conns=4, rps=100, duration=3)
    panel.wait_finished()
    panel.screenshot("3-not-ready-pod")
    rows = {row["pod"]: row for row in panel.state()["pods"]}
    assert rows[unready]["requests"] == 0
    assert rows[unready]["state"] == "not-ready"  # one endpoint vocabulary with the cluster page
    assert all(rows[pod]["requests"] > 0 for pod in pods - {unready})


def test_scaling_up_moves_keepalive_traffic_only_when_connections_are_recycled(lab_panel) -> None:
    cluster, panel = lab_panel
    before = cluster.ready_pods()

    panel.start(mode="keepalive", conns=4, rps=100, duration=60)
    panel.wait_requests(50)
    cluster.scale(5)
    new_pods = cluster.wait_ready(5) - before
    wait_for(
        lambda: sum(1 for r in panel.state()["pods"] if r["state"] == "ready") == 5,
        what="five ready rows on the page",
    )
    panel.wait_requests(300)
    panel.stop()
    panel.screenshot("4-scale-up-keepalive")
    served = panel.served()
    assert all(served[pod] == 0 for pod in new_pods), served
    assert "backend scaled 3→5" in panel.state()["heat"]["markerLabels"]

    # Same again with connections recycled every 10 requests: the new pods get traffic.
    before = cluster.ready_pods()
    panel.start(mode="keepalive", conns=4, rps=200, duration=60, max_per_conn=10)
    panel.wait_requests(50)
    cluster.scale(7)
    newer = cluster.wait_ready(7) - before
    wait_for(lambda: all(panel.served().get(pod, 0) > 0 for pod in newer), what="traffic on the new pods")
    panel.stop()
    panel.screenshot("5-scale-up-recycling")
    assert "backend scaled 5→7" in panel.state()["heat"]["markerLabels"]


NO_SHARE = "\u2013"  # the en dash the table shows for a pod without an even share


def kill_busy_pod_under_load(cluster: Cluster, panel: Panel, name: str) -> dict[str, str]:
    panel.start(mode="keepalive", conns=4, rps=200, duration=60)
    panel.wait_requests(100)
    victim = max(panel.served().items(), key=lambda item: item[1])[0]
    cluster.kill(victim)
    wait_for(
        lambda: any(r["pod"] == victim and r["state"] == "gone" for r in panel.state()["pods"]),
        timeout=60,
        what=f"{victim} to leave the Service",
    )
    panel.wait_requests(200)
    panel.stop()
    panel.screenshot(name)
    state = panel.state()
    assert f"{victim} terminating" in state["heat"]["markerLabels"]
    # Expected shares come from when each pod was a ready endpoint: the victim was one when the
    # run's first connections opened, so it has a share; the shares add up to the whole.
    assert next(row for row in state["pods"] if row["pod"] == victim)["even"] != NO_SHARE
    shares = [float(row["even"].rstrip("%")) for row in state["pods"] if row["even"] != NO_SHARE]
    assert abs(sum(shares) - 100) < 0.5 * len(shares)
    return state["panel"]


def test_killing_a_pod_under_load_drain_loses_nothing_abrupt_shows_errors(lab_panel) -> None:
    cluster, panel = lab_panel
    drained = kill_busy_pod_under_load(cluster, panel, "6-kill-drain")
    assert (drained["errors"], drained["dropped"]) == ("0", "0")

    patch = {
        "spec": {
            "template": {
                "spec": {
                    "containers": [{"name": "backend", "env": [{"name": "SHUTDOWN_MODE", "value": "abrupt"}]}]
                }
            }
        }
    }
    # The switch to abrupt is itself a rollout: watched under load, it is marked on the heatmap.
    panel.start(mode="keepalive", conns=4, rps=100, duration=120)
    panel.wait_requests(50)
    cluster.apps.patch_namespaced_deployment("backend", cluster.namespace, patch)

    def rolled_out() -> bool:
        """Only the new template's pods are left: three, ready, abrupt, none terminating."""
        pods = cluster.core.list_namespaced_pod(cluster.namespace, label_selector="app=backend").items
        return len(pods) == 3 and all(
            pod.metadata.deletion_timestamp is None
            and any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions or [])
            and any(e.name == "SHUTDOWN_MODE" and e.value == "abrupt" for e in pod.spec.containers[0].env)
            for pod in pods
        )

    wait_for(rolled_out, timeout=120, what="the rollout to SHUTDOWN_MODE=abrupt")
    wait_for(lambda: "backend rollout" in panel.state()["heat"]["markerLabels"], what="the rollout mark")
    panel.stop()
    panel.screenshot("7-rollout")
    cluster.wait_ready(3)
    abrupt = kill_busy_pod_under_load(cluster, panel, "8-kill-abrupt")
    assert int(abrupt["errors"]) + int(abrupt["dropped"]) > 0
