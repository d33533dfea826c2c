"""The serving-gate rule in the dashboard process (dashboard.gatekeeper), on the hub's own pod
watch, against the fake API over HTTP: a new gated pod is started serving once, a refused write
backs off without a relist or a watch of its own, and a real daphne applies the rule from its
first request on, with no page open; importing the ASGI application starts nothing."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from kubernetes import client, config

import servinggate
from dashboard import gatekeeper
from dashboard.hub import Hub, KubeSource
from tests.dashboard.canned import pod
from tests.dashboard.conftest import until
from tests.dashboard.fakeapi import FakeApi
from tests.dashboard.socketlab import SocketLab
from tests.polling import wait_until

REPO = Path(__file__).resolve().parents[2]


def gated(name: str, rv: str = "1", *, serving: str | None = None) -> dict[str, Any]:
    """A backend pod declaring the gate, with the condition (``serving``) or without it."""
    obj = pod(name, rv)
    obj["spec"]["readinessGates"] = [{"conditionType": servinggate.CONDITION_TYPE}]
    if serving is not None:
        obj["status"]["conditions"].append({"type": servinggate.CONDITION_TYPE, "status": serving})
    return obj


def condition(hub: Hub, name: str) -> dict[str, Any] | None:
    """The gate condition of a pod as the hub's cache has it."""
    found = hub.cache.get("Pod", name)
    return servinggate.gate_condition(found) if found is not None else None


@pytest.fixture
def api() -> Iterator[FakeApi]:
    fake = FakeApi()
    yield fake
    fake.stop()


async def watching(api: FakeApi) -> None:
    """Wait until the hub's pod watch is open (the fake API replays nothing from before it)."""
    await until(lambda: len(api.watches["Pod"]) == 1, timeout=30)


def hub_on(api: FakeApi, tmp_path: Path) -> tuple[Hub, Any]:
    """A real hub (KubeSource, the official client over HTTP) watching the fake API's pods, and a
    client factory for the rule's writes."""
    configuration = client.Configuration()
    config.load_kube_config(config_file=str(api.kubeconfig(tmp_path / "kubeconfig")),
                            client_configuration=configuration)
    configuration.retries = False

    def factory() -> client.ApiClient:
        return client.ApiClient(configuration)

    source = KubeSource(namespace="default", api_client_factory=factory)
    return Hub(source, loop=asyncio.get_running_loop(), kinds=("Pod",), watch_timeout=60,
               read_timeout=30.0), factory


async def test_a_new_gated_pod_is_started_serving_once_through_the_hubs_watch(api: FakeApi,
                                                                              tmp_path: Path) -> None:
    api.accepts_status_patches = True
    api.put_many("Pod", [gated("switched-off", serving="False"), pod("plain", "1")])
    hub, factory = hub_on(api, tmp_path)
    hub.start()
    keeper = gatekeeper.attach(hub, gatekeeper.status_patcher(factory))
    try:
        assert await hub.wait_synced(30)
        await watching(api)
        api.put("Pod", gated("new"))
        await until(lambda: condition(hub, "new") is not None, timeout=30)
        started = condition(hub, "new")
        assert started is not None
        assert (started["status"], started["reason"]) == ("True", servinggate.DEFAULT_REASON)
        # The learner's switch stays off; a pod without the gate is not touched.
        assert condition(hub, "switched-off") == {"type": servinggate.CONDITION_TYPE, "status": "False"}
        assert servinggate.gate_condition(hub.cache.get("Pod", "plain") or {}) is None
        # Later changes of the started pod (its own write coming back, a relabel) write nothing more.
        relabelled = api.objects["Pod"]["new"] | {}
        relabelled["metadata"] = relabelled["metadata"] | {"labels": {"app": "backend", "x": "1"}}
        api.put("Pod", relabelled)
        await until(lambda: "x" in (hub.cache.get("Pod", "new") or {})["metadata"]["labels"], timeout=30)
        assert api.requests[("PATCH", "Pod")] == 1
        # One pod watch and one LIST in the process: the hub's.
        assert api.requests[("WATCH", "Pod")] == 1 and api.requests[("LIST", "Pod")] == 1
    finally:
        keeper.stop()
        hub.stop()


async def test_a_refused_write_backs_off_and_never_relists(api: FakeApi, tmp_path: Path) -> None:
    hub, factory = hub_on(api, tmp_path)
    hub.start()
    keeper = gatekeeper.attach(hub, gatekeeper.status_patcher(factory), retry=(0.1, 0.2))
    try:
        assert await hub.wait_synced(30)
        await watching(api)
        api.put("Pod", gated("refused"))
        await until(lambda: api.requests[("PATCH", "Pod")] >= 3, timeout=30)  # 405, 405, 405, ...
        assert keeper.waiting == 1
        assert api.requests[("LIST", "Pod")] == 1 and api.requests[("WATCH", "Pod")] == 1
        api.accepts_status_patches = True
        await until(lambda: condition(hub, "refused") is not None, timeout=30)
        await until(lambda: keeper.waiting == 0, timeout=10)
        # A pod that goes away while its write is refused stops waiting.
        api.accepts_status_patches = False
        api.put("Pod", gated("short-lived"))
        await until(lambda: keeper.waiting == 1, timeout=30)
        api.delete("Pod", "short-lived")
        await until(lambda: keeper.waiting == 0, timeout=30)
        assert api.requests[("LIST", "Pod")] == 1
    finally:
        keeper.stop()
        hub.stop()


async def test_the_asgi_lifespan_starts_the_hub_and_the_rule_and_stops_them(api: FakeApi, tmp_path: Path,
                                                                            settings: Any) -> None:
    from asgiref.testing import ApplicationCommunicator

    from dashboard import asgi, kube
    from dashboard import hub as hub_module

    settings.LBDEMO_KUBECONFIG = str(api.kubeconfig(tmp_path / "kubeconfig"))
    kube.cluster_configuration.cache_clear()
    hub_module.install_hub(None)
    api.accepts_status_patches = True
    api.put("Pod", gated("backend-1"))
    lifespan = ApplicationCommunicator(asgi.StartsTheHub(asgi.application.app), {"type": "lifespan"})
    try:
        await lifespan.send_input({"type": "lifespan.startup"})
        assert await lifespan.receive_output(timeout=30) == {"type": "lifespan.startup.complete"}
        # No page, no request: the hub lists and watches, and the rule starts the pod serving.
        await until(lambda: servinggate.gate_condition(api.objects["Pod"]["backend-1"]) is not None,
                    timeout=30)
        threads = [t for t in threading.enumerate() if t.name.startswith(("lbdemo-watch", "serving-gate"))]
        assert threads
        await lifespan.send_input({"type": "lifespan.shutdown"})
        assert await lifespan.receive_output(timeout=30) == {"type": "lifespan.shutdown.complete"}
        for thread in threads:
            await asyncio.to_thread(thread.join, 10)
        assert not [t.name for t in threads if t.is_alive()]
    finally:
        hub_module.shutdown()
        kube.cluster_configuration.cache_clear()


def test_importing_the_asgi_application_starts_no_thread() -> None:
    script = ("import threading, dashboard.asgi; "
              "print(sorted(t.name for t in threading.enumerate() if t is not threading.main_thread()))")
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "dashboard.settings", "LBDEMO_SERVING_GATE_DEFAULTS": "1"}
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO, env=env, capture_output=True, text=True,
                            timeout=120, check=True)
    assert result.stdout.strip() == "[]", result.stdout
    assert "Logging error" not in result.stderr, result.stderr


def test_daphne_applies_the_rule_from_its_first_request_with_no_page_open(tmp_path: Path) -> None:
    lab = SocketLab(tmp_path)
    try:
        lab.api.accepts_status_patches = True
        lab.api.put("Pod", gated("backend-1"))
        assert lab.api.requests[("WATCH", "Pod")] == 0, "nothing watches before the first request"
        assert requests.get(f"{lab.url}/healthz", timeout=30).status_code == 200
        served = wait_until(lambda: servinggate.gate_condition(lab.api.objects["Pod"]["backend-1"]),
                            timeout=30, what="the pod's serving condition")
        assert served["status"] == "True"
        assert lab.api.requests[("WATCH", "Pod")] == 1
        assert "Traceback" not in lab.log()
    finally:
        lab.stop()
