"""The watch hub against a live sandbox: after dropped streams, a silent stall, a forced 410 and
an API server restart, the cache converges to a fresh LIST — no stale and no missing object.
Also the interleaving that made the first of these fail now and then: a relist whose request
left just before its connection went silent (the LIST waited 30 s for an answer, while every
silent watch gives up after the hub's read timeout)."""

from __future__ import annotations

import asyncio
import copy
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from kubernetes import client, config

from dashboard.hub import LIST_READ_TIMEOUT, Hub, KubeSource
from lab.launcher import Lab
from tests.dashboard.canned import present
from tests.dashboard.tcpproxy import TcpProxy

pytestmark = pytest.mark.sandbox

COMPARED = ("Pod", "ReplicaSet", "Deployment", "EndpointSlice", "Service", "Node")


def kube_configuration(kubeconfig: Path, *, port: int | None = None) -> client.Configuration:
    """A client configuration for the sandbox, optionally pointed at a proxy port instead."""
    configuration = client.Configuration()
    config.load_kube_config(config_file=str(kubeconfig), client_configuration=configuration)
    configuration.retries = False  # as the dashboard's own (dashboard.kube): the hub retries itself
    if port is not None:
        configuration = copy.copy(configuration)
        configuration.host = f"https://127.0.0.1:{port}"
        # The kubeconfig loader's token-refresh hook rewrites host from the kubeconfig before
        # every request, which would send the "proxied" client straight to the API server.
        configuration.refresh_api_key_hook = None
    return configuration


def listed(source: KubeSource) -> dict[str, dict[str, str]]:
    """A fresh LIST of every compared kind: name -> resourceVersion."""
    return {kind: {o["metadata"]["name"]: o["metadata"]["resourceVersion"] for o in source.list(kind)[0]}
            for kind in COMPARED}


def cached(hub: Hub) -> dict[str, dict[str, str]]:
    return {kind: {o["metadata"]["name"]: o["metadata"]["resourceVersion"] for o in hub.cache.list(kind)}
            for kind in COMPARED}


async def converge(hub: Hub, truth: KubeSource, what: str, timeout: float = 30.0) -> float:
    """Wait until the cache equals a fresh LIST; return how long it took."""
    start = time.monotonic()
    while True:
        fresh = await asyncio.to_thread(listed, truth)
        if cached(hub) == fresh:
            elapsed = time.monotonic() - start
            print(f"{what}: cache equals a fresh LIST after {elapsed:.2f} s")
            return elapsed
        if time.monotonic() - start > timeout:
            raise AssertionError(f"{what}: cache differs from LIST: {cached(hub)} != {fresh}")
        await asyncio.sleep(0.1)


class StaleFirstList(KubeSource):
    """Reports a long-gone resourceVersion for the first Pod LIST, so the watch gets a real 410."""

    stale_once = True

    def list(self, kind: str, *, resource_version: str = "",
             read_timeout: float = LIST_READ_TIMEOUT) -> tuple[list[dict], str]:
        items, rv = super().list(kind, resource_version=resource_version, read_timeout=read_timeout)
        if kind == "Pod" and self.stale_once:
            self.stale_once = False
            return [], "1"
        return items, rv


@pytest.fixture
def restartable(tmp_path: Path) -> Iterator[Callable[..., tuple[Lab, int]]]:
    """Start sandboxes on a fixed state dir and port, stoppable and restartable by the test."""
    labs: list[Lab] = []

    def start(state_dir: Path, port: int) -> tuple[Lab, int]:
        lab = Lab()
        labs.append(lab)
        lab.start_sandbox(state_dir=state_dir, api_port=port, log_file=tmp_path / "sandbox.log")
        return lab, port

    yield start
    for lab in labs:
        lab.stop()


async def test_cache_converges_after_drops_stall_410_and_restart(tmp_path: Path,
                                                                 restartable: Callable) -> None:
    from lab.launcher import free_port

    state_dir = tmp_path / "state"
    lab, port = restartable(state_dir, free_port())
    kubeconfig = state_dir / "kubeconfig"
    proxy = TcpProxy(port)
    through_proxy = kube_configuration(kubeconfig, port=proxy.port)
    direct = kube_configuration(kubeconfig)
    truth = KubeSource(namespace="default", api_client_factory=lambda: client.ApiClient(direct))
    source = KubeSource(namespace="default", api_client_factory=lambda: client.ApiClient(through_proxy))
    hub = Hub(source, loop=asyncio.get_running_loop(), watch_timeout=60, read_timeout=2.0)
    hub.start()
    core = client.CoreV1Api(client.ApiClient(direct))
    try:
        assert await hub.wait_synced(30)
        await converge(hub, truth, "first sync")

        proxy.drop_all()
        await asyncio.to_thread(core.patch_namespaced_pod, "frontend", "default",
                                {"metadata": {"labels": {"step": "dropped"}}})
        await converge(hub, truth, "dropped streams")

        proxy.stall_all()
        await asyncio.to_thread(core.patch_namespaced_pod, "frontend", "default",
                                {"metadata": {"labels": {"step": "stalled"}}})
        await converge(hub, truth, "silent stall (read timeout)")
        assert present(hub.cache.get("Pod", "frontend"))["metadata"]["labels"]["step"] == "stalled"

        lab.stop()
        await asyncio.to_thread(core.api_client.rest_client.pool_manager.clear)
        lab, _ = restartable(state_dir, port)
        await asyncio.to_thread(core.patch_namespaced_pod, "frontend", "default",
                                {"metadata": {"labels": {"step": "restarted"}}})
        await converge(hub, truth, "API server restart")
        # No relist is required here: a watch resumed from the last durable resourceVersion
        # legitimately continues across a restart (see sandbox/apiserver/store.py); what
        # matters is that the cache equals a fresh LIST again.
        assert present(hub.cache.get("Pod", "frontend"))["metadata"]["labels"]["step"] == "restarted"
    finally:
        hub.stop()
        proxy.close()

    stale = StaleFirstList(namespace="default", api_client_factory=lambda: client.ApiClient(direct))
    hub = Hub(stale, loop=asyncio.get_running_loop(), kinds=COMPARED, watch_timeout=60, read_timeout=5.0)
    hub.start()
    try:
        await converge(hub, truth, "forced 410 Gone")
        assert not stale.stale_once and hub.relists >= 1
    finally:
        hub.stop()


class SilentAfterRequest(KubeSource):
    """Once armed, sends the next LIST over a keep-alive connection that goes silent (the proxy
    swallows its bytes): the request leaves, no answer ever comes — what happened when the
    stall landed while a relist was in flight."""

    def __init__(self, proxy: TcpProxy, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.proxy = proxy
        self.armed = threading.Event()
        self.silenced = threading.Event()

    def list(self, kind: str, *, resource_version: str = "",
             read_timeout: float = LIST_READ_TIMEOUT) -> tuple[list[dict], str]:
        if self.armed.is_set():
            self.armed.clear()
            # One answered request leaves an idle keep-alive connection in this thread's pool;
            # stalled, it is the one the LIST below is sent over.
            client.VersionApi(self._local.api).get_code(_request_timeout=(5, 5),
                                                       _preload_content=False).release_conn()
            self.proxy.stall_all()
            self.silenced.set()
        return super().list(kind, resource_version=resource_version, read_timeout=read_timeout)


async def test_a_relist_whose_connection_goes_silent_gives_up_like_a_silent_watch(sandbox: object) -> None:
    namespace = f"t-{uuid.uuid4().hex[:8]}"
    direct = kube_configuration(sandbox.kubeconfig)  # type: ignore[attr-defined]
    core = client.CoreV1Api(client.ApiClient(direct))
    await asyncio.to_thread(core.create_namespace, {"metadata": {"name": namespace}})
    proxy = TcpProxy(int(sandbox.url.rsplit(":", 1)[1]))  # type: ignore[attr-defined]
    through_proxy = kube_configuration(sandbox.kubeconfig, port=proxy.port)  # type: ignore[attr-defined]
    source = SilentAfterRequest(proxy, namespace=namespace,
                                api_client_factory=lambda: client.ApiClient(through_proxy))
    # A quiet kind: with no event and no bookmark for 2 s every watch ends on its read
    # timeout and the hub relists, so an armed relist comes within seconds.
    hub = Hub(source, loop=asyncio.get_running_loop(), kinds=("Service",), watch_timeout=60,
              read_timeout=2.0)
    hub.start()
    try:
        assert await hub.wait_synced(30)
        source.armed.set()
        assert await asyncio.to_thread(source.silenced.wait, 30), "the hub never relisted"
        await asyncio.to_thread(core.create_namespaced_service, namespace, {
            "metadata": {"name": "late"}, "spec": {"ports": [{"port": 80}]}})
        started = time.monotonic()
        while hub.cache.get("Service", "late") is None:
            # The stuck LIST used to hold the kind stale for its own 30 s read timeout.
            assert time.monotonic() - started < 15, "a Service created after the stall never showed"
            await asyncio.sleep(0.1)
        print(f"Service created during a silent relist shown after {time.monotonic() - started:.2f} s")
    finally:
        hub.stop()
        proxy.close()
        await asyncio.to_thread(core.delete_namespace, namespace)
