"""Namespaces (core/v1), the sandbox's `pkg/registry/core/namespace`.

Names are DNS-1123 labels; defaults add the `kubernetes.io/metadata.name` label, the
`kubernetes` finalizer and phase Active; deletion always goes through phase Terminating (the
garbage collector empties the namespace, then removes it); DELETE answers with the namespace.
The namespaces every cluster has are created at start-up, and each new namespace gets its
`default` ServiceAccount at once — the ServiceAccount controller's job, done here too so that
a pod created right after its namespace finds it (the ServiceAccount admission refuses pods
without one); the controller itself (`sandbox/controllers/serviceaccounts.py`) recreates it
when it is deleted.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from sandbox.apiserver.kinds import serviceaccount
from sandbox.apiserver.printing import Row, age_col, age_of, col, get_path, name_col, name_of
from sandbox.apiserver.strategy import STATUS, Resource, Strategy
from sandbox.apiserver.validation.defaulting import dict_at
from sandbox.apiserver.validation.fielderrors import Errors
from sandbox.apiserver.validation.names import qualified_name_errors

if TYPE_CHECKING:
    from sandbox.apiserver.registry import Registry

BOOT_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")


def _validate_namespace(errs: Errors, obj: dict) -> None:
    for i, fin in enumerate(((obj.get("spec") or {}).get("finalizers")) or []):
        if not isinstance(fin, str) or qualified_name_errors(fin):
            errs.invalid(f"spec.finalizers[{i}]", fin, "name is neither a standard finalizer name nor is it "
                                                       "fully qualified")
    phase = (obj.get("status") or {}).get("phase")
    if phase not in (None, "Active", "Terminating"):
        errs.not_supported("status.phase", phase, ("Active", "Terminating"))


def _default_namespace(obj: dict) -> None:
    meta = dict_at(obj, "metadata")
    name = meta.get("name")
    if isinstance(name, str) and name:
        dict_at(meta, "labels")["kubernetes.io/metadata.name"] = name
    spec = dict_at(obj, "spec")
    spec.setdefault("finalizers", ["kubernetes"])
    dict_at(obj, "status").setdefault("phase", "Active")


def _namespace_row(obj: dict, now: datetime) -> Row:
    return [name_of(obj), get_path(obj, "status", "phase") or "", age_of(obj, now)]


RESOURCE = Resource("", "v1", "Namespace", "namespaces", "io.k8s.api.core.v1.Namespace", namespaced=False,
                    short_names=("ns",), subresources=(STATUS,),
                    verbs=("create", "delete", "get", "list", "patch", "update", "watch"),
                    field_selectors=("status.phase",))


class NamespaceStrategy(Strategy):
    """Namespaces: label names, defaults, two-phase deletion, boot namespaces."""

    resource = RESOURCE
    name_rule = "label"
    return_deleted_object = True
    deletion_always_pending = True

    def default(self, obj: dict) -> None:
        """The name label, the `kubernetes` finalizer, phase Active."""
        _default_namespace(obj)

    def validate(self, errs: Errors, obj: dict) -> None:
        """`ValidateNamespace`: finalizer names and the phase."""
        _validate_namespace(errs, obj)

    def columns(self) -> list[dict[str, Any]]:
        """printNamespace's columns."""
        return [name_col(), col("Status", description="The status of the namespace"), age_col()]

    def row(self, obj: dict, now: datetime) -> Row:
        """printNamespace's cells."""
        return _namespace_row(obj, now)

    async def bootstrap(self, registry: Registry) -> None:
        """Create the namespaces (and their default ServiceAccounts) every cluster has."""
        for name in BOOT_NAMESPACES:
            await registry.ensure(RESOURCE, "", {"metadata": {"name": name}})

    async def after_create(self, registry: Registry, obj: dict) -> None:
        """The ServiceAccount controller's job: every namespace has a `default` ServiceAccount."""
        default = {"metadata": {"name": "default"}}
        await registry.ensure(serviceaccount.RESOURCE, obj["metadata"]["name"], default)

    def mark_terminating(self, obj: dict) -> None:
        """A namespace being deleted is in phase Terminating until it is empty."""
        obj.setdefault("status", {})["phase"] = "Terminating"


STRATEGY = NamespaceStrategy()
