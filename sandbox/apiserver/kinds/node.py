"""Nodes (core/v1): taint validation, allocatable defaulted from capacity, printNode's columns
(STATUS from the Ready condition and `spec.unschedulable`, ROLES from the node-role labels)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sandbox.apiserver.printing import CORE, Row, age_col, age_of, col, doc, get_path, name_col, name_of
from sandbox.apiserver.strategy import STATUS, Resource, Strategy
from sandbox.apiserver.validation.defaulting import dict_at
from sandbox.apiserver.validation.fielderrors import Errors, GoValue, go_struct
from sandbox.apiserver.validation.names import label_value_errors, qualified_name_errors
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
        """`ValidateNode`'s taint rules (create and update alike)."""
        validate_node_taints(errs, obj)

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
