"""The strategy shape the replicated workloads share (`pkg/registry/apps/*/strategy.go`), written once.

Deployments, ReplicaSets, DaemonSets and StatefulSets each had the same strategy: a create ignores
the status it is sent (`PrepareForCreate`; the generation is the registry's, bumped on spec
changes), `Validate` runs the kind's spec rules (from `validation/apps.py`) and non-negative status
counts, `ValidateUpdate` keeps the selector. A kind module now names its spec rules, its `status_counts`
(and what a missing spec is told), and keeps its defaults and its Table; `workload_cells` is the part
of its row they all print alike.
"""

from __future__ import annotations

from typing import Any, ClassVar

from sandbox.apiserver.printing import as_int, containers_cells, get_path
from sandbox.apiserver.strategy import Strategy
from sandbox.apiserver.validation.apps import (
    REPLICA_COUNTS,
    validate_replicated,
    validate_selector_immutable,
    validate_status_counts,
)
from sandbox.apiserver.validation.fielderrors import Errors

APPS = "io.k8s.api.apps.v1."  # the OpenAPI prefix of the apps/v1 definitions the columns document


class WorkloadStrategy(Strategy):
    """A replicated workload's create/update rules; subclasses name their own."""

    reset_status_on_create = True
    status_counts: ClassVar[tuple[str, ...]] = REPLICA_COUNTS

    def validate(self, errs: Errors, obj: dict) -> None:
        """`Validate<Kind>`: the spec's rules, then the status counts."""
        spec = obj.get("spec")
        if isinstance(spec, dict):
            self.validate_spec(errs, spec)
        else:
            self.missing_spec(errs)
        self.validate_status(errs, obj)

    def validate_spec(self, errs: Errors, spec: dict) -> None:
        """The kind's spec rules (`validation/apps.py`); the shared replicated ones by default."""
        validate_replicated(errs, spec)

    def missing_spec(self, errs: Errors) -> None:
        """What an object without a spec (or not an object) is told."""
        errs.required("spec.selector")

    def validate_status(self, errs: Errors, obj: dict) -> None:
        """The status counts are non-negative."""
        validate_status_counts(errs, obj, self.status_counts)

    def validate_update(self, errs: Errors, obj: dict, old: dict) -> None:
        """The selector is immutable in apps/v1."""
        validate_selector_immutable(errs, obj, old)


def workload_cells(obj: dict) -> tuple[dict, dict, int, str, str]:
    """spec, status, the desired replicas (1 when unset) and the template's CONTAINERS and IMAGES
    cells of a workload's row."""
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    names, images = containers_cells(get_path(spec, "template", "spec"))
    desired = spec.get("replicas")
    return spec, status, 1 if desired is None else as_int(desired), names, images


def ready_of(status: dict, desired: Any) -> str:
    """The READY cell: ready/desired replicas."""
    return f"{as_int(status.get('readyReplicas'))}/{desired}"
