"""v1 ComponentStatus (`kubectl get componentstatuses`, `kubectl get cs`): the control plane's
health as kube-apiserver's `pkg/registry/core/componentstatus` reports it, deprecated since 1.19
(every answer carries the Warning "v1 ComponentStatus is deprecated in v1.19+", which kubectl
prints).

Computed per request, never stored (get and list only), one object per component:
``scheduler``, ``controller-manager`` and ``etcd-0``, each with one ``Healthy`` condition.
kube-apiserver probes the scheduler's and controller manager's /healthz ports; the sandbox's
components serve none, so their health is their leader-election Lease
(`sandbox/leaderelection.py`): Healthy with message ``ok`` while ``kube-system/kube-scheduler``
(``kube-controller-manager``) is held and was renewed within its leaseDurationSeconds, otherwise
Unhealthy (status Unknown, as a failed probe gives) with the reason in ``error``. ``etcd-0`` is
the API server's own store, Healthy whenever it answers. Table: printComponentStatus's NAME
STATUS MESSAGE ERROR.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sandbox.apiserver.computed import ComputedStrategy
from sandbox.apiserver.health import etcd_check
from sandbox.apiserver.printing import col, name_col, name_of
from sandbox.apiserver.strategy import Resource
from sandbox.leaderelection import CONTROLLER_MANAGER_LEASE, SCHEDULER_LEASE
from sandbox.leaderelection import NAMESPACE as LEASE_NAMESPACE
from sandbox.meta import parse_time

if TYPE_CHECKING:
    from sandbox.apiserver.server import ApiServer

LEASE_KEY = "coordination.k8s.io/leases"
# component name -> the Lease its leader holds
LEASED = (("scheduler", SCHEDULER_LEASE), ("controller-manager", CONTROLLER_MANAGER_LEASE))

RESOURCE = Resource("", "v1", "ComponentStatus", "componentstatuses", "io.k8s.api.core.v1.ComponentStatus",
                    namespaced=False, short_names=("cs",), verbs=("get", "list"),
                    deprecated="v1 ComponentStatus is deprecated in v1.19+")


def component_status(name: str, error: str = "") -> dict[str, Any]:
    """One ComponentStatus: Healthy "ok", or Unknown with the error."""
    condition = ({"type": "Healthy", "status": "True", "message": "ok"} if not error
                 else {"type": "Healthy", "status": "Unknown", "error": error})
    return {"kind": "ComponentStatus", "apiVersion": "v1", "metadata": {"name": name},
            "conditions": [condition]}


def lease_problem(lease: dict[str, Any] | None, lease_name: str, now: float) -> str:
    """Why a component's Lease does not show it alive, or "" when it does."""
    where = f"{LEASE_NAMESPACE}/{lease_name}"
    if lease is None:
        return f"no leader: the Lease {where} does not exist"
    spec = lease.get("spec") or {}
    if not spec.get("holderIdentity"):
        return f"no leader: the Lease {where} is not held"
    renewed = parse_time(spec.get("renewTime"))
    duration = int(spec.get("leaseDurationSeconds") or 0)
    if renewed is None:
        return f"no leader: the Lease {where} has no renewTime"
    age = now - renewed
    if age > duration:
        return (f"no leader: the Lease {where} was last renewed {age:.0f}s ago "
                f"(leaseDurationSeconds {duration})")
    return ""


class ComponentStatusStrategy(ComputedStrategy):
    """ComponentStatuses from the components' Leases and the store."""

    resource = RESOURCE

    def items(self, server: ApiServer) -> list[dict[str, Any]]:
        """scheduler, controller-manager, etcd-0."""
        now = time.time()
        out = []
        for name, lease_name in LEASED:
            entry = server.store.get(LEASE_KEY, LEASE_NAMESPACE, lease_name)
            out.append(component_status(name, lease_problem(entry.obj if entry else None, lease_name, now)))
        out.append(component_status("etcd-0", etcd_check(server) or ""))
        return out

    def columns(self) -> list[dict[str, Any]]:
        """printers.go's componentStatusColumnDefinitions."""
        return [name_col(), col("Status", description="Status of the component conditions"),
                col("Message", description="Message of the component conditions"),
                col("Error", description="Error of the component conditions")]

    def row(self, obj: dict, now: datetime) -> list[Any]:
        """printComponentStatus: Healthy only when the Healthy condition is True."""
        status, message, error = "Unknown", "", ""
        for condition in obj.get("conditions") or []:
            if condition.get("type") == "Healthy":
                status = "Healthy" if condition.get("status") == "True" else "Unhealthy"
                message, error = condition.get("message", ""), condition.get("error", "")
                break
        return [name_of(obj), status, message, error]


STRATEGY = ComponentStatusStrategy()
