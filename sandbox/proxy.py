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

The proxy runs in its own process (``python -m sandbox.proxy``) on uvloop, with
protocol-level transports and pause/resume flow control, so it gets a core of its own.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import itertools
import json
import logging
import os
import random
import signal
import socket
import struct
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

log = logging.getLogger("sandbox.proxy")

MODES = ("random", "round-robin", "least-conn")
SERVICE_NAME_LABEL = "kubernetes.io/service-name"
TABLE_FILE = statedir.PROXY_CONNECTIONS
LINGER_RST = struct.pack("ii", 1, 0)
PENDING_LIMIT = 256 * 1024
PROXY_NICE = -10
IP_BIND_ADDRESS_NO_PORT = getattr(socket, "IP_BIND_ADDRESS_NO_PORT", 24)
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


_ids = itertools.count(1)


class Upstream(asyncio.Protocol):
    """The proxy's connection to the pod; feeds bytes back to the client."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.conn.bytes_out += len(data)
        self.conn.client.write(data)

    def eof_received(self) -> bool:
        """The pod finished sending: pass the half-close on; close both once both sides are done."""
        self.conn.upstream_eof = True
        if self.conn.client_eof or not self.conn.client.can_write_eof():
            return False
        self.conn.client.write_eof()
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        self.conn.close()

    def pause_writing(self) -> None:
        self.conn.client.pause_reading()

    def resume_writing(self) -> None:
        self.conn.client.resume_reading()


class Connection(asyncio.Protocol):
    """A client connection accepted on a Service listener."""

    def __init__(self, proxy: Proxy, listener: Listener) -> None:
        self.proxy = proxy
        self.listener = listener
        self.id = next(_ids)
        self.client: asyncio.Transport = None  # type: ignore[assignment]
        self.upstream: asyncio.Transport | None = None
        self.endpoint: Endpoint | None = None
        self.pending: list[bytes] = []
        self.pending_bytes = 0
        self.client_eof = False
        self.upstream_eof = False
        self.bytes_in = 0
        self.bytes_out = 0
        self.opened = time.time()
        self.peer = ""
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.client = transport  # type: ignore[assignment]
        peer = transport.get_extra_info("peername") or ("?", 0)
        self.peer = f"{peer[0]}:{peer[1]}"
        sp = self.proxy.service_ports.get(self.listener.service_key)
        ep = sp.pick(peer[0]) if sp else None
        if ep is None:
            self._reset()
            return
        self.endpoint = ep
        ep.active += 1
        self.proxy.connections[self.id] = self
        self.proxy.table_dirty = True
        asyncio.get_running_loop().create_task(self._connect(ep))

    async def _connect(self, ep: Endpoint) -> None:
        """Connect to the endpoint, then let the client's bytes flow."""
        loop = asyncio.get_running_loop()
        try:
            try:
                transport, _ = await loop.create_connection(lambda: Upstream(self), ep.ip, ep.port)
            except OSError as exc:
                if exc.errno != errno.EADDRNOTAVAIL:
                    raise
                transport = await self._connect_from_spare_source(ep)
        except OSError as exc:
            self.proxy.note_failure(ep, exc)
            self._reset()
            return
        if self.closed:
            transport.close()
            return
        self.upstream = transport
        if self.pending:
            transport.writelines(self.pending)
            self.pending.clear()
            if self.pending_bytes > PENDING_LIMIT:
                self.client.resume_reading()
        if self.client_eof and transport.can_write_eof():
            transport.write_eof()

    async def _connect_from_spare_source(self, ep: Endpoint) -> asyncio.Transport:
        """Connect from another loopback source address.

        Every connection to a pod leaves a 4-tuple in TIME-WAIT for a minute on loopback, so
        thousands of new connections per second exhaust the ephemeral ports between 127.0.0.1
        and one pod; a source address of its own gives a fresh port range (the port is
        picked at connect time, IP_BIND_ADDRESS_NO_PORT)."""
        loop = asyncio.get_running_loop()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, 1)
            sock.bind((f"127.253.{random.randint(0, 255)}.{random.randint(1, 254)}", 0))
            sock.setblocking(False)
            await loop.sock_connect(sock, (ep.ip, ep.port))
            transport, _ = await loop.create_connection(lambda: Upstream(self), sock=sock)
        except BaseException:
            sock.close()
            raise
        return transport

    def _reset(self) -> None:
        """Abort the client connection with a RST (like a REJECT)."""
        sock = self.client.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER_RST)
        self.client.abort()
        self.close()

    def data_received(self, data: bytes) -> None:
        self.bytes_in += len(data)
        if self.upstream is not None:
            self.upstream.write(data)
        else:
            self.pending.append(data)
            self.pending_bytes += len(data)
            if self.pending_bytes > PENDING_LIMIT:
                self.client.pause_reading()

    def eof_received(self) -> bool:
        """The client finished sending: pass the half-close on; close both once both sides are done."""
        self.client_eof = True
        if self.upstream_eof:
            return False
        if self.upstream is not None and self.upstream.can_write_eof():
            self.upstream.write_eof()
        return True

    def pause_writing(self) -> None:
        if self.upstream is not None:
            self.upstream.pause_reading()

    def resume_writing(self) -> None:
        if self.upstream is not None:
            self.upstream.resume_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        self.close()

    def close(self) -> None:
        """Tear down both sides once."""
        if self.closed:
            return
        self.closed = True
        if self.endpoint is not None:
            self.endpoint.active -= 1
        if self.proxy.connections.pop(self.id, None) is not None:
            self.proxy.table_dirty = True
        self.client.close()
        if self.upstream is not None:
            self.upstream.close()


@dataclass
class Listener:
    """One listening socket of a service port."""

    service_key: str
    host: str
    port: int
    server: asyncio.AbstractServer | None = None
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
        self.connections: dict[int, Connection] = {}
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
                if listener.server is not None:
                    listener.server.close()
                del self.listeners[addr]
        for addr, key in wanted.items():
            bound = self.listeners.get(addr)
            if bound is None:
                bound = self.listeners[addr] = Listener(key, addr[0], addr[1])
            if bound.server is None:
                await self._listen(bound)

    async def _listen(self, listener: Listener) -> None:
        loop = asyncio.get_running_loop()
        try:
            listener.server = await loop.create_server(
                lambda: Connection(self, listener),
                listener.host,
                listener.port,
                reuse_address=True,
                backlog=1024,
            )
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
                    "client": c.peer,
                    "service": c.listener.service_key,
                    "listener": f"{c.listener.host}:{c.listener.port}",
                    "endpoint": f"{c.endpoint.ip}:{c.endpoint.port}" if c.endpoint else None,
                    "pod": c.endpoint.pod if c.endpoint else None,
                    "opened": round(c.opened, 3),
                    "bytesIn": c.bytes_in,
                    "bytesOut": c.bytes_out,
                }
                for c in list(self.connections.values())
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
        for listener in self.listeners.values():
            if listener.server is not None:
                listener.server.close()
        for conn in list(self.connections.values()):
            conn.close()


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
