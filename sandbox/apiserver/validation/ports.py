"""Port rules shared by pods, Services, Endpoints and EndpointSlices: port numbers, IANA
service names (named ports), protocols, container ports and endpoint ports."""

from __future__ import annotations

import re
from typing import Any

from sandbox.apiserver.validation.fielderrors import Errors
from sandbox.apiserver.validation.names import dns1123_label_errors, is_int

PROTOCOLS = ("TCP", "UDP", "SCTP")
_IANA_ALPHA = re.compile("[a-z]")
_IANA_CHARS = re.compile("^[-a-z0-9]+$")


def iana_svc_name_errors(value: str) -> list[str]:
    """`IsValidPortName` (container port names, named target ports)."""
    errs = []
    if len(value) > 15:
        errs.append("must be no more than 15 characters")
    if not _IANA_CHARS.match(value):
        errs.append("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)")
    if "--" in value:
        errs.append("must not contain consecutive hyphens")
    if not _IANA_ALPHA.search(value):
        errs.append("must contain at least one letter (a-z)")
    if value.startswith("-") or value.endswith("-"):
        errs.append("must not begin or end with a hyphen")
    return errs


def validate_protocol(errs: Errors, protocol: Any, path: str) -> None:
    """A port's protocol: required, one of TCP, UDP and SCTP."""
    if protocol in PROTOCOLS:
        return
    if protocol in (None, ""):
        errs.required(path)
    else:
        errs.not_supported(path, protocol, PROTOCOLS)


def port_range_errors(port: Any) -> list[str]:
    """`IsValidPortNum`."""
    if not is_int(port) or not 1 <= port <= 65535:
        return ["must be between 1 and 65535, inclusive"]
    return []


def validate_container_port(errs: Errors, port: Any, path: str, port_names: set[str]) -> None:
    if not isinstance(port, dict):
        errs.invalid(path, port, "must be a container port")
        return
    name = port.get("name")
    if name:
        for msg in iana_svc_name_errors(str(name)):
            errs.invalid(f"{path}.name", name, msg)
        if name in port_names:
            errs.duplicate(f"{path}.name", name)
        port_names.add(name)
    cport = port.get("containerPort")
    if cport in (None, 0):
        errs.required(f"{path}.containerPort")
    else:
        for msg in port_range_errors(cport):
            errs.invalid(f"{path}.containerPort", cport, msg)
    hport = port.get("hostPort")
    if hport not in (None, 0):
        for msg in port_range_errors(hport):
            errs.invalid(f"{path}.hostPort", hport, msg)
    validate_protocol(errs, port.get("protocol"), f"{path}.protocol")


def validate_endpoint_ports(errs: Errors, ports: Any, path: str, *, slice_: bool) -> None:
    names: set[str] = set()
    for i, port in enumerate(ports or []):
        ppath = f"{path}[{i}]"
        if not isinstance(port, dict):
            errs.invalid(ppath, port, "must be an endpoint port")
            continue
        name = port.get("name") or ""
        if len(ports) > 1 and not name and not slice_:
            errs.required(f"{ppath}.name")
        if name:
            for msg in dns1123_label_errors(name):
                errs.invalid(f"{ppath}.name", name, msg)
        if name in names:
            errs.duplicate(f"{ppath}.name", name)
        names.add(name)
        number = port.get("port")
        if number is not None or not slice_:
            for msg in port_range_errors(number):
                errs.invalid(f"{ppath}.port", number, msg)
        protocol = port.get("protocol")
        if protocol not in PROTOCOLS:
            errs.not_supported(f"{ppath}.protocol", protocol, PROTOCOLS)
