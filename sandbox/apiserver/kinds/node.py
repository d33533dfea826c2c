"""Nodes (core/v1): taint validation, allocatable defaulted from capacity, printNode's columns
(STATUS from the Ready condition and `spec.unschedulable`, ROLES from the node-role labels)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sandbox.apiserver.printing import CORE, Row, age_col, age_of, col, doc, get_path, name_col, name_of
from sandbox.apiserver.strategy import STATUS, Resource, Strategy
from sandbox.apiserver.validation.defaulting import dict_at
from sandbox.apiserver.validation.fielderrors import Errors


def _validate_node(errs: Errors, obj: dict) -> None:
    spec = obj.get("spec") or {}
    for i, taint in enumerate(spec.get("taints") or []):
        path = f"spec.taints[{i}]"
        if not isinstance(taint, dict):
            errs.invalid(path, taint, "must be a taint")
            continue
        if not taint.get("key"):
            errs.required(f"{path}.key")
        effect = taint.get("effect")
        if effect not in ("NoSchedule", "PreferNoSchedule", "NoExecute"):
            errs.not_supported(f"{path}.effect", effect, ("NoExecute", "NoSchedule", "PreferNoSchedule"))


def _default_node(obj: dict) -> None:
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
        """Taints need a key and a known effect."""
        _validate_node(errs, obj)

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
