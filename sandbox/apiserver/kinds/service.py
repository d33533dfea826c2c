"""Services (core/v1), the sandbox's `pkg/registry/core/service`.

Defaults (type, sessionAffinity, targetPort = port, IP families, traffic policies), validation
(`ValidateService`: ports, named target ports, nodePorts, session affinity, clusterIP and its
immutability), printService's columns, and the allocations kube-apiserver's Service REST makes:
a random free clusterIP from the service CIDR and nodePorts from 30000-32767.
"""

from __future__ import annotations

import ipaddress
import random
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sandbox.apiserver import errors, proxy
from sandbox.apiserver.printing import (
    CORE,
    Row,
    age_col,
    age_of,
    as_int,
    col,
    doc,
    format_labels,
    get_path,
    name_col,
    name_of,
)
from sandbox.apiserver.strategy import PROXY_VERBS, STATUS, Resource, Strategy, Subresource
from sandbox.apiserver.validation.defaulting import as_list, dict_at
from sandbox.apiserver.validation.fielderrors import Errors
from sandbox.apiserver.validation.labels import validate_labels
from sandbox.apiserver.validation.names import dns1123_label_errors, is_int
from sandbox.apiserver.validation.ports import iana_svc_name_errors, port_range_errors, validate_protocol

if TYPE_CHECKING:
    from sandbox.apiserver.registry import Registry

SERVICE_CIDR = ipaddress.ip_network("127.96.0.0/16")
NODE_PORTS = range(30000, 32768)
SERVICE_TYPES = ("ClusterIP", "NodePort", "LoadBalancer", "ExternalName")
NODE_PORT_RANGE = (30000, 32767)


def allocate_cluster_ip(used: set[str]) -> str:
    """A free ClusterIP picked at random, as kube-apiserver's allocator does. Random rather than
    lowest-free also keeps sandboxes running side by side (tests, a second lab) from sharing
    an address, since every sandbox's proxy listens on real loopback IPs of one machine."""
    first, size = int(SERVICE_CIDR.network_address), SERVICE_CIDR.num_addresses
    for _ in range(64):
        candidate = str(ipaddress.ip_address(first + random.randrange(2, size - 1)))
        if candidate not in used:
            return candidate
    free = next((str(a) for a in SERVICE_CIDR.hosts() if str(a) not in used and a.packed[3] > 1), None)
    if free is None:
        raise errors.internal_error("range is full")
    return free


def _validate_service(errs: Errors, obj: dict) -> None:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        errs.required("spec.ports")
        return
    stype = spec.get("type") or "ClusterIP"
    if stype not in SERVICE_TYPES:
        errs.not_supported("spec.type", stype, SERVICE_TYPES)
    ports = spec.get("ports") or []
    if not isinstance(ports, list):
        errs.invalid("spec.ports", ports, "must be a list of service ports")
        ports = []
    if not ports and stype != "ExternalName" and spec.get("clusterIP") != "None":
        errs.required("spec.ports")
    names: set[str] = set()
    seen_ports: set[tuple[Any, Any]] = set()
    node_ports: set[tuple[Any, Any]] = set()
    for i, port in enumerate(ports):
        path = f"spec.ports[{i}]"
        if not isinstance(port, dict):
            errs.invalid(path, port, "must be a service port")
            continue
        name = port.get("name")
        if len(ports) > 1 and not name:
            errs.required(f"{path}.name")
        if name:
            for msg in dns1123_label_errors(str(name)):
                errs.invalid(f"{path}.name", name, msg)
            if name in names:
                errs.duplicate(f"{path}.name", name)
            names.add(name)
        number = port.get("port", 0)
        for msg in port_range_errors(number):
            errs.invalid(f"{path}.port", number, msg)
        protocol = port.get("protocol")
        validate_protocol(errs, protocol, f"{path}.protocol")
        key = (number, protocol)
        if key in seen_ports:
            errs.duplicate(path, {"port": number, "protocol": protocol})
        seen_ports.add(key)
        target = port.get("targetPort")
        if isinstance(target, str):
            for msg in iana_svc_name_errors(target):
                errs.invalid(f"{path}.targetPort", target, msg)
        elif target is not None:
            for msg in port_range_errors(target):
                errs.invalid(f"{path}.targetPort", target, msg)
        node_port = port.get("nodePort")
        if node_port not in (None, 0):
            if stype not in ("NodePort", "LoadBalancer"):
                errs.forbidden(f"{path}.nodePort", f"may not be used when `type` is '{stype}'")
            elif not is_int(node_port) or not NODE_PORT_RANGE[0] <= node_port <= NODE_PORT_RANGE[1]:
                errs.invalid(f"{path}.nodePort", node_port,
                             "provided port is not in the valid range. The range of valid ports is "
                             f"{NODE_PORT_RANGE[0]}-{NODE_PORT_RANGE[1]}")
            elif (node_port, protocol) in node_ports:
                errs.duplicate(f"{path}.nodePort", node_port)
            node_ports.add((node_port, protocol))
    selector = spec.get("selector")
    if selector is not None:
        validate_labels(errs, selector, "spec.selector")
    affinity = spec.get("sessionAffinity")
    if affinity not in (None, "None", "ClientIP"):
        errs.not_supported("spec.sessionAffinity", affinity, ("ClientIP", "None"))
    if affinity == "ClientIP":
        timeout = (((spec.get("sessionAffinityConfig") or {}).get("clientIP") or {}).get("timeoutSeconds"))
        if timeout is not None and (not is_int(timeout) or not 0 < timeout <= 86400):
            errs.invalid("spec.sessionAffinityConfig.clientIP.timeoutSeconds", timeout,
                         "must be greater than 0 and less than 86400")
    elif spec.get("sessionAffinityConfig") is not None:
        errs.forbidden("spec.sessionAffinityConfig", f"must not be set when session affinity is {affinity}")
    cluster_ip = spec.get("clusterIP")
    if cluster_ip not in (None, "", "None"):
        try:
            ipaddress.ip_address(cluster_ip)
        except ValueError:
            errs.invalid("spec.clusterIPs[0]", cluster_ip, "must be a valid IP address, (e.g. 10.9.8.7 or "
                                                           "2001:db8::ffff)")
    if stype == "ExternalName" and not spec.get("externalName"):
        errs.required("spec.externalName")
    for policy in ("externalTrafficPolicy", "internalTrafficPolicy"):
        value = spec.get(policy)
        if value is not None and value not in ("Cluster", "Local"):
            errs.not_supported(f"spec.{policy}", value, ("Cluster", "Local"))
    if spec.get("externalTrafficPolicy") is not None and stype not in ("NodePort", "LoadBalancer"):
        errs.invalid("spec.externalTrafficPolicy", spec["externalTrafficPolicy"],
                     "may only be set when `type` is 'NodePort' or 'LoadBalancer'")


def _validate_service_update(errs: Errors, obj: dict, old: dict) -> None:
    new_spec, old_spec = obj.get("spec") or {}, old.get("spec") or {}
    old_ip = old_spec.get("clusterIP")
    if old_ip and old_spec.get("type") != "ExternalName" and new_spec.get("type") != "ExternalName" \
            and new_spec.get("clusterIP") != old_ip:
        errs.invalid("spec.clusterIPs[0]", [new_spec.get("clusterIP")] if new_spec.get("clusterIP") else [],
                     "may not change once set")


def _default_service(obj: dict) -> None:
    spec = dict_at(obj, "spec")
    spec.setdefault("type", "ClusterIP")
    spec.setdefault("sessionAffinity", "None")
    if spec["sessionAffinity"] == "ClientIP":
        config = dict_at(dict_at(spec, "sessionAffinityConfig"), "clientIP")
        config.setdefault("timeoutSeconds", 10800)
    for port in as_list(spec.get("ports")):
        if isinstance(port, dict):
            port.setdefault("protocol", "TCP")
            target = port.get("targetPort")
            if (target is None or target == "" or (is_int(target) and target == 0)) and "port" in port:
                port["targetPort"] = port["port"]
    if spec["type"] != "ExternalName":
        spec.setdefault("internalTrafficPolicy", "Cluster")
        spec.setdefault("ipFamilies", ["IPv4"])
        spec.setdefault("ipFamilyPolicy", "SingleStack")
    if spec["type"] in ("NodePort", "LoadBalancer"):
        spec.setdefault("externalTrafficPolicy", "Cluster")
    if spec["type"] == "LoadBalancer":
        spec.setdefault("allocateLoadBalancerNodePorts", True)
    dict_at(dict_at(obj, "status"), "loadBalancer")


def _service_external_ip(spec: Mapping[str, Any], status: Mapping[str, Any]) -> str:
    external = [str(ip) for ip in spec.get("externalIPs") or []]
    stype = spec.get("type") or "ClusterIP"
    if stype in ("ClusterIP", "NodePort"):
        return ",".join(external) if external else "<none>"
    if stype == "LoadBalancer":
        ingress = [str(i.get("ip") or i.get("hostname") or "") for i in
                   get_path(status, "loadBalancer", "ingress") or [] if isinstance(i, dict)]
        combined = [i for i in ingress if i] + external
        return ",".join(combined) if combined else "<pending>"
    if stype == "ExternalName":
        return str(spec.get("externalName") or "")
    return "<unknown>"


def service_ports(ports: list[Any] | None) -> str:
    """`makePortString`: `80/TCP`, `80:30080/TCP`, comma separated (`<none>` when empty)."""
    pieces = []
    for port in ports or []:
        if not isinstance(port, dict):
            continue
        protocol = port.get("protocol") or "TCP"
        if as_int(port.get("nodePort")) > 0:
            pieces.append(f"{port.get('port')}:{port.get('nodePort')}/{protocol}")
        else:
            pieces.append(f"{port.get('port')}/{protocol}")
    return ",".join(pieces) or "<none>"


def _service_row(obj: dict, now: datetime) -> Row:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    ips = spec.get("clusterIPs") or ([spec["clusterIP"]] if spec.get("clusterIP") else [])
    return [name_of(obj), spec.get("type") or "ClusterIP", ips[0] if ips else "<none>",
            _service_external_ip(spec, status), service_ports(spec.get("ports")), age_of(obj, now),
            format_labels(spec.get("selector"))]


def _allocated(registry: Registry, *, skip_uid: str | None) -> tuple[set[str], set[int]]:
    """ClusterIPs and nodePorts in use by Services other than `skip_uid`."""
    ips: set[str] = set()
    ports: set[int] = set()
    for entry in registry.store.entries(RESOURCE.key):
        if entry.obj["metadata"].get("uid") == skip_uid:
            continue
        spec = entry.obj.get("spec", {})
        ips.update(spec.get("clusterIPs") or [spec.get("clusterIP")])
        ports.update(p.get("nodePort") for p in spec.get("ports") or [] if p.get("nodePort"))
    return ips, ports


def _allocate_service(registry: Registry, svc: dict, old: dict | None) -> None:
    """Give a Service its clusterIP and nodePorts (kept from `old` when the update omits them)."""
    res = RESOURCE
    name = svc["metadata"]["name"]
    spec = svc.setdefault("spec", {})
    old_spec = (old or {}).get("spec", {})
    used_ips, used_ports = _allocated(registry, skip_uid=(old or {}).get("metadata", {}).get("uid"))
    svc_type = spec.get("type", "ClusterIP")
    if svc_type == "ExternalName":
        spec.pop("clusterIP", None)
        spec.pop("clusterIPs", None)
    else:
        ip = spec.get("clusterIP") or old_spec.get("clusterIP")
        if not ip:
            ip = allocate_cluster_ip(used_ips)
        elif ip != "None":
            try:
                address = ipaddress.ip_address(ip)
            except ValueError:
                raise errors.invalid_field(res, name, "spec.clusterIPs[0]",
                                           f'Invalid value: "{ip}": must be a valid IP address') from None
            if address not in SERVICE_CIDR:
                raise errors.invalid_field(res, name, "spec.clusterIPs",
                                           f'Invalid value: ["{ip}"]: failed to allocate IP {ip}: the '
                                           f"provided IP ({ip}) is not in the valid range. The range of "
                                           f"valid IPs is {SERVICE_CIDR}")
            if ip in used_ips:
                raise errors.invalid_field(res, name, "spec.clusterIPs",
                                           f'Invalid value: ["{ip}"]: failed to allocate IP {ip}: '
                                           "provided IP is already allocated")
        spec["clusterIP"] = ip
        spec["clusterIPs"] = [ip]
    needs_node_port = svc_type in ("NodePort", "LoadBalancer")
    old_ports = {(p.get("port"), p.get("protocol", "TCP")): p.get("nodePort")
                 for p in old_spec.get("ports") or []}
    for index, port in enumerate(spec.get("ports") or []):
        if not isinstance(port, dict):
            continue
        if not needs_node_port:
            port.pop("nodePort", None)
            continue
        node_port = port.get("nodePort") or old_ports.get((port.get("port"), port.get("protocol", "TCP")))
        if not node_port:
            free = [p for p in NODE_PORTS if p not in used_ports]
            if not free:
                raise errors.internal_error("node port range is full")
            node_port = random.choice(free)
        elif not isinstance(node_port, int) or node_port not in NODE_PORTS:
            raise errors.invalid_field(res, name, f"spec.ports[{index}].nodePort",
                                       f"Invalid value: {node_port}: provided port is not in the valid "
                                       f"range. The range of valid ports is 30000-32767")
        elif node_port in used_ports:
            raise errors.invalid_field(res, name, f"spec.ports[{index}].nodePort",
                                       f"Invalid value: {node_port}: provided port is already allocated")
        used_ports.add(node_port)
        port["nodePort"] = node_port


RESOURCE = Resource("", "v1", "Service", "services", "io.k8s.api.core.v1.Service", short_names=("svc",),
                    categories=("all",),
                    subresources=(STATUS, Subresource("proxy", verbs=PROXY_VERBS,
                                                      kind=("", "", "ServiceProxyOptions"), openapi="",
                                                      handler=proxy.serve_service_proxy)),
                    field_selectors=("spec.clusterIP", "spec.type"))


class ServiceStrategy(Strategy):
    """Services: defaults, validation, printService, clusterIP and nodePort allocation."""

    resource = RESOURCE
    name_rule = "dns1035"
    reset_status_on_create = True

    def default(self, obj: dict) -> None:
        """`SetDefaults_Service`."""
        _default_service(obj)

    def validate(self, errs: Errors, obj: dict) -> None:
        """`ValidateService`."""
        _validate_service(errs, obj)

    def validate_update(self, errs: Errors, obj: dict, old: dict) -> None:
        """`ValidateServiceUpdate`: the clusterIP may not change once set."""
        _validate_service_update(errs, obj, old)

    def columns(self) -> list[dict[str, Any]]:
        """printService's columns."""
        spec = CORE + "ServiceSpec"
        return [name_col(),
                col("Type", description=doc(spec, "type")),
                col("Cluster-IP", description=doc(spec, "clusterIP")),
                col("External-IP", description=doc(spec, "externalIPs")),
                col("Port(s)", description=doc(spec, "ports")),
                age_col(),
                col("Selector", description=doc(spec, "selector"), priority=1)]

    def row(self, obj: dict, now: datetime) -> Row:
        """printService's cells."""
        return _service_row(obj, now)

    def allocate(self, registry: Registry, obj: dict, old: dict | None) -> None:
        """Give the Service its clusterIP and nodePorts (kept from ``old`` when an update omits them)."""
        _allocate_service(registry, obj, old)


STRATEGY = ServiceStrategy()
