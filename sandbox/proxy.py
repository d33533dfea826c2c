"""The Service proxy: kube-proxy's job, done with real TCP listeners on loopback addresses.

For every port of every Service it listens on ``<clusterIP>:<port>`` (the API server gives
ClusterIPs from 127.96.0.0/16, so they are real local addresses) and, for NodePort and
LoadBalancer Services, on ``<node InternalIP>:<nodePort>`` for every node and on
``127.0.0.1:<nodePort>`` (when no other sandbox on the machine holds that port). Each *new*
connection is sent to one ready endpoint from the Service's EndpointSlices, chosen like
kube-proxy does it:

- ``random`` (default; iptables mode picks a rule at random per connection),
- ``round-robin`` and ``least-conn`` (IPVS's rr and lc schedulers),
- ``sessionAffinity: ClientIP`` pins a client address to its endpoint for timeoutSeconds.

Bytes then flow both ways untouched, so every request on a keep-alive connection reaches
the same pod: Services balance connections, not requests. An established connection keeps
its pod after the endpoint leaves the slices (like conntrack entries), and when a Service
has no ready endpoint at all its listeners are closed, so clients get "connection refused"
(iptables' REJECT); a connection accepted in the instant the last endpoint left is reset.

The live connection table (client -> service -> pod) is written every second, when it
changed, to ``STATE_DIR/proxy-connections.json``:
``{"mode": ..., "updated": ..., "connections": [{"client": "127.0.0.1:50312", "service":
"default/backend-service:http", "listener": "127.96.0.10:80", "endpoint": "127.244.1.2:8080",
"pod": "backend-...", "opened": 1764020000.1, "bytesIn": 120, "bytesOut": 2048}, ...]}``.

A listener that cannot be bound (the address is taken by another program or another sandbox)
is retried every 5 s; besides the log line, the Service gets a Warning Event
``FailedToBindPort`` naming the address and the error (once per listener; the recorder counts
repeats), so ``kubectl describe service`` and ``kubectl get events`` show why it does not answer.

The proxy runs in its own process (``python -m sandbox.proxy``), so it gets a core of its own.
The control plane (informers, listener sync, the table, events) is asyncio on uvloop; the data
plane is ``sandbox.relay``: plain non-blocking sockets on one epoll drained from the loop's
thread (no asyncio transport per connection: they cost most of a short connection's CPU), with
bounded per-direction buffers, half-close and reset passed through.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import random
import signal
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path

from sandbox import statedir
from sandbox.client import (
    ENDPOINTSLICES,
    NODES,
    SERVICES,
    ApiClient,
    Informer,
    InformerFactory,
    Obj,
    TaskGroup,
    key_of,
    user_agent_of,
)
from sandbox.kubelet.simulated import is_simulated_node
from sandbox.procutil import run_main
from sandbox.record import WARNING, EventRecorder
from sandbox.relay import Poller, Relay, listening_socket, reset

log = logging.getLogger("sandbox.proxy")

MODES = ("random", "round-robin", "least-conn")
SERVICE_NAME_LABEL = "kubernetes.io/service-name"
TABLE_FILE = statedir.PROXY_CONNECTIONS
PROXY_NICE = -10
SYNC_RETRY = 5.0
EVENT_FLUSH_WAIT = 2.0


@dataclass
class Endpoint:
    """One ready backend of a service port."""

    ip: str
    port: int
    pod: str
    active: int = 0


@dataclass
class ServicePort:
    """A Service port's routing state: its endpoints and how to pick one."""

    name: str
    mode: str
    affinity_timeout: float | None = None
    endpoints: list[Endpoint] = field(default_factory=list)
    _rr: int = 0
    _affinity: dict[str, tuple[str, int, float]] = field(default_factory=dict)

    def pick(self, client_ip: str) -> Endpoint | None:
        """Choose the endpoint for a new connection from ``client_ip``."""
        eps = self.endpoints
        if not eps:
            return None
        now = time.monotonic()
        if self.affinity_timeout is not None:
            pinned = self._affinity.get(client_ip)
            if pinned and pinned[2] > now:
                for ep in eps:
                    if ep.ip == pinned[0] and ep.port == pinned[1]:
                        self._affinity[client_ip] = (ep.ip, ep.port, now + self.affinity_timeout)
                        return ep
        if self.mode == "round-robin":
            ep = eps[self._rr % len(eps)]
            self._rr += 1
        elif self.mode == "least-conn":
            low = min(e.active for e in eps)
            ep = random.choice([e for e in eps if e.active == low])
        else:
            ep = eps[random.randrange(len(eps))]
        if self.affinity_timeout is not None:
            self._affinity[client_ip] = (ep.ip, ep.port, now + self.affinity_timeout)
        return ep


class Connection(Relay):
    """A client connection accepted on a Service listener, relayed to the endpoint picked for it."""

    __slots__ = ("endpoint", "listener", "opened", "peer", "proxy")

    def __init__(self, proxy: Proxy, listener: Listener, sock: socket.socket, peer: tuple) -> None:
        super().__init__(proxy.poller, sock)
        self.proxy = proxy
        self.listener = listener
        self.endpoint: Endpoint | None = None
        self.peer = peer
        self.opened = time.time()

    def finished(self, exc: OSError | None) -> None:
        """Both sockets are closed: the endpoint has one connection less; a failed connect is logged."""
        if self.endpoint is not None:
            self.endpoint.active -= 1
            if not self.connected and exc is not None:
                self.proxy.note_failure(self.endpoint, exc)
        self.proxy.connections.discard(self)
        self.proxy.table_dirty = True


@dataclass
class Listener:
    """One listening socket of a service port."""

    service_key: str
    host: str
    port: int
    sock: socket.socket | None = None
    warned: bool = False


class Proxy:
    """Keeps listeners and endpoint tables in line with Services and EndpointSlices."""

    def __init__(self, client: ApiClient, *, state_dir: Path, mode: str) -> None:
        self.client = client
        self.mode = mode
        self.state_dir = Path(state_dir)
        informers = InformerFactory(client)
        self.informers = informers
        self.svc_informer: Informer = informers.informer(SERVICES)
        self.slice_informer: Informer = informers.informer(ENDPOINTSLICES)
        self.node_informer: Informer = informers.informer(NODES)
        self.recorder = EventRecorder(client, component="kube-proxy")
        self.service_ports: dict[str, ServicePort] = {}
        self.listeners: dict[tuple[str, int], Listener] = {}
        self.connections: set[Connection] = set()
        self.poller = Poller(thread=True)
        self.table_dirty = True
        self._failures = 0
        self._failure_logged = -10.0
        self._sync_wanted = asyncio.Event()
        self.svc_informer.add_handler(self._changed)
        self.slice_informer.add_handler(self._changed)
        self.node_informer.add_handler(self._changed)

    def note_failure(self, ep: Endpoint, exc: OSError) -> None:
        """Log (at most every 5 s) that connecting to an endpoint failed; the client got a reset."""
        now = time.monotonic()
        self._failures += 1
        if now - self._failure_logged >= 5.0:
            log.warning(
                "%d connection(s) reset: could not connect to %s:%d (%s)",
                self._failures,
                ep.ip,
                ep.port,
                exc.strerror or exc,
            )
            self._failures, self._failure_logged = 0, now

    def _changed(self, kind: str, old: Obj | None, new: Obj | None) -> None:
        self._sync_wanted.set()

    def desired(
        self,
    ) -> tuple[dict[str, tuple[ServicePort, float | None, list[Endpoint]]], dict[tuple[str, int], str]]:
        """From the caches: endpoints per service port, and which address:port serves which."""
        ports: dict[str, tuple[ServicePort, float | None, list[Endpoint]]] = {}
        binds: dict[tuple[str, int], str] = {}
        slices_by_svc: dict[str, list[Obj]] = {}
        for sl in self.slice_informer.items():
            name = (sl["metadata"].get("labels") or {}).get(SERVICE_NAME_LABEL)
            if name:
                slices_by_svc.setdefault(f"{sl['metadata']['namespace']}/{name}", []).append(sl)
        node_addresses = ["127.0.0.1"] + [
            a["address"]
            for node in self.node_informer.items()
            if not is_simulated_node(node)  # kube-proxy runs on real nodes only
            for a in (node.get("status") or {}).get("addresses") or []
            if a.get("type") == "InternalIP" and a.get("address", "").startswith("127.")
        ]
        for svc in self.svc_informer.items():
            spec = svc.get("spec") or {}
            if spec.get("type") == "ExternalName":
                continue
            skey = key_of(svc)
            affinity = None
            if spec.get("sessionAffinity") == "ClientIP":
                affinity = float(
                    ((spec.get("sessionAffinityConfig") or {}).get("clientIP") or {}).get("timeoutSeconds")
                    or 10800
                )
            for sp in spec.get("ports") or []:
                if (sp.get("protocol") or "TCP") != "TCP":
                    continue
                pname = sp.get("name") or ""
                key = f"{skey}:{pname}" if pname else f"{skey}:{sp['port']}"
                eps: list[Endpoint] = []
                seen = set()
                for sl in slices_by_svc.get(skey, []):
                    port = next(
                        (p.get("port") for p in sl.get("ports") or [] if (p.get("name") or "") == pname), None
                    )
                    if port is None:
                        continue
                    for ep in sl.get("endpoints") or []:
                        cond = ep.get("conditions") or {}
                        if cond.get("ready") is False:
                            continue
                        pod = (ep.get("targetRef") or {}).get("name", "")
                        for ip in ep.get("addresses") or []:
                            if (ip, port) not in seen:
                                seen.add((ip, port))
                                eps.append(Endpoint(ip, int(port), pod))
                ports[key] = (ServicePort(key, self.mode), affinity, eps)
                cluster_ip = spec.get("clusterIP")
                if cluster_ip and cluster_ip != "None":
                    binds[(cluster_ip, int(sp["port"]))] = key
                if spec.get("type") in ("NodePort", "LoadBalancer") and sp.get("nodePort"):
                    for address in node_addresses:
                        binds[(address, int(sp["nodePort"]))] = key
        return ports, binds

    async def sync(self) -> None:
        """Apply the caches: endpoint lists, then listeners (open with endpoints, closed without)."""
        ports, binds = self.desired()
        for key, (fresh, affinity, eps) in ports.items():
            current = self.service_ports.get(key)
            if current is None:
                current = self.service_ports[key] = fresh
            current.affinity_timeout = affinity
            old = {(e.ip, e.port): e for e in current.endpoints}
            current.endpoints = [old.get((e.ip, e.port), e) for e in eps]
        for key in list(self.service_ports):
            if key not in ports:
                del self.service_ports[key]
        wanted = {addr: key for addr, key in binds.items() if self.service_ports[key].endpoints}
        for addr, listener in list(self.listeners.items()):
            if wanted.get(addr) != listener.service_key:
                if listener.sock is not None:
                    self.poller.unlisten(listener.sock)
                del self.listeners[addr]
        for addr, key in wanted.items():
            bound = self.listeners.get(addr)
            if bound is None:
                bound = self.listeners[addr] = Listener(key, addr[0], addr[1])
            if bound.sock is None:
                self._listen(bound)

    def _listen(self, listener: Listener) -> None:
        try:
            listener.sock = listening_socket(listener.host, listener.port)
            self.poller.listen(listener.sock, lambda sock, peer: self._accepted(listener, sock, peer))
            log.info("listening on %s:%d for %s", listener.host, listener.port, listener.service_key)
        except OSError as exc:
            if not listener.warned:
                log.warning(
                    "cannot listen on %s:%d for %s: %s",
                    listener.host,
                    listener.port,
                    listener.service_key,
                    exc.strerror or exc,
                )
                listener.warned = True
                self._bind_failed(listener, exc)

    def _accepted(self, listener: Listener, sock: socket.socket, peer: tuple) -> None:
        """A new connection on ``listener``: relay it to an endpoint, or reset it when none is left."""
        sp = self.service_ports.get(listener.service_key)
        ep = sp.pick(peer[0]) if sp else None
        if ep is None:
            reset(sock)
            return
        conn = Connection(self, listener, sock, peer)
        conn.endpoint = ep
        ep.active += 1
        self.connections.add(conn)
        self.table_dirty = True
        conn.connect((ep.ip, ep.port))

    def _bind_failed(self, listener: Listener, exc: OSError) -> None:
        """A Warning Event on the Service: its address cannot be listened on (retried every 5 s)."""
        service_key, _, port_name = listener.service_key.partition(":")
        svc = self.svc_informer.get(service_key)
        if svc is None:
            return
        error = (exc.strerror or str(exc)).lower()
        self.recorder.event(
            {**svc, "kind": "Service", "apiVersion": "v1"},
            WARNING,
            "FailedToBindPort",
            f"cannot listen on {listener.host}:{listener.port} for port {port_name}: {error} "
            f"(another program or sandbox holds it?); retrying every {SYNC_RETRY:.0f}s",
        )

    async def run_sync(self) -> None:
        """Resync on every cache change (coalesced), and every 5 s to retry failed binds."""
        await self.informers.wait_synced()
        while True:
            self._sync_wanted.clear()
            try:
                await self.sync()
            except Exception:
                log.exception("proxy sync failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._sync_wanted.wait(), timeout=SYNC_RETRY)

    def table(self) -> Obj:
        """The live connection table."""
        return {
            "mode": self.mode,
            "updated": time.time(),
            "connections": [
                {
                    "client": f"{c.peer[0]}:{c.peer[1]}",
                    "service": c.listener.service_key,
                    "listener": f"{c.listener.host}:{c.listener.port}",
                    "endpoint": f"{c.endpoint.ip}:{c.endpoint.port}" if c.endpoint else None,
                    "pod": c.endpoint.pod if c.endpoint else None,
                    "opened": round(c.opened, 3),
                    "bytesIn": c.up.count,
                    "bytesOut": c.down.count,
                }
                for c in list(self.connections)
            ],
        }

    async def write_table(self) -> None:
        """Write the connection table once a second when it changed (byte counters excepted)."""
        path = self.state_dir / TABLE_FILE
        tmp = path.with_suffix(".tmp")
        while True:
            if self.table_dirty or (self.connections and int(time.time()) % 5 == 0):
                self.table_dirty = False
                with contextlib.suppress(OSError):
                    tmp.write_text(json.dumps(self.table()))
                    os.replace(tmp, path)
            await asyncio.sleep(1.0)

    async def close(self) -> None:
        """Close every listener and connection."""
        self.poller.stop()
        for listener in self.listeners.values():
            if listener.sock is not None:
                self.poller.unlisten(listener.sock)
                listener.sock = None
        for conn in list(self.connections):
            conn.close()
        self.poller.close()


async def serve(*, api_url: str, token: str, state_dir: Path, mode: str) -> None:
    """Run the proxy until SIGTERM/SIGINT."""
    ca_file = statedir.ca_cert(state_dir)
    client = ApiClient(base_url=api_url, token=token, ca_file=ca_file if ca_file.exists() else None,
                       user_agent=user_agent_of("kube-proxy"))
    proxy = Proxy(client, state_dir=state_dir, mode=mode)
    tasks = TaskGroup()
    proxy.informers.start(tasks)
    tasks.spawn(proxy.run_sync(), name="proxy-sync")
    tasks.spawn(proxy.write_table(), name="proxy-table")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await proxy.close()
    with contextlib.suppress(TimeoutError):
        await proxy.recorder.flush(timeout=EVENT_FLUSH_WAIT)
    await tasks.cancel_all()
    await client.close()


def main() -> None:
    """``python -m sandbox.proxy --api-url URL --state-dir D [--mode M]`` (token in $SANDBOX_API_TOKEN)."""
    parser = argparse.ArgumentParser(prog="python -m sandbox.proxy", description=__doc__.splitlines()[0])
    parser.add_argument("--api-url", required=True)
    parser.add_argument("--state-dir", type=Path, required=True)
    parser.add_argument("--mode", choices=MODES, default="random")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s proxy %(levelname)s %(message)s")
    token = os.environ.get("SANDBOX_API_TOKEN", "")
    # kube-proxy's forwarding happens in the kernel, never queued behind busy processes; the
    # nearest a user-space proxy gets is a higher scheduling priority (only root may raise it).
    with contextlib.suppress(OSError):
        os.setpriority(os.PRIO_PROCESS, 0, PROXY_NICE)
    run_main(serve(api_url=args.api_url, token=token, state_dir=args.state_dir, mode=args.mode))


if __name__ == "__main__":
    main()
