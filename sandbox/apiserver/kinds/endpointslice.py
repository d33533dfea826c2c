"""EndpointSlices (discovery.k8s.io/v1): address type and addresses, endpoint ports, defaults,
printEndpointSlice's columns and the `addressType` field selector."""

from __future__ import annotations

import ipaddress
from datetime import datetime
from typing import Any

from sandbox.apiserver.printing import Row, age_col, age_of, col, doc, limited, name_col, name_of
from sandbox.apiserver.strategy import Resource, Strategy
from sandbox.apiserver.validation.defaulting import as_list
from sandbox.apiserver.validation.fielderrors import Errors
from sandbox.apiserver.validation.names import dns1123_subdomain_errors
from sandbox.apiserver.validation.ports import validate_endpoint_ports


def _validate_endpointslice(errs: Errors, obj: dict) -> None:
    family = obj.get("addressType")
    families = ("IPv4", "IPv6", "FQDN")
    if not family:
        errs.required("addressType")
    elif family not in families:
        errs.not_supported("addressType", family, families)
    endpoints = obj.get("endpoints")
    if endpoints is None:
        endpoints = []
    for i, ep in enumerate(endpoints):
        path = f"endpoints[{i}]"
        if not isinstance(ep, dict):
            errs.invalid(path, ep, "must be an endpoint")
            continue
        addresses = ep.get("addresses") or []
        if not addresses:
            errs.required(f"{path}.addresses", "must contain at least 1 address")
        elif len(addresses) > 100:
            errs.too_long(f"{path}.addresses", "may not have more than 100 items")
        for j, addr in enumerate(addresses):
            if family == "IPv4":
                try:
                    ipaddress.IPv4Address(str(addr))
                except ValueError:
                    errs.invalid(f"{path}.addresses[{j}]", addr, "must be a valid IPv4 address")
            elif family == "IPv6":
                try:
                    ipaddress.IPv6Address(str(addr))
                except ValueError:
                    errs.invalid(f"{path}.addresses[{j}]", addr, "must be a valid IPv6 address")
        if ep.get("nodeName"):
            for msg in dns1123_subdomain_errors(str(ep["nodeName"])):
                errs.invalid(f"{path}.nodeName", ep["nodeName"], msg)
    validate_endpoint_ports(errs, obj.get("ports"), "ports", slice_=True)


def _default_endpointslice(obj: dict) -> None:
    for port in as_list(obj.get("ports")):
        if isinstance(port, dict):
            port.setdefault("protocol", "TCP")
            port.setdefault("name", "")
    if obj.get("endpoints") is None:
        obj["endpoints"] = []


def _endpointslice_row(obj: dict, now: datetime) -> Row:
    ports = [str(p.get("port")) if p.get("port") is not None else "<unset>"
             for p in obj.get("ports") or [] if isinstance(p, dict)]
    addresses = [str(a) for ep in obj.get("endpoints") or [] if isinstance(ep, dict)
                 for a in ep.get("addresses") or []]
    return [name_of(obj), obj.get("addressType") or "", limited(ports), limited(addresses), age_of(obj, now)]


RESOURCE = Resource("discovery.k8s.io", "v1", "EndpointSlice", "endpointslices",
                    "io.k8s.api.discovery.v1.EndpointSlice", field_selectors=("addressType",))


class EndpointSliceStrategy(Strategy):
    """EndpointSlices: validation, defaults, printEndpointSlice."""

    resource = RESOURCE

    def default(self, obj: dict) -> None:
        """Port protocol TCP and name "", endpoints an empty list."""
        _default_endpointslice(obj)

    def validate(self, errs: Errors, obj: dict) -> None:
        """`ValidateEndpointSlice`."""
        _validate_endpointslice(errs, obj)

    def columns(self) -> list[dict[str, Any]]:
        """printEndpointSlice's columns."""
        eps = "io.k8s.api.discovery.v1.EndpointSlice"
        return [name_col(),
                col("AddressType", description=doc(eps, "addressType")),
                col("Ports", description=doc(eps, "ports")),
                col("Endpoints", description=doc(eps, "endpoints")),
                age_col()]

    def row(self, obj: dict, now: datetime) -> Row:
        """printEndpointSlice's cells."""
        return _endpointslice_row(obj, now)


STRATEGY = EndpointSliceStrategy()
