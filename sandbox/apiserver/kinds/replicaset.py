"""ReplicaSets (apps/v1), the sandbox's `pkg/registry/apps/replicaset/strategy.go`: defaults,
the replicated-workload validation with an immutable selector, printReplicaSet's columns, the
`status` and `scale` subresources and the `status.replicas` field selector."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sandbox.apiserver.printing import (
    Row,
    age_col,
    age_of,
    as_int,
    col,
    containers_cells,
    doc,
    format_selector,
    get_path,
    name_col,
    name_of,
    template_cols,
)
from sandbox.apiserver.strategy import SCALE, STATUS, Resource, Strategy
from sandbox.apiserver.validation.apps import (
    validate_replicated,
    validate_selector_immutable,
    validate_status_counts,
)
from sandbox.apiserver.validation.defaulting import dict_at
from sandbox.apiserver.validation.fielderrors import Errors
from sandbox.apiserver.validation.podspec import default_template

APPS = "io.k8s.api.apps.v1."


def _validate_replicaset(errs: Errors, obj: dict) -> None:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        errs.required("spec.selector")
        return
    validate_replicated(errs, spec)


def _default_replicaset(obj: dict) -> None:
    spec = dict_at(obj, "spec")
    spec.setdefault("replicas", 1)
    default_template(spec)
    dict_at(obj, "status").setdefault("replicas", 0)


def _replicaset_row(obj: dict, now: datetime) -> Row:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    names, images = containers_cells(get_path(spec, "template", "spec"))
    desired = spec.get("replicas")
    return [name_of(obj), 1 if desired is None else as_int(desired), as_int(status.get("replicas")),
            as_int(status.get("readyReplicas")), age_of(obj, now), names, images,
            format_selector(spec.get("selector")) or "<none>"]


RESOURCE = Resource("apps", "v1", "ReplicaSet", "replicasets", "io.k8s.api.apps.v1.ReplicaSet",
                    short_names=("rs",), categories=("all",), subresources=(STATUS, SCALE), generation=True,
                    field_selectors=("status.replicas",))


class ReplicaSetStrategy(Strategy):
    """ReplicaSets: defaults, validation, printReplicaSet."""

    resource = RESOURCE
    reset_status_on_create = True

    def default(self, obj: dict) -> None:
        """`SetDefaults_ReplicaSet` and the pod template's defaults."""
        _default_replicaset(obj)

    def validate(self, errs: Errors, obj: dict) -> None:
        """`ValidateReplicaSet` (spec and status counts)."""
        _validate_replicaset(errs, obj)
        validate_status_counts(errs, obj)

    def validate_update(self, errs: Errors, obj: dict, old: dict) -> None:
        """The selector is immutable in apps/v1."""
        validate_selector_immutable(errs, obj, old)

    def columns(self) -> list[dict[str, Any]]:
        """printReplicaSet's columns."""
        return [name_col(),
                col("Desired", "integer", doc(APPS + "ReplicaSetSpec", "replicas")),
                col("Current", "integer", doc(APPS + "ReplicaSetStatus", "replicas")),
                col("Ready", "integer", doc(APPS + "ReplicaSetStatus", "readyReplicas")),
                age_col(),
                *template_cols(doc(APPS + "ReplicaSetSpec", "selector"))]

    def row(self, obj: dict, now: datetime) -> Row:
        """printReplicaSet's cells."""
        return _replicaset_row(obj, now)


STRATEGY = ReplicaSetStrategy()
