"""The sandbox's ingress controller: ingress-nginx's job, in its own process.

``python -m sandbox.ingress`` (started by `sandbox/cluster.py` next to the Service proxy) is an
API client like every other component. It

- makes sure its IngressClass exists: ``nginx`` (the name minikube's ingress addon uses, so
  the same `k8s/ingress.yaml` works on both), ``spec.controller: lb-demo.dev/sandbox-ingress``,
  marked as the default class;
- watches IngressClasses, Ingresses, Services, EndpointSlices and Nodes, and on every change
  (coalesced, so within a second) rebuilds the route table (`sandbox/ingress_rules.py`) and
  the ready endpoints of every backend, and hands both to the data plane
  (`sandbox/ingress_proxy.py`), which balances each request round-robin over the pods;
- listens on ``127.0.0.1:PORT`` (when no other sandbox on the machine holds it) and on every
  node's InternalIP at the same port (``--port``, default 8080: like a controller running on
  each node with a hostPort);
- publishes where it listens in each served Ingress's ``status.loadBalancer.ingress``: the ip
  (127.0.0.1, or the first node's address when 127.0.0.1:PORT belongs to another sandbox) and,
  when the port is not 80, ``ports: [{port, protocol: TCP}]``; so ``kubectl get ingress`` shows
  the ADDRESS and ``curl http://ADDRESS:PORT/`` reaches the pods. An Ingress it stops serving
  (another class) has its status cleared;
- records a Normal ``Sync`` Event "Scheduled for sync" on an Ingress when its spec changes, as
  ingress-nginx does.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
from pathlib import Path
from typing import Any

from sandbox.client import (
    ENDPOINTSLICES,
    NODES,
    SERVICES,
    ApiClient,
    ApiError,
    Informer,
    InformerFactory,
    Obj,
    Resource,
    TaskGroup,
    key_of,
    user_agent_of,
)
from sandbox.ingress_proxy import IngressProxy
from sandbox.ingress_rules import (
    DEFAULT_CLASS_ANNOTATION,
    SERVICE_NAME_LABEL,
    Backend,
    backend_endpoints,
    build_routes,
    is_served,
    served_classes,
)
from sandbox.kubelet.simulated import is_simulated_node
from sandbox.procutil import run_main
from sandbox.record import NORMAL, EventRecorder

log = logging.getLogger("sandbox.ingress")

INGRESSES = Resource("networking.k8s.io/v1", "ingresses", "Ingress")
INGRESSCLASSES = Resource("networking.k8s.io/v1", "ingressclasses", "IngressClass", namespaced=False)
CONTROLLER = "lb-demo.dev/sandbox-ingress"
CLASS_NAME = "nginx"
DEFAULT_PORT = 8080
SYNC_RETRY = 5.0
EVENT_FLUSH_WAIT = 2.0


def ingress_class() -> Obj:
    """The IngressClass this controller creates when it is missing."""
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "IngressClass",
        "metadata": {
            "name": CLASS_NAME,
            "labels": {"app.kubernetes.io/component": "controller",
                       "app.kubernetes.io/name": "lb-demo-ingress"},
            "annotations": {DEFAULT_CLASS_ANNOTATION: "true"},
        },
        "spec": {"controller": CONTROLLER},
    }


def load_balancer_status(ip: str, port: int) -> list[Obj]:
    """``status.loadBalancer.ingress`` for an address (``ports`` only when the port is not 80)."""
    entry: dict[str, Any] = {"ip": ip}
    if port != 80:
        entry["ports"] = [{"port": port, "protocol": "TCP"}]
    return [entry]


class IngressController:
    """Keeps the data plane, the listeners and the Ingress statuses in line with the caches."""

    def __init__(self, client: ApiClient, *, port: int) -> None:
        self.client = client
        self.port = port
        self.proxy = IngressProxy()
        self.informers = InformerFactory(client)
        self.ingress_informer: Informer = self.informers.informer(INGRESSES)
        self.class_informer: Informer = self.informers.informer(INGRESSCLASSES)
        self.svc_informer: Informer = self.informers.informer(SERVICES)
        self.slice_informer: Informer = self.informers.informer(ENDPOINTSLICES)
        self.node_informer: Informer = self.informers.informer(NODES)
        self.recorder = EventRecorder(client, component="nginx-ingress-controller")
        self.servers: dict[str, asyncio.AbstractServer] = {}
        self._warned: set[str] = set()
        self._sync_wanted = asyncio.Event()
        for informer in (self.ingress_informer, self.class_informer, self.svc_informer, self.slice_informer,
                         self.node_informer):
            informer.add_handler(self._changed)
        self.ingress_informer.add_handler(self._ingress_changed)

    def _changed(self, kind: str, old: Obj | None, new: Obj | None) -> None:
        self._sync_wanted.set()

    def _ingress_changed(self, kind: str, old: Obj | None, new: Obj | None) -> None:
        """A Sync Event when an Ingress we serve appears or its spec changes."""
        if new is None or (old is not None and old.get("spec") == new.get("spec")):
            return
        classes, default = served_classes(list(self.class_informer.items()), CONTROLLER)
        if is_served(new, classes, default):
            self.recorder.event({**new, "kind": "Ingress", "apiVersion": "networking.k8s.io/v1"}, NORMAL,
                                "Sync", "Scheduled for sync")

    def node_addresses(self) -> list[str]:
        """The nodes' loopback InternalIPs."""
        return sorted(
            a["address"]
            for node in self.node_informer.items()
            if not is_simulated_node(node)  # nothing runs on a simulated node
            for a in (node.get("status") or {}).get("addresses") or []
            if a.get("type") == "InternalIP" and str(a.get("address", "")).startswith("127.")
        )

    def published_ip(self) -> str | None:
        """The address written into Ingress statuses."""
        if "127.0.0.1" in self.servers:
            return "127.0.0.1"
        nodes = [a for a in self.node_addresses() if a in self.servers]
        return nodes[0] if nodes else None

    async def sync(self) -> None:
        """Rebuild routes and endpoints, open listeners, write statuses."""
        ingresses = list(self.ingress_informer.items())
        routes = build_routes(ingresses, list(self.class_informer.items()), controller=CONTROLLER)
        services = {key_of(s): s for s in self.svc_informer.items()}
        slices: dict[str, list[Obj]] = {}
        for sl in self.slice_informer.items():
            name = (sl["metadata"].get("labels") or {}).get(SERVICE_NAME_LABEL)
            if name:
                slices.setdefault(f"{sl['metadata']['namespace']}/{name}", []).append(sl)
        endpoints: dict[Backend, list[tuple[str, int, str]]] = {
            b: backend_endpoints(b, services, slices.get(f"{b.namespace}/{b.service}", []))
            for b in routes.backends()
        }
        self.proxy.update(routes, endpoints)
        await self.listen(["127.0.0.1", *self.node_addresses()])
        await self.write_statuses(ingresses, set(routes.ingresses))

    async def listen(self, addresses: list[str]) -> None:
        """Listen on every address (retried at the next sync when it fails)."""
        for address in addresses:
            if address in self.servers:
                continue
            try:
                self.servers[address] = await self.proxy.listen(address, self.port)
                log.info("listening on %s:%d", address, self.port)
            except OSError as exc:
                if address not in self._warned:
                    self._warned.add(address)
                    log.warning("cannot listen on %s:%d: %s (retrying every %.0f s)", address, self.port,
                                exc.strerror or exc, SYNC_RETRY)

    async def write_statuses(self, ingresses: list[Obj], served: set[str]) -> None:
        """Publish the controller's address on served Ingresses; clear it from ones no longer served."""
        ip = self.published_ip()
        wanted = load_balancer_status(ip, self.port) if ip else []
        for ing in ingresses:
            key = key_of(ing)
            current = ((ing.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
            target = wanted if key in served else []
            if key not in served and not current:
                continue
            if current == target:
                continue
            meta = ing["metadata"]
            try:
                body = {"status": {"loadBalancer": {"ingress": target}}}
                await self.client.patch(INGRESSES, meta["name"], body, namespace=meta["namespace"],
                                        subresource="status")
            except ApiError as exc:
                if not exc.not_found:
                    log.warning("cannot update the status of Ingress %s: %s", key, exc)

    async def ensure_class(self) -> None:
        """Create the controller's IngressClass when it does not exist (retry while the API starts)."""
        for attempt in range(100):
            try:
                await self.client.create(INGRESSCLASSES, ingress_class())
                log.info("created IngressClass %s (controller %s)", CLASS_NAME, CONTROLLER)
                return
            except ApiError as exc:
                if exc.status == 409:
                    return
                log.info("cannot create IngressClass %s yet: %s", CLASS_NAME, exc)
            except (OSError, TimeoutError) as exc:
                log.info("waiting for the API server: %s", exc)
            await asyncio.sleep(min(0.2 * (attempt + 1), 2.0))

    async def run_sync(self) -> None:
        """Resync on every cache change (coalesced), and every 5 s to retry failed listeners."""
        await self.informers.wait_synced()
        while True:
            self._sync_wanted.clear()
            try:
                await self.sync()
            except Exception:
                log.exception("ingress sync failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._sync_wanted.wait(), timeout=SYNC_RETRY)

    async def close(self) -> None:
        """Stop listening and close every connection."""
        for server in self.servers.values():
            server.close()
        self.proxy.close()


async def serve(*, api_url: str, token: str, state_dir: Path, port: int) -> None:
    """Run the ingress controller until SIGTERM/SIGINT."""
    ca_file = state_dir / "ca.crt"
    client = ApiClient(base_url=api_url, token=token, ca_file=ca_file if ca_file.exists() else None,
                       user_agent=user_agent_of("lb-demo-ingress-controller"))
    controller = IngressController(client, port=port)
    tasks = TaskGroup()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await controller.ensure_class()
    controller.informers.start(tasks)
    tasks.spawn(controller.run_sync(), name="ingress-sync")
    tasks.spawn(controller.proxy.run_sweeper(), name="ingress-sweeper")
    await stop.wait()
    await controller.close()
    with contextlib.suppress(TimeoutError):
        await controller.recorder.flush(timeout=EVENT_FLUSH_WAIT)
    await tasks.cancel_all()
    await client.close()


def main() -> None:
    """``python -m sandbox.ingress --api-url URL --state-dir D [--port N]`` (token in $SANDBOX_API_TOKEN)."""
    parser = argparse.ArgumentParser(prog="python -m sandbox.ingress", description=__doc__.splitlines()[0])
    parser.add_argument("--api-url", required=True)
    parser.add_argument("--state-dir", type=Path, required=True)
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="listening port (default 8080)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s ingress %(levelname)s %(message)s")
    token = os.environ.get("SANDBOX_API_TOKEN", "")
    with contextlib.suppress(OSError):
        os.setpriority(os.PRIO_PROCESS, 0, -10)
    run_main(serve(api_url=args.api_url, token=token, state_dir=args.state_dir, port=args.port))


if __name__ == "__main__":
    main()
