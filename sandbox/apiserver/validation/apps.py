"""Rules the replicated workloads share (`pkg/apis/apps/validation`): replicas, the selector
against the template's labels, an immutable selector, non-negative status counts, and
int-or-percent values (a Deployment's maxSurge/maxUnavailable, a PodDisruptionBudget's
minAvailable/maxUnavailable, a StatefulSet's or DaemonSet's rolling update)."""

from __future__ import annotations

import re
from typing import Any

from sandbox.apiserver.validation.fielderrors import Errors
from sandbox.apiserver.validation.labels import validate_label_selector
from sandbox.apiserver.validation.names import is_int
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


def is_zero(value: Any) -> bool:
    """`getIntOrPercentValue(v) == 0` (0 or "0%")."""
    return value == 0 or (isinstance(value, str) and re.fullmatch(r"0+%", value) is not None)


def validate_replicated(errs: Errors, spec: dict, *, workload: str = "ReplicaSet") -> None:
    """Rules the replicated workloads share: replicas, selector vs template. ``workload`` names
    the kind in its messages (ReplicaSets and Deployments say "for deployment", as the real ones
    do); a DaemonSet's missing selector only shows as a template that it does not match."""
    for key in ("replicas", "minReadySeconds"):
        value = spec.get(key)
        if value is None:
            continue
        if not is_int(value):
            errs.invalid(f"spec.{key}", value, "must be an integer")
        elif value < 0:
            errs.invalid(f"spec.{key}", value, "must be greater than or equal to 0")
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
    if selector is None and workload == "DaemonSet":
        errs.invalid("spec.template.metadata.labels", labels, "`selector` does not match template `labels`")
    elif isinstance(selector, dict) and isinstance(labels, dict) and (selector.get("matchLabels") or
                                                                     selector.get("matchExpressions")):
        try:
            matches = selector_matches(selector, labels)
        except (AttributeError, TypeError):
            matches = True
        if not matches:
            errs.invalid("spec.template.metadata.labels", labels,
                         "`selector` does not match template `labels`")
    validate_pod_template(errs, template, "spec.template", workload=workload)
    tspec = template.get("spec") if isinstance(template, dict) else None
    if isinstance(tspec, dict) and tspec.get("restartPolicy") not in (None, "Always"):
        errs.not_supported("spec.template.spec.restartPolicy", tspec.get("restartPolicy"), ("Always",))


def validate_selector_immutable(errs: Errors, obj: dict, old: dict) -> None:
    new_sel = (obj.get("spec") or {}).get("selector")
    old_sel = (old.get("spec") or {}).get("selector")
    if old_sel is not None and new_sel != old_sel:
        errs.invalid("spec.selector", new_sel, "field is immutable")


REPLICA_COUNTS = ("replicas", "readyReplicas", "availableReplicas", "updatedReplicas", "fullyLabeledReplicas",
                  "unavailableReplicas", "terminatingReplicas", "observedGeneration")


def validate_status_counts(errs: Errors, obj: dict, keys: tuple[str, ...] = REPLICA_COUNTS) -> None:
    status = obj.get("status")
    if not isinstance(status, dict):
        return
    for key in keys:
        value = status.get(key)
        if value is not None and (not is_int(value) or value < 0):
            errs.invalid(f"status.{key}", value, "must be greater than or equal to 0")

