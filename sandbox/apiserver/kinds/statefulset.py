"""StatefulSets (apps/v1), the sandbox's `pkg/registry/apps/statefulset/strategy.go`.

Defaults (`SetDefaults_StatefulSet`: OrderedReady, RollingUpdate with partition 0, Retain/Retain
claim retention, one replica, history limit 10), validation (`ValidateStatefulSetSpec` and
`ValidateStatefulSetUpdate`: only replicas, ordinals, template, updateStrategy,
revisionHistoryLimit, persistentVolumeClaimRetentionPolicy and minReadySeconds may change),
printStatefulSet's columns and the `status` and `scale` subresources.

volumeClaimTemplates: the sandbox serves no PersistentVolumeClaims. A StatefulSet with claim
templates is accepted (tutorials use them) with a Warning saying so, and the controller gives each
pod an emptyDir volume named after the claim: the data lives as long as the pod, not the claim.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sandbox.apiserver.kinds.workload import WorkloadStrategy, ready_of, workload_cells
from sandbox.apiserver.printing import Row, age_col, age_of, col, get_path, name_col, name_of, template_cols
from sandbox.apiserver.strategy import SCALE, STATUS, Resource
from sandbox.apiserver.validation.apps import (
    validate_statefulset_spec,
    validate_statefulset_status,
    validate_statefulset_update,
)
from sandbox.apiserver.validation.defaulting import dict_at
from sandbox.apiserver.validation.fielderrors import Errors
from sandbox.apiserver.validation.podspec import default_template

NO_CLAIMS_WARNING = ("spec.volumeClaimTemplates: this sandbox serves no PersistentVolumeClaims; each pod "
                     "gets an emptyDir volume of that name instead, whose data does not outlive the pod")


def _default_statefulset(obj: dict) -> None:
    spec = dict_at(obj, "spec")
    spec.setdefault("podManagementPolicy", "OrderedReady")
    strategy = dict_at(spec, "updateStrategy")
    if not strategy.get("type"):
        strategy["type"] = "RollingUpdate"
        strategy.setdefault("rollingUpdate", {})
    rolling = strategy.get("rollingUpdate")
    if strategy.get("type") == "RollingUpdate" and isinstance(rolling, dict):
        rolling.setdefault("partition", 0)
    retention = dict_at(spec, "persistentVolumeClaimRetentionPolicy")
    retention.setdefault("whenDeleted", "Retain")
    retention.setdefault("whenScaled", "Retain")
    spec.setdefault("replicas", 1)
    spec.setdefault("revisionHistoryLimit", 10)
    default_template(spec)
    for claim in spec.get("volumeClaimTemplates") or []:
        if isinstance(claim, dict):
            cspec = dict_at(claim, "spec")
            cspec.setdefault("volumeMode", "Filesystem")
            dict_at(claim, "status").setdefault("phase", "Pending")
    dict_at(obj, "status").setdefault("replicas", 0)
    obj["status"].setdefault("availableReplicas", 0)


def _statefulset_row(obj: dict, now: datetime) -> Row:
    _, status, desired, names, images = workload_cells(obj)
    return [name_of(obj), ready_of(status, desired), age_of(obj, now), names, images]


RESOURCE = Resource("apps", "v1", "StatefulSet", "statefulsets", "io.k8s.api.apps.v1.StatefulSet",
                    short_names=("sts",), categories=("all",), subresources=(STATUS, SCALE), generation=True)


class StatefulSetStrategy(WorkloadStrategy):
    """StatefulSets: defaults, `ValidateStatefulSet`, printStatefulSet."""

    resource = RESOURCE

    def default(self, obj: dict) -> None:
        """`SetDefaults_StatefulSet` and the pod template's defaults."""
        _default_statefulset(obj)

    def validate_spec(self, errs: Errors, spec: dict) -> None:
        """`ValidateStatefulSetSpec`."""
        validate_statefulset_spec(errs, spec)

    def validate_status(self, errs: Errors, obj: dict) -> None:
        """`ValidateStatefulSetStatus`."""
        validate_statefulset_status(errs, obj)

    def validate_update(self, errs: Errors, obj: dict, old: dict) -> None:
        """`ValidateStatefulSetUpdate`: the rest of the spec is immutable."""
        validate_statefulset_update(errs, obj, old)

    def warnings(self, obj: dict, old: dict | None) -> list[str]:
        """Claim templates are backed by emptyDir volumes here (see the module docstring)."""
        claims = get_path(obj, "spec", "volumeClaimTemplates")
        if claims and (old is None or get_path(old, "spec", "volumeClaimTemplates") != claims):
            return [NO_CLAIMS_WARNING]
        return []

    def columns(self) -> list[dict[str, Any]]:
        """printStatefulSet's columns."""
        return [name_col(),
                col("Ready", description="Number of the pod with ready state"),
                age_col(),
                *template_cols()]

    def row(self, obj: dict, now: datetime) -> Row:
        """printStatefulSet's cells."""
        return _statefulset_row(obj, now)


STRATEGY = StatefulSetStrategy()
