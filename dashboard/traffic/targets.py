"""Where the traffic lab may send traffic: Services of the watched namespace, nothing typed.

The page offers a select of target ids; a URL never comes from the browser. An id is resolved
on the server, at start, in this order:

1. ``LBDEMO_TRAFFIC_URL`` — when the operator sets it, it is the only target (id ``operator``),
   e.g. an ingress in front of the Service when the dashboard runs outside the cluster network;
2. the Service's ClusterIP and port (``<service>:<port>`` ids) — reachable from a dashboard
   running in the cluster, and from the host in the sandbox, whose ClusterIPs are loopback
   addresses;
3. ``127.0.0.1:<nodePort>`` for NodePort/LoadBalancer Services when the ClusterIP does not
   accept a TCP connection (a dashboard on the node itself, the sandbox without ClusterIPs);
4. an Ingress of the namespace (``ingress/<name>`` ids): the address its controller published in
   ``status.loadBalancer.ingress`` (ip or hostname, and the port when it is not 80), with the
   first rule's host as the Host header — an L7 proxy that balances each request, beside the
   Service that balances each connection. Its Service (for the run's marks) is the backend of
   its first path.

Services and Ingresses come from the watch hub's cache (no API call); the only I/O is the TCP probe of a
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


def target_options(services: Iterable[dict[str, Any]],
                   ingresses: Iterable[dict[str, Any]] = ()) -> list[TargetOption]:
    """The targets the page may offer, in display order, from the cached Services and Ingresses."""
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
    for ingress in sorted(ingresses, key=objects.name):
        backend, address = _ingress_backend(ingress), _ingress_address(ingress)
        label = f"ingress {objects.name(ingress)}" + (f" → {backend[0]}" if backend else "")
        label += f" ({address[0]}:{address[1]})" if address else " (no address yet)"
        options.append(TargetOption(id=f"ingress/{objects.name(ingress)}", label=label,
                                    service=backend[0] if backend else None, port=None))
    return options


def _ingress_address(ingress: dict[str, Any]) -> tuple[str, int] | None:
    """Where the Ingress's controller listens, from its status (ip or hostname; port 80 unless given)."""
    load_balancer = objects.mapping(objects.status(ingress).get("loadBalancer"))
    for entry in objects.dicts(load_balancer.get("ingress")):
        host = objects.text(entry.get("ip")) or objects.text(entry.get("hostname"))
        if host:
            ports = [objects.count(p.get("port")) for p in objects.dicts(entry.get("ports"))
                     if objects.count(p.get("port"))]
            return host, ports[0] if ports else 80
    return None


def _backend_service(backend: object) -> str:
    """The Service name of an IngressBackend."""
    return objects.text(objects.mapping(objects.mapping(backend).get("service")).get("name"))


def _ingress_backend(ingress: dict[str, Any]) -> tuple[str, str] | None:
    """(Service name, Host header) of the Ingress's first path, else of its default backend."""
    spec = objects.spec(ingress)
    for rule in objects.dicts(spec.get("rules")):
        for path in objects.dicts(objects.mapping(rule.get("http")).get("paths")):
            service = _backend_service(path.get("backend"))
            if service:
                host = objects.text(rule.get("host"))
                return service, "" if host.startswith("*") else host
    default = _backend_service(spec.get("defaultBackend"))
    return (default, "") if default else None


async def _resolve_ingress(name: str, ingresses: Iterable[dict[str, Any]], namespace: str,
                           probe_timeout: float) -> ResolvedTarget:
    """An Ingress target: its published address and its first rule's host."""
    ingress = next((i for i in ingresses if objects.name(i) == name), None)
    if ingress is None:
        raise TargetError(f"ingress {name!r} does not exist in namespace {namespace!r}")
    address = _ingress_address(ingress)
    if address is None:
        raise TargetError(f"ingress {name!r} has no address yet: is an ingress controller running "
                          "(minikube addons enable ingress)?")
    service, host_header = _ingress_backend(ingress) or (None, "")
    if not await reachable(address[0], address[1], timeout=probe_timeout):
        raise TargetError(f"ingress {name!r} is not reachable from the dashboard at "
                          f"{address[0]}:{address[1]}")
    option = TargetOption(id=f"ingress/{name}", label=f"ingress {name}", service=service, port=None)
    return ResolvedTarget(option=option, via="Ingress",
                          target=Target(host=address[0], port=address[1], path="/", host_header=host_header))


async def resolve_target(target_id: str, services: Iterable[dict[str, Any]],
                         ingresses: Iterable[dict[str, Any]] = (), *, namespace: str | None = None,
                         probe_timeout: float = 1.0) -> ResolvedTarget:
    """Turn a target id from the form into an address, or raise TargetError saying why not."""
    namespace = namespace or settings.LBDEMO_NAMESPACE
    if settings.LBDEMO_TRAFFIC_URL:
        if target_id != OPERATOR_ID:
            raise TargetError("only the operator's configured target may be used")
        return ResolvedTarget(option=target_options([])[0], via="LBDEMO_TRAFFIC_URL",
                              target=Target.from_url(settings.LBDEMO_TRAFFIC_URL))
    if target_id.startswith("ingress/"):
        return await _resolve_ingress(target_id.removeprefix("ingress/"), ingresses, namespace, probe_timeout)
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
