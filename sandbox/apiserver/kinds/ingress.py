"""Ingresses (networking.k8s.io/v1): L7 routing rules for an ingress controller.

`ValidateIngressCreate/Update` from pkg/apis/networking/validation (rules or a default
backend, hosts as DNS names or ``*.`` wildcards and never IPs, absolute paths without ``//``
or dot segments for Exact and Prefix, a required ``pathType``, a service backend with a name
and a port name *or* number, a DNS-subdomain ``ingressClassName`` and not also the legacy
class annotation), the DefaultIngressClass admission plugin (an Ingress created without a
class gets the class annotated ``ingressclass.kubernetes.io/is-default-class``), and
printIngress's NAME CLASS HOSTS ADDRESS PORTS AGE. The ingress controller writes
``status.loadBalancer.ingress`` through the ``status`` subresource."""

from __future__ import annotations

import ipaddress
import re
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sandbox.apiserver.kinds import ingressclass
from sandbox.apiserver.printing import Row, age_col, age_of, col, name_col, name_of
from sandbox.apiserver.strategy import STATUS, Resource, Strategy
from sandbox.apiserver.validation.defaulting import as_list, as_map
from sandbox.apiserver.validation.fielderrors import Errors
from sandbox.apiserver.validation.names import (
    DNS1123_SUBDOMAIN,
    dns1035_label_errors,
    dns1123_subdomain_errors,
    regex_error,
)
from sandbox.apiserver.validation.ports import iana_svc_name_errors, port_range_errors

if TYPE_CHECKING:
    from sandbox.apiserver.registry import Registry

PATH_TYPES = ("Exact", "ImplementationSpecific", "Prefix")
INVALID_PATH_SEQUENCES = ("//", "/./", "/../", "%2f", "%2F")
INVALID_PATH_SUFFIXES = ("/..", "/.")
LEGACY_CLASS_ANNOTATION = "kubernetes.io/ingress.class"
DEFAULT_CLASS_ANNOTATION = "ingressclass.kubernetes.io/is-default-class"
WILDCARD_FORMAT = r"\*\." + DNS1123_SUBDOMAIN
_WILDCARD = re.compile("^" + WILDCARD_FORMAT + "$")
LOAD_BALANCER_WIDTH = 16


def wildcard_dns1123_subdomain_errors(value: str) -> list[str]:
    """`IsWildcardDNS1123Subdomain`."""
    errs = []
    if len(value) > 253:
        errs.append("must be no more than 253 characters")
    if not _WILDCARD.match(value):
        errs.append(regex_error(
            "a wildcard DNS-1123 subdomain must start with '*.', followed by a valid DNS subdomain, which "
            "must consist of lower case alphanumeric characters, '-' or '.' and end with an alphanumeric "
            "character", WILDCARD_FORMAT, "*.example.com"))
    return errs


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def _validate_host(errs: Errors, path: str, host: str) -> None:
    if _is_ip(host):
        errs.invalid(path, host, "must be a DNS name, not an IP address")
    messages = wildcard_dns1123_subdomain_errors(host) if "*" in host else dns1123_subdomain_errors(host)
    for msg in messages:
        errs.invalid(path, host, msg)


def validate_backend(errs: Errors, path: str, backend: Any) -> None:
    """`validateIngressBackend`: exactly one of service and resource; a service name and port."""
    backend = backend if isinstance(backend, dict) else {}
    service, resource = backend.get("service"), backend.get("resource")
    if service is not None and resource is not None:
        errs.invalid(path, "", "cannot set both resource and service backends")
        return
    if resource is not None:
        if not isinstance(resource, dict) or not resource.get("kind"):
            errs.required(f"{path}.resource.kind", "")
        if not isinstance(resource, dict) or not resource.get("name"):
            errs.required(f"{path}.resource.name", "")
        return
    if service is None:
        errs.invalid(path, "", "resource or service backend is required")
        return
    service = service if isinstance(service, dict) else {}
    name = service.get("name")
    if not name:
        errs.required(f"{path}.service.name", "")
    else:
        for msg in dns1035_label_errors(str(name)):
            errs.invalid(f"{path}.service.name", name, msg)
    port = as_map(service.get("port"))
    port_name, number = port.get("name") or "", port.get("number") or 0
    if port_name and number:
        errs.invalid(path, "", "cannot set both port name & port number")
    elif port_name:
        for msg in iana_svc_name_errors(str(port_name)):
            errs.invalid(f"{path}.service.port.name", port_name, msg)
    elif number:
        for msg in port_range_errors(number):
            errs.invalid(f"{path}.service.port.number", number, msg)
    else:
        errs.required(path, "port name or number is required")


def _validate_path(errs: Errors, path: str, item: Any) -> None:
    item = item if isinstance(item, dict) else {}
    path_type = item.get("pathType")
    value = item.get("path") or ""
    if not path_type:
        errs.required(f"{path}.pathType", "pathType must be specified")
        return
    if path_type in ("Exact", "Prefix"):
        if not value.startswith("/"):
            errs.invalid(f"{path}.path", value, "must be an absolute path")
        for seq in INVALID_PATH_SEQUENCES:
            if seq in value:
                errs.invalid(f"{path}.path", value, f"must not contain '{seq}'")
        for suffix in INVALID_PATH_SUFFIXES:
            if value.endswith(suffix):
                errs.invalid(f"{path}.path", value, f"cannot end with '{suffix}'")
    elif path_type == "ImplementationSpecific":
        if value and not value.startswith("/"):
            errs.invalid(f"{path}.path", value, "must be an absolute path")
    else:
        errs.not_supported(f"{path}.pathType", path_type, PATH_TYPES)
    validate_backend(errs, f"{path}.backend", item.get("backend"))


def _validate(errs: Errors, obj: dict) -> None:
    spec = as_map(obj.get("spec"))
    rules = as_list(spec.get("rules"))
    if not rules and spec.get("defaultBackend") is None:
        errs.invalid("spec", rules, "either `defaultBackend` or `rules` must be specified")
    if spec.get("defaultBackend") is not None:
        validate_backend(errs, "spec.defaultBackend", spec["defaultBackend"])
    for i, rule in enumerate(rules):
        rule = rule if isinstance(rule, dict) else {}
        host = rule.get("host") or ""
        if host:
            _validate_host(errs, f"spec.rules[{i}].host", str(host))
        http = rule.get("http")
        if isinstance(http, dict):
            paths = as_list(http.get("paths"))
            if not paths:
                errs.required(f"spec.rules[{i}].http.paths", "")
            for j, item in enumerate(paths):
                _validate_path(errs, f"spec.rules[{i}].http.paths[{j}]", item)
    for i, tls in enumerate(as_list(spec.get("tls"))):
        tls = tls if isinstance(tls, dict) else {}
        for j, host in enumerate(as_list(tls.get("hosts"))):
            _validate_host(errs, f"spec.tls[{i}].hosts[{j}]", str(host))
        secret = tls.get("secretName")
        if secret:
            for msg in dns1123_subdomain_errors(str(secret)):
                errs.invalid(f"spec.tls[{i}].secretName", secret, msg)
    class_name = spec.get("ingressClassName")
    if class_name is not None:
        for msg in dns1123_subdomain_errors(str(class_name)):
            errs.invalid("spec.ingressClassName", class_name, msg)


def _validate_status(errs: Errors, obj: dict) -> None:
    status = as_map(obj.get("status"))
    lb = as_map(status.get("loadBalancer"))
    for i, ing in enumerate(as_list(lb.get("ingress"))):
        ing = ing if isinstance(ing, dict) else {}
        path = f"status.loadBalancer.ingress[{i}]"
        if ing.get("ip") and not _is_ip(str(ing["ip"])):
            errs.invalid(f"{path}.ip", ing["ip"], "must be a valid IP address")
        if ing.get("hostname"):
            for msg in dns1123_subdomain_errors(str(ing["hostname"])):
                errs.invalid(f"{path}.hostname", ing["hostname"], msg)
            if _is_ip(str(ing["hostname"])):
                errs.invalid(f"{path}.hostname", ing["hostname"], "must be a DNS name, not an IP address")
        for j, port in enumerate(as_list(ing.get("ports"))):
            port = port if isinstance(port, dict) else {}
            for msg in port_range_errors(port.get("port")):
                errs.invalid(f"{path}.ports[{j}].port", port.get("port"), msg)


def format_hosts(rules: list) -> str:
    """printIngress's HOSTS: up to three hosts, ``*`` for none."""
    hosts: list[str] = []
    more = False
    for rule in rules:
        if len(hosts) == 3:
            more = True
        if not more and isinstance(rule, dict) and rule.get("host"):
            hosts.append(str(rule["host"]))
    if not hosts:
        return "*"
    text = ",".join(hosts)
    return f"{text} + {len(rules) - 3} more..." if more else text


def format_address(status: dict, *, wide: bool = False) -> str:
    """printIngress's ADDRESS: the load balancer IPs (or hostnames), sorted, cut to 16 characters."""
    found = set()
    for ing in as_list(((status or {}).get("loadBalancer") or {}).get("ingress")):
        if isinstance(ing, dict) and (ing.get("ip") or ing.get("hostname")):
            found.add(str(ing.get("ip") or ing.get("hostname")))
    text = ",".join(sorted(found))
    return text if wide or len(text) <= LOAD_BALANCER_WIDTH else text[: LOAD_BALANCER_WIDTH - 3] + "..."


RESOURCE = Resource("networking.k8s.io", "v1", "Ingress", "ingresses", "io.k8s.api.networking.v1.Ingress",
                    short_names=("ing",), subresources=(STATUS,), generation=True)


class IngressStrategy(Strategy):
    """Ingresses: validation, the default class, printIngress."""

    resource = RESOURCE
    reset_status_on_create = True

    def validate(self, errs: Errors, obj: dict) -> None:
        """`ValidateIngress` (spec, the class annotation conflict, status)."""
        _validate(errs, obj)
        annotations = (obj.get("metadata") or {}).get("annotations") or {}
        spec = as_map(obj.get("spec"))
        if spec.get("ingressClassName") and isinstance(annotations, dict) and \
                LEGACY_CLASS_ANNOTATION in annotations:
            errs.invalid(f"annotations.{LEGACY_CLASS_ANNOTATION}", annotations[LEGACY_CLASS_ANNOTATION],
                         "can not be set when the class field is also set")
        _validate_status(errs, obj)

    def allocate(self, registry: Registry, obj: dict, old: dict | None) -> None:
        """The DefaultIngressClass admission plugin: a new Ingress without a class (field or
        legacy annotation) gets the default IngressClass, when exactly one is marked default."""
        if old is not None:
            return
        spec = obj.setdefault("spec", {})
        annotations = (obj.get("metadata") or {}).get("annotations") or {}
        if spec.get("ingressClassName") or LEGACY_CLASS_ANNOTATION in annotations:
            return
        defaults = [e.obj["metadata"]["name"] for e in registry.store.entries(ingressclass.RESOURCE.key)
                    if ((e.obj["metadata"].get("annotations") or {}).get(DEFAULT_CLASS_ANNOTATION)) == "true"]
        if len(defaults) == 1:
            spec["ingressClassName"] = defaults[0]

    def columns(self) -> list[dict[str, Any]]:
        """printIngress's columns."""
        return [name_col(),
                col("Class", description="The name of the IngressClass resource that should be used for "
                                         "additional configuration"),
                col("Hosts", description="Hosts that incoming requests are matched against before the "
                                         "ingress rule"),
                col("Address", description="Address is a list containing ingress points for the "
                                           "load-balancer"),
                col("Ports", description="Ports of TLS configurations that open"),
                age_col()]

    def row(self, obj: dict, now: datetime) -> Row:
        """printIngress's cells."""
        spec = obj.get("spec") or {}
        hosts = format_hosts(as_list(spec.get("rules")))
        return [name_of(obj), spec.get("ingressClassName") or "<none>", hosts,
                format_address(obj.get("status") or {}), "80, 443" if spec.get("tls") else "80",
                age_of(obj, now)]


STRATEGY = IngressStrategy()
