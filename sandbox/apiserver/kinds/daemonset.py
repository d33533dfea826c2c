"""DaemonSets (apps/v1), the sandbox's `pkg/registry/apps/daemonset/strategy.go`.

Defaults (`SetDefaults_DaemonSet`: RollingUpdate with maxUnavailable 1 and maxSurge 0, history
limit 10), validation (`ValidateDaemonSetSpec`, `ValidateDaemonSetUpdateStrategy`,
`ValidateRollingUpdateDaemonSet`, an immutable selector), printDaemonSet's columns and the
`status` subresource.
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
    doc,
    format_labels,
    format_selector,
    get_path,
    name_col,
    name_of,
    template_cols,
)
from sandbox.apiserver.strategy import STATUS, Resource, Strategy
from sandbox.apiserver.validation.apps import (
    is_zero,
    validate_int_or_percent,
    validate_replicated,
    validate_selector_immutable,
    validate_status_counts,
)
from sandbox.apiserver.validation.defaulting import dict_at
from sandbox.apiserver.validation.fielderrors import Errors
from sandbox.apiserver.validation.names import is_int
from sandbox.apiserver.validation.podspec import default_template

APPS = "io.k8s.api.apps.v1."
STATUS_COUNTS = ("currentNumberScheduled", "numberMisscheduled", "desiredNumberScheduled", "numberReady",
                 "updatedNumberScheduled", "numberAvailable", "numberUnavailable", "observedGeneration",
                 "collisionCount")


def _validate_daemonset(errs: Errors, obj: dict) -> None:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        errs.invalid("spec.template.metadata.labels", {}, "`selector` does not match template `labels`")
        return
    validate_replicated(errs, spec, workload="DaemonSet")
    for key in ("templateGeneration", "revisionHistoryLimit"):
        value = spec.get(key)
        if value is not None and (not is_int(value) or value < 0):
            errs.invalid(f"spec.{key}", value, "must be greater than or equal to 0")
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


def _default_daemonset(obj: dict) -> None:
    spec = dict_at(obj, "spec")
    strategy = dict_at(spec, "updateStrategy")
    if not strategy.get("type"):
        strategy["type"] = "RollingUpdate"
    if strategy.get("type") == "RollingUpdate":
        rolling = dict_at(strategy, "rollingUpdate")
        rolling.setdefault("maxUnavailable", 1)
        rolling.setdefault("maxSurge", 0)
    spec.setdefault("revisionHistoryLimit", 10)
    default_template(spec)
    status = dict_at(obj, "status")
    for key in ("currentNumberScheduled", "numberMisscheduled", "desiredNumberScheduled", "numberReady"):
        status.setdefault(key, 0)


def _daemonset_row(obj: dict, now: datetime) -> Row:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    tspec = get_path(spec, "template", "spec")
    names, images = containers_cells(tspec)
    node_selector = tspec.get("nodeSelector") if isinstance(tspec, dict) else None
    counts = ("desiredNumberScheduled", "currentNumberScheduled", "numberReady", "updatedNumberScheduled",
              "numberAvailable")
    return [name_of(obj), *(as_int(status.get(k)) for k in counts),
            format_labels(node_selector), age_of(obj, now), names, images,
            format_selector(spec.get("selector")) or "<none>"]


RESOURCE = Resource("apps", "v1", "DaemonSet", "daemonsets", "io.k8s.api.apps.v1.DaemonSet",
                    short_names=("ds",), categories=("all",), subresources=(STATUS,), generation=True)


class DaemonSetStrategy(Strategy):
    """DaemonSets: defaults, validation, printDaemonSet."""

    resource = RESOURCE
    reset_status_on_create = True

    def default(self, obj: dict) -> None:
        """`SetDefaults_DaemonSet` and the pod template's defaults."""
        _default_daemonset(obj)

    def validate(self, errs: Errors, obj: dict) -> None:
        """`ValidateDaemonSet` (spec and status counts)."""
        _validate_daemonset(errs, obj)
        validate_status_counts(errs, obj, STATUS_COUNTS)

    def validate_update(self, errs: Errors, obj: dict, old: dict) -> None:
        """The selector is immutable in apps/v1."""
        validate_selector_immutable(errs, obj, old)

    def columns(self) -> list[dict[str, Any]]:
        """printDaemonSet's columns."""
        status = APPS + "DaemonSetStatus"
        return [name_col(),
                col("Desired", "integer", doc(status, "desiredNumberScheduled")),
                col("Current", "integer", doc(status, "currentNumberScheduled")),
                col("Ready", "integer", doc(status, "numberReady")),
                col("Up-to-date", "integer", doc(status, "updatedNumberScheduled")),
                col("Available", "integer", doc(status, "numberAvailable")),
                col("Node Selector", description=doc("io.k8s.api.core.v1.PodSpec", "nodeSelector")),
                age_col(),
                *template_cols(doc(APPS + "DaemonSetSpec", "selector"))]

    def row(self, obj: dict, now: datetime) -> Row:
        """printDaemonSet's cells."""
        return _daemonset_row(obj, now)


STRATEGY = DaemonSetStrategy()
