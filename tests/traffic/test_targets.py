"""Targets come only from Services of the watched namespace (the watch hub's cache), resolved
on the server; a run's cluster view — the Service's endpoints and Deployments — is pushed by
the hub's traffic feed, never polled. Against a live sandbox."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from kubernetes import client

from dashboard.hub import Hub, KubeSource
from dashboard.traffic.cluster import ClusterView, feed_for
from dashboard.traffic.targets import TargetError, TargetOption, reachable, resolve_target, target_options
from tests.dashboard.conftest import until
from tests.dashboard.test_reliability import kube_configuration

pytestmark = pytest.mark.sandbox


@pytest.fixture
async def live_hub(sandbox, settings) -> AsyncIterator[Hub]:
    """A watch hub on the session's sandbox, as the dashboard runs one."""
    settings.LBDEMO_TRAFFIC_URL = ""
    configuration = kube_configuration(sandbox.kubeconfig)
    source = KubeSource(namespace="default", api_client_factory=lambda: client.ApiClient(configuration))
    hub = Hub(
        source, loop=asyncio.get_running_loop(), kinds=("Service", "EndpointSlice", "Deployment", "Ingress")
    )
    hub.start()
    assert await hub.wait_synced(30)
    yield hub
    hub.stop()


async def test_options_are_the_namespace_services_with_selectors(live_hub: Hub) -> None:
    options = target_options(live_hub.cache.list("Service"))
    assert options[0].id == "backend-service:80"
    assert options[0].label == "backend-service :80 (http)"
    assert all(option.service != "kubernetes" for option in options)  # no selector: not a target


async def test_a_service_resolves_to_its_cluster_ip(live_hub: Hub) -> None:
    service = live_hub.cache.get("Service", "backend-service")
    assert service is not None
    ip = service["spec"]["clusterIP"]
    # The proxy (re)binds Service listeners within seconds of start-up or of a conflict ending.
    for _ in range(120):
        if await reachable(ip, 80, timeout=1.0):
            break
        await asyncio.sleep(0.5)
    resolved = await resolve_target("backend-service:80", live_hub.cache.list("Service"))
    assert resolved.via == "ClusterIP"
    assert resolved.target.host.startswith("127.96.") and resolved.target.port == 80


@pytest.mark.parametrize(
    ("target_id", "message"),
    [
        ("missing:80", "does not exist"),
        ("backend-service:81", "has no port 81"),
        ("http://127.0.0.1:8080/", "choose a target"),
        ("backend-service", "choose a target"),
        ("backend-service:²", "choose a target"),
    ],
)
async def test_unknown_targets_are_refused(live_hub: Hub, target_id: str, message: str) -> None:
    with pytest.raises(TargetError, match=message):
        await resolve_target(target_id, live_hub.cache.list("Service"))


class Recorder:
    """A run as the feed sees it, remembering every view pushed to it."""

    service = "backend-service"
    active = True

    def __init__(self) -> None:
        self.views: list[ClusterView] = []

    def cluster_update(self, view: ClusterView) -> None:
        self.views.append(view)


async def test_the_feed_pushes_ready_endpoints_and_the_deployment(live_hub: Hub) -> None:
    run = Recorder()
    feed_for(live_hub).follow(run)
    await until(
        lambda: bool(run.views) and sorted(run.views[-1].endpoints.values()) == ["ready"] * 3, timeout=60
    )
    view = run.views[-1]
    assert all(name.startswith("backend-") for name in view.endpoints)
    assert list(view.deployments) == ["backend"] and view.deployments["backend"][0] == 3
    assert feed_for(live_hub) is feed_for(live_hub)


async def test_the_namespace_ingress_is_a_target_at_its_published_address(live_hub: Hub) -> None:
    def option() -> TargetOption | None:
        options = target_options(live_hub.cache.list("Service"), live_hub.cache.list("Ingress"))
        return next((o for o in options if o.id == "ingress/backend" and "no address" not in o.label), None)

    await until(lambda: option() is not None, timeout=60)
    found = option()
    assert found is not None and found.service == "backend-service"
    assert found.label.startswith("ingress backend → backend-service (")
    resolved = await resolve_target(
        "ingress/backend", live_hub.cache.list("Service"), live_hub.cache.list("Ingress")
    )
    assert resolved.via == "Ingress" and resolved.option.service == "backend-service"
