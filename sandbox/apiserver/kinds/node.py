"""Nodes (core/v1): taint and podCIDRs validation (podCIDRs and providerID immutable once set),
allocatable defaulted from capacity, printNode's columns
(STATUS from the Ready condition and `spec.unschedulable`, ROLES from the node-role labels)."""

from __future__ import annotations

import contextlib
import ipaddress
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sandbox.apiserver.printing import CORE, Row, age_col, age_of, col, doc, get_path, name_col, name_of
from sandbox.apiserver.strategy import STATUS, Resource, Strategy
from sandbox.apiserver.validation.defaulting import dict_at
from sandbox.apiserver.validation.fielderrors import Errors, GoValue, go_struct
from sandbox.apiserver.validation.names import cidr_errors, label_value_errors, qualified_name_errors
from sandbox.apiserver.validation.podspec import validate_taint_effect


def validate_node_taints(errs: Errors, obj: dict) -> None:
    """`validateNodeTaints`: label-name keys, label values, a known effect, one taint per key
    and effect. The path is kube-apiserver's: `ValidateNode` passes `metadata` as the parent,
    so users see `metadata.taints[i]`."""
    seen: set[tuple[str, str]] = set()
    for i, taint in enumerate((obj.get("spec") or {}).get("taints") or []):
        path = f"metadata.taints[{i}]"
        if not isinstance(taint, dict):
            errs.invalid(path, taint, "must be a taint")
            continue
        key, value = str(taint.get("key") or ""), str(taint.get("value") or "")
        effect = str(taint.get("effect") or "")
        for msg in qualified_name_errors(key):
            errs.invalid(f"{path}.key", key, msg)
        if label_value_errors(value):
            errs.invalid(f"{path}.value", value, ";".join(label_value_errors(value)))
        validate_taint_effect(errs, effect, f"{path}.effect")
        if (key, effect) in seen:
            errs.duplicate(path, _go_taint(key, value, effect, taint.get("timeAdded")),
                           "taints must be unique by key and effect pair")
            continue
        seen.add((key, effect))


def _go_taint(key: str, value: str, effect: str, time_added: Any) -> GoValue:
    """`%#v` of a core.Taint: a nil TimeAdded prints `<nil>` (its promoted GoString panics on
    nil, which fmt reports so); a set one as time.Time's GoString in the server's zone."""
    added = GoValue("<nil>")
    if isinstance(time_added, str):
        try:
            t = datetime.fromisoformat(time_added.replace("Z", "+00:00"))
            added = GoValue(f"time.Date({t.year}, time.{t.strftime('%B')}, {t.day}, {t.hour}, {t.minute}, "
                            f"{t.second}, 0, time.Local)")
        except ValueError:
            pass
    return go_struct("core.Taint", [("Key", key), ("Value", value), ("Effect", effect), ("TimeAdded", added)])


CIDR_CHANGE = 'node updates may not change podCIDR except from "" to valid'


def validate_pod_cidrs(errs: Errors, obj: dict) -> None:
    """`ValidateNode`'s spec.podCIDRs: valid CIDRs, at most one per IP family."""
    cidrs = (obj.get("spec") or {}).get("podCIDRs") or []
    for i, value in enumerate(cidrs):
        for msg in cidr_errors(str(value)):
            errs.invalid(f"spec.podCIDRs[{i}]", value, msg)
    if len(cidrs) > 1:
        families = set()
        for value in cidrs:
            with contextlib.suppress(ValueError):
                families.add(ipaddress.ip_network(str(value), strict=False).version)
        if len(families) != 2 or len(cidrs) > 2:
            errs.invalid("spec.podCIDRs", cidrs, "may specify no more than one CIDR for each IP family")


def validate_node_update(errs: Errors, obj: dict, old: dict) -> None:
    """`ValidateNodeUpdate`: podCIDRs and providerID may only go from empty to a value (the
    controller manager assigns them); never changed or cleared afterwards."""
    spec, old_spec = obj.get("spec") or {}, old.get("spec") or {}
    old_cidrs, cidrs = old_spec.get("podCIDRs") or [], spec.get("podCIDRs") or []
    if old_cidrs:
        if len(old_cidrs) != len(cidrs):
            errs.forbidden("spec.podCIDRs", CIDR_CHANGE)
        else:
            for before, after in zip(old_cidrs, cidrs, strict=True):
                if before != after:
                    errs.forbidden("spec.podCIDRs", CIDR_CHANGE)
    old_provider = old_spec.get("providerID") or ""
    if old_provider and old_provider != (spec.get("providerID") or ""):
        errs.forbidden("spec.providerID", 'node updates may not change providerID except from "" to valid')


def _default_node(obj: dict) -> None:
    spec = dict_at(obj, "spec")
    # v1's podCIDR is podCIDRs[0] (the internal type has only podCIDRs; conversion keeps them in step)
    if spec.get("podCIDR") and not spec.get("podCIDRs"):
        spec["podCIDRs"] = [spec["podCIDR"]]
    elif spec.get("podCIDRs") and isinstance(spec["podCIDRs"], list):
        spec["podCIDR"] = spec["podCIDRs"][0]
    status = dict_at(obj, "status")
    if isinstance(status.get("capacity"), dict) and not status.get("allocatable"):
        status["allocatable"] = dict(status["capacity"])


def _node_roles(labels: Mapping[str, str]) -> list[str]:
    roles = set()
    for key, value in labels.items():
        if key.startswith("node-role.kubernetes.io/") and key[len("node-role.kubernetes.io/"):]:
            roles.add(key[len("node-role.kubernetes.io/"):])
        elif key == "kubernetes.io/role" and value:
            roles.add(value)
    return sorted(roles)


def _node_row(obj: dict, now: datetime) -> Row:
    status, spec = obj.get("status") or {}, obj.get("spec") or {}
    states = []
    for condition in status.get("conditions") or []:
        if isinstance(condition, dict) and condition.get("type") == "Ready":
            states = ["Ready" if condition.get("status") == "True" else "NotReady"]
    if not states:
        states = ["Unknown"]
    if spec.get("unschedulable"):
        states.append("SchedulingDisabled")
    info = status.get("nodeInfo") or {}
    addresses = [a for a in status.get("addresses") or [] if isinstance(a, dict)]

    def address(kind: str) -> str:
        return next((str(a.get("address")) for a in addresses if a.get("type") == kind), "<none>")

    roles = ",".join(_node_roles(get_path(obj, "metadata", "labels") or {})) or "<none>"
    return [name_of(obj), ",".join(states), roles, age_of(obj, now), info.get("kubeletVersion") or "",
            address("InternalIP"), address("ExternalIP"),
            info.get("osImage") or "<unknown>", info.get("kernelVersion") or "<unknown>",
            info.get("containerRuntimeVersion") or "<unknown>"]


RESOURCE = Resource("", "v1", "Node", "nodes", "io.k8s.api.core.v1.Node", namespaced=False,
                    short_names=("no",),
                    subresources=(STATUS,), field_selectors=("spec.unschedulable",))


class NodeStrategy(Strategy):
    """Nodes: taints, allocatable, printNode."""

    resource = RESOURCE

    def default(self, obj: dict) -> None:
        """status.allocatable defaults to the capacity."""
        _default_node(obj)

    def validate(self, errs: Errors, obj: dict) -> None:
        """`ValidateNode`'s taint and podCIDRs rules (create and update alike)."""
        validate_node_taints(errs, obj)
        validate_pod_cidrs(errs, obj)

    def validate_update(self, errs: Errors, obj: dict, old: dict) -> None:
        """`ValidateNodeUpdate`'s immutable podCIDRs and providerID."""
        super().validate_update(errs, obj, old)
        validate_node_update(errs, obj, old)

    def columns(self) -> list[dict[str, Any]]:
        """printNode's columns."""
        info = CORE + "NodeSystemInfo"
        return [name_col(),
                col("Status", description="The status of the node"),
                col("Roles", description="The roles of the node"),
                age_col(),
                col("Version", description=doc(info, "kubeletVersion")),
                col("Internal-IP", description=doc(CORE + "NodeStatus", "addresses"), priority=1),
                col("External-IP", description=doc(CORE + "NodeStatus", "addresses"), priority=1),
                col("OS-Image", description=doc(info, "osImage"), priority=1),
                col("Kernel-Version", description=doc(info, "kernelVersion"), priority=1),
                col("Container-Runtime", description=doc(info, "containerRuntimeVersion"), priority=1)]

    def row(self, obj: dict, now: datetime) -> Row:
        """printNode's cells."""
        return _node_row(obj, now)


STRATEGY = NodeStrategy()
