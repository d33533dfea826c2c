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

All calls block (official client, TCP probes) and are run in worker threads by the callers.
"""

from __future__ import annotations

import logging
import socket
from dataclasses import dataclass

from django.conf import settings
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from dashboard import kube
from dashboard.traffic.engine import SpecError, Target

log = logging.getLogger(__name__)

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
    selector: dict[str, str]


def target_options(*, namespace: str | None = None) -> list[TargetOption]:
    """The targets the page may offer, in display order."""
    if settings.LBDEMO_TRAFFIC_URL:
        return [TargetOption(id=OPERATOR_ID, label=f"{settings.LBDEMO_TRAFFIC_URL} (operator setting)",
                             service=settings.LBDEMO_SERVICE or None, port=None)]
    namespace = namespace or settings.LBDEMO_NAMESPACE
    with kube.api_client() as api:
        services = client.CoreV1Api(api).list_namespaced_service(namespace).items
    options = []
    preferred = settings.LBDEMO_SERVICE
    for service in sorted(services, key=lambda s: (s.metadata.name != preferred, s.metadata.name)):
        if not service.spec.selector:
            continue
        for port in service.spec.ports or []:
            if (port.protocol or "TCP") != "TCP":
                continue
            name = service.metadata.name
            label = f"{name} :{port.port}" + (f" ({port.name})" if port.name else "")
            options.append(TargetOption(id=f"{name}:{port.port}", label=label, service=name, port=port.port))
    for ingress in _ingresses(namespace):
        backend = _ingress_backend(ingress)
        address = _ingress_address(ingress)
        label = f"ingress {ingress.metadata.name}" + (f" → {backend[0]}" if backend else "")
        label += f" ({address[0]}:{address[1]})" if address else " (no address yet)"
        options.append(TargetOption(id=f"ingress/{ingress.metadata.name}", label=label,
                                    service=backend[0] if backend else None, port=None))
    return options


def resolve_target(target_id: str, *, namespace: str | None = None,
                   probe_timeout: float = 1.0) -> ResolvedTarget:
    """Turn a target id from the form into an address, or raise TargetError saying why not."""
    namespace = namespace or settings.LBDEMO_NAMESPACE
    if settings.LBDEMO_TRAFFIC_URL:
        if target_id != OPERATOR_ID:
            raise TargetError("only the operator's configured target may be used")
        option = target_options()[0]
        selector = _service_selector(option.service, namespace) if option.service else {}
        return ResolvedTarget(option=option, target=Target.from_url(settings.LBDEMO_TRAFFIC_URL),
                              via="LBDEMO_TRAFFIC_URL", selector=selector)
    if target_id.startswith("ingress/"):
        return _resolve_ingress(target_id.removeprefix("ingress/"), namespace, probe_timeout)
    name, sep, port_text = target_id.rpartition(":")
    if not sep or not name or not port_text.isdigit():
        raise TargetError("choose a target service from the list")
    with kube.api_client() as api:
        try:
            service = client.CoreV1Api(api).read_namespaced_service(name, namespace)
        except ApiException as error:
            if error.status == 404:
                raise TargetError(f"service {name!r} does not exist in namespace {namespace!r}") from None
            raise
    port = next((p for p in service.spec.ports or [] if p.port == int(port_text)), None)
    if port is None:
        raise TargetError(f"service {name!r} has no port {port_text}")
    option = TargetOption(id=target_id, label=f"{name} :{port.port}", service=name, port=port.port)
    candidates = []
    cluster_ip = service.spec.cluster_ip
    if cluster_ip and cluster_ip != "None":
        candidates.append((cluster_ip, port.port, "ClusterIP"))
    if port.node_port:
        candidates.append(("127.0.0.1", port.node_port, "NodePort"))
    for host, number, via in candidates:
        if reachable(host, number, timeout=probe_timeout):
            return ResolvedTarget(option=option, target=Target(host=host, port=number, path="/",
                                                               host_header=f"{name}.{namespace}"),
                                  via=via, selector=dict(service.spec.selector or {}))
    tried = ", ".join(f"{h}:{p}" for h, p, _ in candidates) or "no address"
    raise TargetError(f"service {name!r} is not reachable from the dashboard (tried {tried}); "
                      "set LBDEMO_TRAFFIC_URL to an address that reaches it")


def _ingresses(namespace: str) -> list:
    """The namespace's Ingresses (none when the cluster or the Role does not serve them)."""
    try:
        with kube.api_client() as api:
            return sorted(client.NetworkingV1Api(api).list_namespaced_ingress(namespace).items,
                          key=lambda i: i.metadata.name)
    except ApiException as error:
        if error.status in (403, 404):
            return []
        raise


def _ingress_address(ingress) -> tuple[str, int] | None:  # type: ignore[no-untyped-def]
    """Where the Ingress's controller listens, from its status (ip or hostname; port 80 unless given)."""
    load_balancer = ingress.status.load_balancer if ingress.status else None
    for entry in (load_balancer.ingress if load_balancer else None) or []:
        host = entry.ip or entry.hostname
        if host:
            ports = [p.port for p in entry.ports or [] if p.port]
            return host, ports[0] if ports else 80
    return None


def _ingress_backend(ingress) -> tuple[str, str] | None:  # type: ignore[no-untyped-def]
    """(Service name, Host header) of the Ingress's first path, else of its default backend."""
    for rule in ingress.spec.rules or []:
        for path in (rule.http and rule.http.paths) or []:
            if path.backend and path.backend.service:
                host = rule.host or ""
                return path.backend.service.name, "" if host.startswith("*") else host
    default = ingress.spec.default_backend
    if default and default.service:
        return default.service.name, ""
    return None


def _resolve_ingress(name: str, namespace: str, probe_timeout: float) -> ResolvedTarget:
    """An Ingress target: its published address, its first rule's host, its Service's selector."""
    with kube.api_client() as api:
        try:
            ingress = client.NetworkingV1Api(api).read_namespaced_ingress(name, namespace)
        except ApiException as error:
            if error.status == 404:
                raise TargetError(f"ingress {name!r} does not exist in namespace {namespace!r}") from None
            raise
    address = _ingress_address(ingress)
    if address is None:
        raise TargetError(f"ingress {name!r} has no address yet: is an ingress controller running "
                          "(minikube addons enable ingress)?")
    backend = _ingress_backend(ingress)
    service, host_header = backend if backend else (None, "")
    if not reachable(address[0], address[1], timeout=probe_timeout):
        raise TargetError(f"ingress {name!r} is not reachable from the dashboard at "
                          f"{address[0]}:{address[1]}")
    option = TargetOption(id=f"ingress/{name}", label=f"ingress {name}", service=service, port=None)
    selector = _service_selector(service, namespace) if service else {}
    return ResolvedTarget(option=option, target=Target(host=address[0], port=address[1], path="/",
                                                       host_header=host_header),
                          via="Ingress", selector=selector)


def _service_selector(name: str, namespace: str) -> dict[str, str]:
    """The Service's selector, or {} if the cluster cannot tell (marks for Deployments are optional)."""
    try:
        with kube.api_client() as api:
            return dict(client.CoreV1Api(api).read_namespaced_service(name, namespace).spec.selector or {})
    except Exception as error:
        log.warning("cannot read service %s/%s for traffic marks: %s", namespace, name, error)
        return {}


def reachable(host: str, port: int, *, timeout: float) -> bool:
    """True if a TCP connection to host:port succeeds (then closed at once)."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False
