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

from sandbox.apiserver.printing import (
    Row,
    age_col,
    age_of,
    as_int,
    col,
    containers_cells,
    get_path,
    name_col,
    name_of,
    template_cols,
)
from sandbox.apiserver.strategy import SCALE, STATUS, Resource, Strategy
from sandbox.apiserver.validation.apps import (
    is_zero,
    validate_int_or_percent,
    validate_replicated,
    validate_status_counts,
)
from sandbox.apiserver.validation.defaulting import dict_at
from sandbox.apiserver.validation.fielderrors import Errors
from sandbox.apiserver.validation.names import dns1123_label_errors, is_int
from sandbox.apiserver.validation.podspec import default_template

MUTABLE_SPEC = ("replicas", "ordinals", "template", "updateStrategy", "revisionHistoryLimit",
                "persistentVolumeClaimRetentionPolicy", "minReadySeconds")
STATUS_COUNTS = ("replicas", "readyReplicas", "currentReplicas", "updatedReplicas", "availableReplicas",
                 "observedGeneration", "collisionCount")
FORBIDDEN_UPDATE = ("updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', "
                    "'updateStrategy', 'revisionHistoryLimit', 'persistentVolumeClaimRetentionPolicy' and "
                    "'minReadySeconds' are forbidden")
NO_CLAIMS_WARNING = ("spec.volumeClaimTemplates: this sandbox serves no PersistentVolumeClaims; each pod "
                     "gets an emptyDir volume of that name instead, whose data does not outlive the pod")


def _validate_nonnegative(errs: Errors, value: Any, path: str) -> None:
    if value is not None and (not is_int(value) or value < 0):
        errs.invalid(path, value, "must be greater than or equal to 0")


def _with_claim_volumes(spec: dict) -> dict:
    """The spec whose template also has a volume per claim template, so that volumeMounts naming a
    claim validate (kube-apiserver checks the union of volumes and claims the same way)."""
    claims = [c.get("metadata", {}).get("name") for c in spec.get("volumeClaimTemplates") or []
              if isinstance(c, dict) and isinstance(c.get("metadata"), dict)]
    template = spec.get("template")
    if not claims or not isinstance(template, dict) or not isinstance(template.get("spec"), dict):
        return spec
    tspec = template["spec"]
    volumes = tspec.get("volumes") if isinstance(tspec.get("volumes"), list) else []
    have = {v.get("name") for v in volumes if isinstance(v, dict)}
    extra = [{"name": name, "emptyDir": {}} for name in claims if name and name not in have]
    return {**spec, "template": {**template, "spec": {**tspec, "volumes": [*volumes, *extra]}}}


def _validate_statefulset(errs: Errors, obj: dict) -> None:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        errs.required("spec.selector")
        return
    policy = spec.get("podManagementPolicy")
    if not policy:
        errs.required("spec.podManagementPolicy")
    elif policy not in ("OrderedReady", "Parallel"):
        errs.invalid("spec.podManagementPolicy", policy, "must be 'OrderedReady' or 'Parallel'")
    strategy = spec.get("updateStrategy") or {}
    stype = strategy.get("type") if isinstance(strategy, dict) else None
    rolling = strategy.get("rollingUpdate") if isinstance(strategy, dict) else None
    if not stype:
        errs.required("spec.updateStrategy")
    elif stype == "OnDelete":
        if rolling is not None:
            errs.invalid("spec.updateStrategy.rollingUpdate", rolling,
                         "only allowed for updateStrategy 'RollingUpdate'")
    elif stype == "RollingUpdate":
        if isinstance(rolling, dict):
            path = "spec.updateStrategy.rollingUpdate"
            _validate_nonnegative(errs, rolling.get("partition"), f"{path}.partition")
            unavailable = rolling.get("maxUnavailable")
            if unavailable is not None:
                path += ".maxUnavailable"
                validate_int_or_percent(errs, unavailable, path)
                if is_zero(unavailable):
                    errs.invalid(path, unavailable, "cannot be 0")
    else:
        errs.invalid("spec.updateStrategy", strategy, "must be 'RollingUpdate' or 'OnDelete'")
    ordinals = spec.get("ordinals")
    if isinstance(ordinals, dict):
        _validate_nonnegative(errs, ordinals.get("start"), "spec.ordinals.start")
    validate_replicated(errs, _with_claim_volumes(spec), workload="StatefulSet")
    _validate_nonnegative(errs, spec.get("revisionHistoryLimit"), "spec.revisionHistoryLimit")
    service = spec.get("serviceName")
    if service:
        for message in dns1123_label_errors(str(service)):
            errs.invalid("spec.serviceName", service, message)
    for i, claim in enumerate(spec.get("volumeClaimTemplates") or []):
        path = f"spec.volumeClaimTemplates[{i}]"
        name = get_path(claim, "metadata", "name") if isinstance(claim, dict) else None
        if not name:
            errs.required(f"{path}.metadata.name", "name or generateName is required")
        cspec = claim.get("spec") if isinstance(claim, dict) else None
        cspec = cspec if isinstance(cspec, dict) else {}
        if not cspec.get("accessModes"):
            errs.required(f"{path}.spec.accessModes", "at least 1 access mode is required")
        if not get_path(cspec, "resources", "requests", "storage"):
            errs.required(f"{path}.spec.resources[storage]")
    policy_retain = spec.get("persistentVolumeClaimRetentionPolicy")
    if isinstance(policy_retain, dict):
        for key in ("whenDeleted", "whenScaled"):
            value = policy_retain.get(key)
            if value not in ("Retain", "Delete"):
                errs.not_supported(f"spec.persistentVolumeClaimRetentionPolicy.{key}", value,
                                   ("Retain", "Delete"))


def _validate_statefulset_status(errs: Errors, obj: dict) -> None:
    validate_status_counts(errs, obj, STATUS_COUNTS)
    status = obj.get("status")
    if not isinstance(status, dict):
        return
    replicas = status.get("replicas")
    for key in ("readyReplicas", "currentReplicas", "updatedReplicas"):
        value = status.get(key)
        if is_int(value) and is_int(replicas) and value > replicas:
            errs.invalid(f"status.{key}", value, "cannot be greater than status.replicas")
    available, ready = status.get("availableReplicas"), status.get("readyReplicas")
    if is_int(available) and is_int(ready) and available > ready:
        errs.invalid("status.availableReplicas", available, "cannot be greater than status.readyReplicas")


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
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    names, images = containers_cells(get_path(spec, "template", "spec"))
    desired = spec.get("replicas")
    desired = 1 if desired is None else as_int(desired)
    return [name_of(obj), f"{as_int(status.get('readyReplicas'))}/{desired}", age_of(obj, now), names, images]


RESOURCE = Resource("apps", "v1", "StatefulSet", "statefulsets", "io.k8s.api.apps.v1.StatefulSet",
                    short_names=("sts",), categories=("all",), subresources=(STATUS, SCALE), generation=True)


class StatefulSetStrategy(Strategy):
    """StatefulSets: defaults, validation, printStatefulSet."""

    resource = RESOURCE
    reset_status_on_create = True

    def default(self, obj: dict) -> None:
        """`SetDefaults_StatefulSet` and the pod template's defaults."""
        _default_statefulset(obj)

    def validate(self, errs: Errors, obj: dict) -> None:
        """`ValidateStatefulSet` (spec and status)."""
        _validate_statefulset(errs, obj)
        _validate_statefulset_status(errs, obj)

    def validate_update(self, errs: Errors, obj: dict, old: dict) -> None:
        """`ValidateStatefulSetUpdate`: the rest of the spec is immutable."""
        new_spec, old_spec = obj.get("spec") or {}, old.get("spec") or {}
        if not isinstance(new_spec, dict) or not isinstance(old_spec, dict):
            return
        strip = lambda s: {k: v for k, v in s.items() if k not in MUTABLE_SPEC}  # noqa: E731
        if strip(new_spec) != strip(old_spec):
            errs.forbidden("spec", FORBIDDEN_UPDATE)

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
