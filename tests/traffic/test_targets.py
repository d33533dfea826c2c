"""Targets come only from Services of the watched namespace, resolved on the server; the run's
cluster poll sees the Service's endpoints and Deployments. Against a live sandbox."""

from __future__ import annotations

import pytest

from dashboard import kube
from dashboard.traffic.cluster import poll_cluster
from dashboard.traffic.targets import TargetError, reachable, resolve_target, target_options
from tests.traffic.helpers import wait_until

pytestmark = pytest.mark.sandbox


@pytest.fixture
def on_sandbox(sandbox, settings):
    """Point the dashboard's client at the session's sandbox."""
    settings.LBDEMO_KUBECONFIG = str(sandbox.kubeconfig)
    settings.LBDEMO_CONTEXT = ""
    settings.LBDEMO_NAMESPACE = "default"
    settings.LBDEMO_TRAFFIC_URL = ""
    kube.cluster_configuration.cache_clear()
    yield sandbox
    kube.cluster_configuration.cache_clear()


def target_ip() -> str:
    """backend-service's ClusterIP, read through the client like the dashboard does."""
    from kubernetes import client

    with kube.api_client() as api:
        return client.CoreV1Api(api).read_namespaced_service("backend-service", "default").spec.cluster_ip


def test_options_are_the_namespace_services_with_selectors(on_sandbox) -> None:
    options = target_options()
    assert options[0].id == "backend-service:80"
    assert options[0].label == "backend-service :80 (http)"
    assert all(option.service != "kubernetes" for option in options)  # no selector: not a target


def test_a_service_resolves_to_its_cluster_ip(on_sandbox) -> None:
    # The proxy (re)binds Service listeners within seconds of start-up or of a conflict ending.
    wait_until(lambda: reachable(target_ip(), 80, timeout=1.0), timeout=60)
    resolved = resolve_target("backend-service:80")
    assert resolved.via == "ClusterIP"
    assert resolved.target.host.startswith("127.96.") and resolved.target.port == 80
    assert resolved.selector == {"app": "backend"}


@pytest.mark.parametrize(
    ("target_id", "message"),
    [
        ("missing:80", "does not exist"),
        ("backend-service:81", "has no port 81"),
        ("http://127.0.0.1:8080/", "choose a target"),
        ("backend-service", "choose a target"),
    ],
)
def test_unknown_targets_are_refused(on_sandbox, target_id: str, message: str) -> None:
    with pytest.raises(TargetError, match=message):
        resolve_target(target_id)


def test_the_run_poll_sees_ready_endpoints_and_the_deployment(on_sandbox) -> None:
    def three_ready() -> bool:
        view = poll_cluster(service="backend-service", selector={"app": "backend"}, namespace="default")
        return sorted(view.endpoints.values()) == ["ready"] * 3

    wait_until(three_ready, timeout=60)
    view = poll_cluster(service="backend-service", selector={"app": "backend"}, namespace="default")
    assert all(name.startswith("backend-") for name in view.endpoints)
    assert list(view.deployments) == ["backend"] and view.deployments["backend"][0] == 3


def test_the_namespace_ingress_is_a_target_at_its_published_address(on_sandbox) -> None:
    def option():
        options = target_options()
        return next((o for o in options if o.id == "ingress/backend" and "no address" not in o.label), None)

    found = wait_until(option, timeout=60)
    assert found.service == "backend-service"
    assert found.label.startswith("ingress backend → backend-service (")
    resolved = resolve_target("ingress/backend")
    assert resolved.via == "Ingress" and resolved.selector == {"app": "backend"}
    assert reachable(resolved.target.host, resolved.target.port, timeout=1.0)
    with pytest.raises(TargetError, match="ingress 'nope' does not exist"):
        resolve_target("ingress/nope")
