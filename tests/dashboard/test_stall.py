"""A stalled API server against the shared live sandbox, seen through a TCP proxy that freezes
like a SIGSTOPped process: the hub notices within seconds (not after the 60 s watch read
timeout), the page's status and the actions say so at once, and all recovers when it thaws.
Also: the hub's LISTs come in pages and add up to one full LIST."""

from __future__ import annotations

import asyncio
import time
from urllib.parse import urlsplit

import pytest
from django.contrib.auth import get_user_model
from django.test import AsyncClient
from kubernetes import client

from dashboard import hub as hub_module
from dashboard.hub import Hub, KubeSource
from tests.dashboard.conftest import until
from tests.dashboard.tcpproxy import TcpProxy
from tests.dashboard.test_reliability import kube_configuration
from tests.polling import wait_until

pytestmark = [pytest.mark.sandbox, pytest.mark.django_db(transaction=True)]


@pytest.mark.usefixtures("release_db_thread")
async def test_a_frozen_api_server_is_shown_within_15_s_and_actions_answer_503_at_once(
    sandbox: object, settings: object
) -> None:
    port = urlsplit(sandbox.url).port  # type: ignore[attr-defined]
    assert port is not None, sandbox.url  # type: ignore[attr-defined]
    proxy = TcpProxy(port)
    through = kube_configuration(sandbox.kubeconfig, port=proxy.port)  # type: ignore[attr-defined]
    source = KubeSource(namespace="default", api_client_factory=lambda: client.ApiClient(through))
    hub = Hub(
        source,
        loop=asyncio.get_running_loop(),
        kinds=("Pod", "Deployment", "Service"),
        watch_timeout=60,
        read_timeout=60.0,
    )
    hub.start()
    hub_module.install_hub(hub)
    user, _ = await get_user_model().objects.aget_or_create(username="ada")
    web = AsyncClient()
    await web.aforce_login(user)
    try:
        assert await hub.wait_synced(30)
        assert "live" in (await web.get("/")).content.decode()
        proxy.freeze()
        frozen = time.monotonic()
        await until(lambda: not hub.healthy, timeout=20)
        noticed = time.monotonic() - frozen
        print(f"frozen API server noticed after {noticed:.1f} s")
        assert noticed < 15
        page = (await web.get("/")).content.decode()
        assert "the API is silent" in page
        started = time.monotonic()
        response = await web.post("/actions/scale", {"replicas": "2"})
        assert response.status_code == 503 and "cannot reach the cluster" in response.json()["error"]
        assert time.monotonic() - started < 2, "refused at once, not after a timeout"
        # The traffic panel reads the hub's cache: it answers at once and says what is going on.
        started = time.monotonic()
        options = (await web.get("/traffic/options")).json()
        assert "reaching the cluster" in options["error"] and options["targets"]
        refused = await web.post(
            "/traffic/start",
            {"target": "backend-service:80", "mode": "keepalive", "conns": "1", "rps": "10", "duration": "5"},
        )
        assert refused.status_code == 503 and "not answering" in refused.json()["error"]
        assert time.monotonic() - started < 2, "the traffic panel waits on no API call"
        proxy.thaw()
        await until(lambda: hub.healthy, timeout=30)
    finally:
        hub.stop()
        hub_module.install_hub(None)
        proxy.close()


def test_lists_come_in_pages_that_add_up_to_one_list(
    sandbox: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    configuration = kube_configuration(sandbox.kubeconfig)  # type: ignore[attr-defined]
    source = KubeSource(namespace="default", api_client_factory=lambda: client.ApiClient(configuration))
    # The sample app's pods (a fresh sandbox is still creating them): more than one page of 2.
    def four_or_more() -> tuple[list[dict], str] | None:
        listed = source.list("Pod")
        return listed if len(listed[0]) >= 4 else None

    whole, rv = wait_until(four_or_more, timeout=60, what="the sample app's four pods")
    assert rv
    pages: list[dict] = []
    real = source._call

    def counting(kind: str):
        call = real(kind)

        def wrapped(**kwargs: object) -> object:
            pages.append(kwargs)
            return call(**kwargs)

        return wrapped

    monkeypatch.setattr(hub_module, "PAGE_SIZE", 2)
    monkeypatch.setattr(source, "_call", counting)
    paged, _ = source.list("Pod")
    assert sorted(p["metadata"]["name"] for p in paged) == sorted(p["metadata"]["name"] for p in whole)
    assert len(pages) == -(-len(whole) // 2) and all(p["limit"] == 2 for p in pages)
    assert "_continue" not in pages[0] and all(p.get("_continue") for p in pages[1:])
    pages.clear()
    cached, _ = source.list("Pod", resource_version="0")
    assert pages[0]["resource_version"] == "0" and len(cached) == len(whole)
