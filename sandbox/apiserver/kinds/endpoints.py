"""Endpoints (core/v1): subset validation (addresses are IPs, ports named when several),
port protocol defaults, printEndpoints' columns (the first three ready `ip:port`). Deprecated
since 1.33 in favour of EndpointSlices: every answer carries kube-apiserver's Warning, which kubectl
prints ("v1 Endpoints is deprecated in v1.33+; use discovery.k8s.io/v1 EndpointSlice")."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sandbox.apiserver.printing import CORE, Row, age_col, age_of, col, doc, name_col, name_of
from sandbox.apiserver.strategy import Resource, Strategy
from sandbox.apiserver.validation.defaulting import as_list
from sandbox.apiserver.validation.fielderrors import Errors
from sandbox.apiserver.validation.names import validate_ip
from sandbox.apiserver.validation.ports import validate_endpoint_ports


def _validate_endpoints(errs: Errors, obj: dict) -> None:
    for i, subset in enumerate(obj.get("subsets") or []):
        path = f"subsets[{i}]"
        if not isinstance(subset, dict):
            errs.invalid(path, subset, "must be an endpoint subset")
            continue
        addresses = (subset.get("addresses") or []) + (subset.get("notReadyAddresses") or [])
        if not addresses:
            errs.required(path, "must specify `addresses` or `notReadyAddresses`")
        for group in ("addresses", "notReadyAddresses"):
            for j, addr in enumerate(subset.get(group) or []):
                validate_ip(errs, (addr or {}).get("ip") if isinstance(addr, dict) else addr,
                             f"{path}.{group}[{j}].ip")
        validate_endpoint_ports(errs, subset.get("ports"), f"{path}.ports", slice_=False)


def _default_endpoints(obj: dict) -> None:
    for subset in as_list(obj.get("subsets")):
        if isinstance(subset, dict):
            for port in as_list(subset.get("ports")):
                if isinstance(port, dict):
                    port.setdefault("protocol", "TCP")


def format_endpoints(subsets: list[Any] | None, *, limit: int = 3) -> str:
    """`formatEndpoints`: the first three ready `ip:port`, then ` + N more...`; `<none>`."""
    shown: list[str] = []
    count = 0
    for subset in subsets or []:
        if not isinstance(subset, dict):
            continue
        addresses = [a for a in subset.get("addresses") or [] if isinstance(a, dict)]
        ports = [p for p in subset.get("ports") or [] if isinstance(p, dict)]
        pairs = [str(a.get("ip")) for a in addresses] if not ports else \
            [f"{a.get('ip')}:{p.get('port')}" for p in ports for a in addresses]
        for pair in pairs:
            if count < limit:
                shown.append(pair)
            count += 1
    if not shown:
        return "<none>"
    text = ",".join(shown)
    return text + (f" + {count - limit} more..." if count > limit else "")


def _endpoints_row(obj: dict, now: datetime) -> Row:
    return [name_of(obj), format_endpoints(obj.get("subsets")), age_of(obj, now)]


RESOURCE = Resource("", "v1", "Endpoints", "endpoints", "io.k8s.api.core.v1.Endpoints", short_names=("ep",),
                    deprecated="v1 Endpoints is deprecated in v1.33+; use discovery.k8s.io/v1 EndpointSlice")


class EndpointsStrategy(Strategy):
    """Endpoints: subsets, printEndpoints."""

    resource = RESOURCE

    def default(self, obj: dict) -> None:
        """Port protocols default to TCP."""
        _default_endpoints(obj)

    def validate(self, errs: Errors, obj: dict) -> None:
        """`ValidateEndpoints`."""
        _validate_endpoints(errs, obj)

    def columns(self) -> list[dict[str, Any]]:
        """printEndpoints' columns."""
        return [name_col(), col("Endpoints", description=doc(CORE + "Endpoints", "subsets")), age_col()]

    def row(self, obj: dict, now: datetime) -> Row:
        """printEndpoints' cells."""
        return _endpoints_row(obj, now)


STRATEGY = EndpointsStrategy()
