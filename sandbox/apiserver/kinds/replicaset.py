"""ReplicaSets (apps/v1), the sandbox's `pkg/registry/apps/replicaset/strategy.go`: defaults,
the replicated-workload validation with an immutable selector, printReplicaSet's columns, the
`status` and `scale` subresources and the `status.replicas` field selector."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sandbox.apiserver.kinds.workload import APPS, WorkloadStrategy, workload_cells
from sandbox.apiserver.printing import (
    Row,
    age_col,
    age_of,
    as_int,
    col,
    doc,
    format_selector,
    name_col,
    name_of,
    template_cols,
)
from sandbox.apiserver.strategy import SCALE, STATUS, Resource
from sandbox.apiserver.validation.defaulting import dict_at
from sandbox.apiserver.validation.podspec import default_template


def _default_replicaset(obj: dict) -> None:
    spec = dict_at(obj, "spec")
    spec.setdefault("replicas", 1)
    default_template(spec)
    dict_at(obj, "status").setdefault("replicas", 0)


def _replicaset_row(obj: dict, now: datetime) -> Row:
    spec, status, desired, names, images = workload_cells(obj)
    return [name_of(obj), desired, as_int(status.get("replicas")),
            as_int(status.get("readyReplicas")), age_of(obj, now), names, images,
            format_selector(spec.get("selector")) or "<none>"]


RESOURCE = Resource("apps", "v1", "ReplicaSet", "replicasets", "io.k8s.api.apps.v1.ReplicaSet",
                    short_names=("rs",), categories=("all",), subresources=(STATUS, SCALE), generation=True,
                    field_selectors=("status.replicas",))


class ReplicaSetStrategy(WorkloadStrategy):
    """ReplicaSets: defaults, `ValidateReplicaSet` (the shared rules), printReplicaSet."""

    resource = RESOURCE

    def default(self, obj: dict) -> None:
        """`SetDefaults_ReplicaSet` and the pod template's defaults."""
        _default_replicaset(obj)

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
