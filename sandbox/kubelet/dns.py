"""The sandbox's cluster DNS (CoreDNS's ``kubernetes`` plugin, reduced to A records of Services).

One UDP server per sandbox, on port 53 of the first node's address (``127.<B>.0.1``), answers
``<service>.<namespace>.svc.cluster.local`` (and ``<service>.<namespace>.svc``, as CoreDNS does
with the search path the pods' resolv.conf carries) with the Service's ClusterIP. A headless
Service (``clusterIP: None``) answers with the IPs of the ready pods it selects (all of them with
``publishNotReadyAddresses``), and ``<hostname>.<service>.<namespace>.svc`` with the IP of the pod
whose ``spec.hostname``/``spec.subdomain`` say so — a StatefulSet's stable ``web-0.web`` names.
Every other name is NXDOMAIN (the sandbox reaches no outside network). Pods with ``dnsPolicy:
ClusterFirst`` get it as their nameserver, so ``nslookup backend-service`` works in busybox as
on a real cluster; glibc programs also find the names in the pod's /etc/hosts.

Port 53 needs root: a sandbox running as an ordinary user has no cluster DNS, and its pods use
the machine's resolver (the /etc/hosts names still work).
"""

from __future__ import annotations

import asyncio
import logging
import struct
from collections.abc import Callable, Iterable
from typing import Any

log = logging.getLogger(__name__)

Obj = dict[str, Any]
DNS_PORT = 53
CLUSTER_DOMAIN = "cluster.local"
TTL = 5
TYPE_A, TYPE_AAAA, CLASS_IN = 1, 28, 1
NOERROR, FORMERR, NXDOMAIN = 0, 1, 3


def _parse_name(packet: bytes, offset: int) -> tuple[str, int]:
    labels: list[str] = []
    while True:
        length = packet[offset]
        offset += 1
        if length == 0:
            return ".".join(labels), offset
        if length & 0xC0:
            raise ValueError("compressed name in a question")
        labels.append(packet[offset : offset + length].decode("ascii", errors="replace"))
        offset += length


def _ready(pod: Obj) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (pod.get("status") or {}).get("conditions") or [])


def lookup(name: str, services: Iterable[Obj], pods: Iterable[Obj] = ()) -> list[str]:
    """The IPs ``name`` stands for (``[host.]svc.ns.svc[.cluster.local]``), empty when none."""
    name = name.lower().rstrip(".")
    suffix = f".svc.{CLUSTER_DOMAIN}"
    if name.endswith(suffix):
        name = name[: -len(suffix)]
    elif name.endswith(".svc"):
        name = name[: -len(".svc")]
    else:
        return []
    parts = name.split(".")
    if len(parts) not in (2, 3):
        return []
    host, svc_name, namespace = parts if len(parts) == 3 else (None, *parts)
    service = next((s for s in services if (s.get("metadata") or {}).get("name") == svc_name
                    and (s.get("metadata") or {}).get("namespace") == namespace), None)
    if service is None:
        return []
    spec = service.get("spec") or {}
    ip = spec.get("clusterIP")
    if ip and ip != "None":
        return [ip] if host is None else []
    selector = spec.get("selector") or {}
    if not selector:
        return []
    found = []
    for pod in pods:
        meta, pspec = pod.get("metadata") or {}, pod.get("spec") or {}
        pod_ip = (pod.get("status") or {}).get("podIP")
        labels = meta.get("labels") or {}
        if meta.get("namespace") != namespace or not pod_ip or meta.get("deletionTimestamp") or \
                any(labels.get(k) != v for k, v in selector.items()):
            continue
        if not (_ready(pod) or spec.get("publishNotReadyAddresses")):
            continue
        if host is None or (pspec.get("hostname") == host and pspec.get("subdomain") == svc_name):
            found.append(str(pod_ip))
    return sorted(found)


def answer(packet: bytes, services: Iterable[Obj], pods: Iterable[Obj] = ()) -> bytes | None:
    """The response to one query packet (None for what is not a query)."""
    if len(packet) < 12:
        return None
    ident, flags, qdcount = struct.unpack("!HHH", packet[:6])
    if flags & 0x8000 or qdcount != 1:
        return None
    try:
        name, end = _parse_name(packet, 12)
        qtype, qclass = struct.unpack("!HH", packet[end : end + 4])
    except (ValueError, IndexError, struct.error):
        return struct.pack("!HHHHHH", ident, 0x8180 | FORMERR, 0, 0, 0, 0)
    question = packet[12 : end + 4]
    ips = lookup(name, services, pods)
    rd = flags & 0x0100
    if not ips:
        return struct.pack("!HHHHHH", ident, 0x8400 | 0x0080 | rd | NXDOMAIN, 1, 0, 0, 0) + question
    answers = b""
    if qtype == TYPE_A and qclass == CLASS_IN:
        answers = b"".join(struct.pack("!HHHIH", 0xC00C, TYPE_A, CLASS_IN, TTL, 4) +
                           bytes(int(o) for o in ip.split(".")) for ip in ips)
    count = len(ips) if answers else 0
    return (
        struct.pack("!HHHHHH", ident, 0x8400 | 0x0080 | rd | NOERROR, 1, count, 0, 0) + question + answers
    )


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, services: Callable[[], Iterable[Obj]], pods: Callable[[], Iterable[Obj]]) -> None:
        self.services = services
        self.pods = pods
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        reply = answer(data, self.services(), self.pods())
        if reply is not None and self.transport is not None:
            self.transport.sendto(reply, addr)


async def serve(host: str, services: Callable[[], Iterable[Obj]],
                pods: Callable[[], Iterable[Obj]] = tuple) -> asyncio.DatagramTransport | None:
    """Start the DNS server on ``host``:53; None (logged) when it cannot listen."""
    loop = asyncio.get_running_loop()
    try:
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _Protocol(services, pods), local_addr=(host, DNS_PORT)
        )
    except OSError as exc:
        log.warning("no cluster DNS on %s:%d (%s); pods use the machine's resolver", host, DNS_PORT, exc)
        return None
    log.info("cluster DNS listening on %s:%d", host, DNS_PORT)
    return transport
