"""`pkg/apis/apps/validation`: the rules of the replicated workloads, each written once.

What they share: replicas and minReadySeconds, the selector against the template's labels, an
immutable selector, non-negative counts (`ValidateNonnegativeField`, also the Job's), int-or-percent
values (a Deployment's maxSurge/maxUnavailable, a PodDisruptionBudget's, a DaemonSet's or
StatefulSet's rolling update). Each kind's own spec rules follow (`ValidateDeploymentSpec`,
`ValidateDaemonSetSpec`, `ValidateStatefulSetSpec` / `ValidateStatefulSetUpdate` /
`ValidateStatefulSetStatus`); the kinds' strategies (`kinds/workload.py`) only call them."""

from __future__ import annotations

import re
from typing import Any

from sandbox.apiserver.validation.fielderrors import Errors
from sandbox.apiserver.validation.labels import validate_label_selector
from sandbox.apiserver.validation.names import dns1123_label_errors, is_int
from sandbox.apiserver.validation.podspec import validate_pod_template
from sandbox.meta import selector_matches


def validate_int_or_percent(errs: Errors, value: Any, path: str) -> None:
    """`ValidatePositiveIntOrPercent` and `IsNotMoreThan100Percent`."""
    if isinstance(value, str):
        match = re.fullmatch(r"([0-9]+)%", value)
        if not match:
            errs.invalid(path, value, "a valid percent string must be a numeric string followed by an ending "
                                      "'%' (e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')")
        elif int(match.group(1)) > 100:
            errs.invalid(path, value, "must not be greater than 100%")
    elif is_int(value):
        if value < 0:
            errs.invalid(path, value, "must be greater than or equal to 0")
    elif value is not None:
        errs.invalid(path, value, "must be an integer or percentage (e.g '5%')")


def validate_nonnegative(errs: Errors, fields: Any, path: str, *keys: str, typed: bool = False) -> None:
    """`ValidateNonnegativeField` for each of ``keys`` set in ``fields``; ``typed``: a value that is
    not an integer says so instead (the fields decoded as int32/int64 upstream)."""
    if not isinstance(fields, dict):
        return
    for key in keys:
        value = fields.get(key)
        if value is None:
            continue
        if typed and not is_int(value):
            errs.invalid(f"{path}.{key}", value, "must be an integer")
        elif not is_int(value) or value < 0:
            errs.invalid(f"{path}.{key}", value, "must be greater than or equal to 0")


def selector_matches_labels(selector: Any, labels: Any) -> bool:
    """The selector selects the labels (a selector too broken to evaluate was reported already)."""
    try:
        return selector_matches(selector, labels)
    except (AttributeError, TypeError):
        return True


def is_zero(value: Any) -> bool:
    """`getIntOrPercentValue(v) == 0` (0 or "0%")."""
    return value == 0 or (isinstance(value, str) and re.fullmatch(r"0+%", value) is not None)


def validate_replicated(errs: Errors, spec: dict, *, workload: str = "ReplicaSet") -> None:
    """Rules the replicated workloads share: replicas, selector vs template. ``workload`` names
    the kind in its messages (ReplicaSets and Deployments say "for deployment", as the real ones
    do); a DaemonSet's missing selector only shows as a template that it does not match."""
    validate_nonnegative(errs, spec, "spec", "replicas", "minReadySeconds", typed=True)
    selector = spec.get("selector")
    template = spec.get("template")
    empty_for = {"StatefulSet": "statefulset", "DaemonSet": "daemonset"}.get(workload, "deployment")
    if selector is None:
        if workload != "DaemonSet":
            errs.required("spec.selector")
    elif isinstance(selector, dict):
        validate_label_selector(errs, selector, "spec.selector")
        empty = not (selector.get("matchLabels") or selector.get("matchExpressions"))
        if empty:
            errs.invalid("spec.selector", selector, f"empty selector is invalid for {empty_for}")
    else:
        validate_label_selector(errs, selector, "spec.selector")
    if template is None:
        errs.required("spec.template")
        return
    labels = (template.get("metadata") or {}).get("labels") or {} if isinstance(template, dict) else {}
    selecting = isinstance(selector, dict) and bool(selector.get("matchLabels")
                                                    or selector.get("matchExpressions"))
    if (selector is None and workload == "DaemonSet") or (
            selecting and isinstance(labels, dict) and not selector_matches_labels(selector, labels)):
        errs.invalid("spec.template.metadata.labels", labels, "`selector` does not match template `labels`")
    validate_pod_template(errs, template, "spec.template", workload=workload)
    tspec = template.get("spec") if isinstance(template, dict) else None
    if isinstance(tspec, dict) and tspec.get("restartPolicy") not in (None, "Always"):
        errs.not_supported("spec.template.spec.restartPolicy", tspec.get("restartPolicy"), ("Always",))


def validate_selector_immutable(errs: Errors, obj: dict, old: dict) -> None:
    """apps/v1 selectors may not change."""
    new_sel = (obj.get("spec") or {}).get("selector")
    old_sel = (old.get("spec") or {}).get("selector")
    if old_sel is not None and new_sel != old_sel:
        errs.invalid("spec.selector", new_sel, "field is immutable")


REPLICA_COUNTS = ("replicas", "readyReplicas", "availableReplicas", "updatedReplicas", "fullyLabeledReplicas",
                  "unavailableReplicas", "terminatingReplicas", "observedGeneration")


def validate_status_counts(errs: Errors, obj: dict, keys: tuple[str, ...] = REPLICA_COUNTS) -> None:
    """The status counts are never negative."""
    validate_nonnegative(errs, obj.get("status"), "status", *keys)



def _path(obj: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


# ----- Deployments ------------------------------------------------------------------------------
def validate_deployment_spec(errs: Errors, spec: dict) -> None:
    """`ValidateDeploymentSpec`: the replicated rules (a Deployment's template is a ReplicaSet's),
    the strategy with its int-or-percent surge/unavailable, history limit, progress deadline."""
    validate_replicated(errs, spec)
    strategy = spec.get("strategy") or {}
    if isinstance(strategy, dict):
        stype = strategy.get("type")
        rolling = strategy.get("rollingUpdate")
        if stype == "Recreate":
            if rolling is not None:
                errs.forbidden("spec.strategy.rollingUpdate",
                               "may not be specified when strategy `type` is 'Recreate'")
        elif stype == "RollingUpdate":
            if isinstance(rolling, dict):
                surge, unavailable = rolling.get("maxSurge"), rolling.get("maxUnavailable")
                validate_int_or_percent(errs, surge, "spec.strategy.rollingUpdate.maxSurge")
                validate_int_or_percent(errs, unavailable, "spec.strategy.rollingUpdate.maxUnavailable")
                if is_zero(surge) and is_zero(unavailable):
                    errs.invalid("spec.strategy.rollingUpdate.maxUnavailable", unavailable,
                                 "may not be 0 when `maxSurge` is 0")
        elif stype in (None, ""):
            errs.required("spec.strategy.type")
        else:
            errs.not_supported("spec.strategy.type", stype, ("Recreate", "RollingUpdate"))
    validate_nonnegative(errs, spec, "spec", "revisionHistoryLimit")
    deadline = spec.get("progressDeadlineSeconds")
    if deadline is not None:
        if not is_int(deadline) or deadline < 0:
            validate_nonnegative(errs, spec, "spec", "progressDeadlineSeconds")
        elif is_int(spec.get("minReadySeconds")) and deadline <= spec["minReadySeconds"]:
            errs.invalid("spec.progressDeadlineSeconds", deadline, "must be greater than minReadySeconds")


# ----- DaemonSets -------------------------------------------------------------------------------
DAEMONSET_STATUS_COUNTS = ("currentNumberScheduled", "numberMisscheduled", "desiredNumberScheduled",
                           "numberReady", "updatedNumberScheduled", "numberAvailable", "numberUnavailable",
                           "observedGeneration", "collisionCount")


def validate_daemonset_spec(errs: Errors, spec: dict) -> None:
    """`ValidateDaemonSetSpec`, `ValidateDaemonSetUpdateStrategy`, `ValidateRollingUpdateDaemonSet`."""
    validate_replicated(errs, spec, workload="DaemonSet")
    validate_nonnegative(errs, spec, "spec", "templateGeneration", "revisionHistoryLimit")
    strategy = spec.get("updateStrategy")
    if not isinstance(strategy, dict):
        return
    stype = strategy.get("type")
    if stype == "RollingUpdate":
        rolling = strategy.get("rollingUpdate")
        if not isinstance(rolling, dict):
            errs.required("spec.updateStrategy.rollingUpdate")
            return
        path = "spec.updateStrategy.rollingUpdate"
        unavailable, surge = rolling.get("maxUnavailable"), rolling.get("maxSurge")
        validate_int_or_percent(errs, unavailable, f"{path}.maxUnavailable")
        validate_int_or_percent(errs, surge, f"{path}.maxSurge")
        has_unavailable = unavailable is not None and not is_zero(unavailable)
        has_surge = surge is not None and not is_zero(surge)
        if has_unavailable and has_surge:
            errs.invalid(f"{path}.maxSurge", surge, "may not be set when maxUnavailable is non-zero")
        elif not has_unavailable and not has_surge:
            errs.required(f"{path}.maxUnavailable", "cannot be 0 when maxSurge is 0")
    elif stype != "OnDelete":
        errs.not_supported("spec.updateStrategy", strategy, ("RollingUpdate", "OnDelete"))


# ----- StatefulSets -----------------------------------------------------------------------------
STATEFULSET_MUTABLE_SPEC = ("replicas", "ordinals", "template", "updateStrategy", "revisionHistoryLimit",
                            "persistentVolumeClaimRetentionPolicy", "minReadySeconds")
STATEFULSET_STATUS_COUNTS = ("replicas", "readyReplicas", "currentReplicas", "updatedReplicas",
                             "availableReplicas", "observedGeneration", "collisionCount")
STATEFULSET_FORBIDDEN_UPDATE = (
    "updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', "
    "'updateStrategy', 'revisionHistoryLimit', 'persistentVolumeClaimRetentionPolicy' and "
    "'minReadySeconds' are forbidden")


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


def validate_statefulset_spec(errs: Errors, spec: dict) -> None:
    """`ValidateStatefulSetSpec`: pod management, update strategy, ordinals, the replicated rules
    (claim templates count as volumes), service name, claim templates, retention policy."""
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
            validate_nonnegative(errs, rolling, path, "partition")
            unavailable = rolling.get("maxUnavailable")
            if unavailable is not None:
                path += ".maxUnavailable"
                validate_int_or_percent(errs, unavailable, path)
                if is_zero(unavailable):
                    errs.invalid(path, unavailable, "cannot be 0")
    else:
        errs.invalid("spec.updateStrategy", strategy, "must be 'RollingUpdate' or 'OnDelete'")
    validate_nonnegative(errs, spec.get("ordinals"), "spec.ordinals", "start")
    validate_replicated(errs, _with_claim_volumes(spec), workload="StatefulSet")
    validate_nonnegative(errs, spec, "spec", "revisionHistoryLimit")
    service = spec.get("serviceName")
    if service:
        for message in dns1123_label_errors(str(service)):
            errs.invalid("spec.serviceName", service, message)
    for i, claim in enumerate(spec.get("volumeClaimTemplates") or []):
        path = f"spec.volumeClaimTemplates[{i}]"
        if not _path(claim, "metadata", "name"):
            errs.required(f"{path}.metadata.name", "name or generateName is required")
        cspec = claim.get("spec") if isinstance(claim, dict) else None
        cspec = cspec if isinstance(cspec, dict) else {}
        if not cspec.get("accessModes"):
            errs.required(f"{path}.spec.accessModes", "at least 1 access mode is required")
        if not _path(cspec, "resources", "requests", "storage"):
            errs.required(f"{path}.spec.resources[storage]")
    retention = spec.get("persistentVolumeClaimRetentionPolicy")
    if isinstance(retention, dict):
        for key in ("whenDeleted", "whenScaled"):
            value = retention.get(key)
            if value not in ("Retain", "Delete"):
                errs.not_supported(f"spec.persistentVolumeClaimRetentionPolicy.{key}", value,
                                   ("Retain", "Delete"))


def validate_statefulset_status(errs: Errors, obj: dict) -> None:
    """`ValidateStatefulSetStatus`: non-negative counts, none above replicas, available <= ready."""
    validate_status_counts(errs, obj, STATEFULSET_STATUS_COUNTS)
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


def validate_statefulset_update(errs: Errors, obj: dict, old: dict) -> None:
    """`ValidateStatefulSetUpdate`: only `STATEFULSET_MUTABLE_SPEC` may change."""
    new_spec, old_spec = obj.get("spec") or {}, old.get("spec") or {}
    if not isinstance(new_spec, dict) or not isinstance(old_spec, dict):
        return
    strip = lambda s: {k: v for k, v in s.items() if k not in STATEFULSET_MUTABLE_SPEC}  # noqa: E731
    if strip(new_spec) != strip(old_spec):
        errs.forbidden("spec", STATEFULSET_FORBIDDEN_UPDATE)
