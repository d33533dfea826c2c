"""Where the traffic lab may send traffic: Services of the watched namespace, nothing typed.

The page offers a select of target ids; a URL never comes from the browser. An id is resolved
on the server, at start, in this order:

1. ``LBDEMO_TRAFFIC_URL`` — when the operator sets it, it is the only target (id ``operator``),
   e.g. an ingress in front of the Service when the dashboard runs outside the cluster network;
2. the Service's ClusterIP and port (``<service>:<port>`` ids) — reachable from a dashboard
   running in the cluster, and from the host in the sandbox, whose ClusterIPs are loopback
   addresses;
3. ``127.0.0.1:<nodePort>`` for NodePort/LoadBalancer Services when the ClusterIP does not
   accept a TCP connection (a dashboard on the node itself, the sandbox without ClusterIPs).

Services come from the watch hub's cache (no API call); the only I/O is the TCP probe of a
candidate address, done with asyncio on the caller's loop with a timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from dashboard import objects
from dashboard.traffic.engine import SpecError, Target

OPERATOR_ID = "operator"


class TargetError(SpecError):
    """The chosen target does not exist or cannot be reached from the dashboard."""


@dataclass(frozen=True)
class TargetOption:
    """One choice in the page's target select."""

    id: str
    label: str
    service: str | None
    port: int | None


@dataclass(frozen=True)
class ResolvedTarget:
    """A chosen target with the address traffic goes to and the Service it stands for."""

    option: TargetOption
    target: Target
    via: str


def _tcp_ports(service: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in objects.dicts(objects.spec(service).get("ports"))
            if (objects.text(p.get("protocol")) or "TCP") == "TCP" and objects.count(p.get("port"))]


def target_options(services: Iterable[dict[str, Any]]) -> list[TargetOption]:
    """The targets the page may offer, in display order, from the cached Services."""
    if settings.LBDEMO_TRAFFIC_URL:
        return [TargetOption(id=OPERATOR_ID, label=f"{settings.LBDEMO_TRAFFIC_URL} (operator setting)",
                             service=settings.LBDEMO_SERVICE or None, port=None)]
    preferred = settings.LBDEMO_SERVICE
    options = []
    for service in sorted(services, key=lambda s: (objects.name(s) != preferred, objects.name(s))):
        if not objects.string_map(objects.spec(service).get("selector")):
            continue
        name = objects.name(service)
        for port in _tcp_ports(service):
            number, port_name = objects.count(port.get("port")), objects.text(port.get("name"))
            label = f"{name} :{number}" + (f" ({port_name})" if port_name else "")
            options.append(TargetOption(id=f"{name}:{number}", label=label, service=name, port=number))
    return options


async def resolve_target(target_id: str, services: Iterable[dict[str, Any]], *, namespace: str | None = None,
                         probe_timeout: float = 1.0) -> ResolvedTarget:
    """Turn a target id from the form into an address, or raise TargetError saying why not."""
    namespace = namespace or settings.LBDEMO_NAMESPACE
    if settings.LBDEMO_TRAFFIC_URL:
        if target_id != OPERATOR_ID:
            raise TargetError("only the operator's configured target may be used")
        return ResolvedTarget(option=target_options([])[0], via="LBDEMO_TRAFFIC_URL",
                              target=Target.from_url(settings.LBDEMO_TRAFFIC_URL))
    name, sep, port_text = target_id.rpartition(":")
    port_number = objects.whole_number(port_text)
    if not sep or not name or port_number is None or not 0 < port_number < 65536:
        raise TargetError("choose a target service from the list")
    service = next((s for s in services if objects.name(s) == name), None)
    if service is None:
        raise TargetError(f"service {name!r} does not exist in namespace {namespace!r}")
    port = next((p for p in _tcp_ports(service) if objects.count(p.get("port")) == port_number), None)
    if port is None:
        raise TargetError(f"service {name!r} has no port {port_text}")
    option = TargetOption(id=target_id, label=f"{name} :{port_number}", service=name, port=port_number)
    candidates = []
    cluster_ip = objects.text(objects.spec(service).get("clusterIP"))
    if cluster_ip and cluster_ip != "None":
        candidates.append((cluster_ip, port_number, "ClusterIP"))
    node_port = objects.count(port.get("nodePort"))
    if node_port:
        candidates.append(("127.0.0.1", node_port, "NodePort"))
    for host, number, via in candidates:
        if await reachable(host, number, timeout=probe_timeout):
            return ResolvedTarget(option=option, target=Target(host=host, port=number, path="/",
                                                               host_header=f"{name}.{namespace}"), via=via)
    tried = ", ".join(f"{h}:{p}" for h, p, _ in candidates) or "no address"
    raise TargetError(f"service {name!r} is not reachable from the dashboard (tried {tried}); "
                      "set LBDEMO_TRAFFIC_URL to an address that reaches it")


async def reachable(host: str, port: int, *, timeout: float) -> bool:
    """True if a TCP connection to host:port succeeds within ``timeout`` (then closed at once)."""
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    except (OSError, TimeoutError):
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True
