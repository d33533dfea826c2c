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
