"""DaemonSets (apps/v1), the sandbox's `pkg/registry/apps/daemonset/strategy.go`.

Defaults (`SetDefaults_DaemonSet`: RollingUpdate with maxUnavailable 1 and maxSurge 0, history
limit 10), validation (`ValidateDaemonSetSpec`, `ValidateDaemonSetUpdateStrategy`,
`ValidateRollingUpdateDaemonSet`, an immutable selector), printDaemonSet's columns and the
`status` subresource.
"""

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
    format_labels,
    format_selector,
    get_path,
    name_col,
    name_of,
    template_cols,
)
from sandbox.apiserver.strategy import STATUS, Resource
from sandbox.apiserver.validation.apps import DAEMONSET_STATUS_COUNTS, validate_daemonset_spec
from sandbox.apiserver.validation.defaulting import dict_at
from sandbox.apiserver.validation.fielderrors import Errors
from sandbox.apiserver.validation.podspec import default_template


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
    spec, status, _, names, images = workload_cells(obj)
    node_selector = get_path(spec, "template", "spec", "nodeSelector")
    counts = ("desiredNumberScheduled", "currentNumberScheduled", "numberReady", "updatedNumberScheduled",
              "numberAvailable")
    return [name_of(obj), *(as_int(status.get(k)) for k in counts),
            format_labels(node_selector), age_of(obj, now), names, images,
            format_selector(spec.get("selector")) or "<none>"]


RESOURCE = Resource("apps", "v1", "DaemonSet", "daemonsets", "io.k8s.api.apps.v1.DaemonSet",
                    short_names=("ds",), categories=("all",), subresources=(STATUS,), generation=True)


class DaemonSetStrategy(WorkloadStrategy):
    """DaemonSets: defaults, `ValidateDaemonSet`, printDaemonSet."""

    resource = RESOURCE
    status_counts = DAEMONSET_STATUS_COUNTS

    def default(self, obj: dict) -> None:
        """`SetDefaults_DaemonSet` and the pod template's defaults."""
        _default_daemonset(obj)

    def validate_spec(self, errs: Errors, spec: dict) -> None:
        """`ValidateDaemonSetSpec`."""
        validate_daemonset_spec(errs, spec)

    def missing_spec(self, errs: Errors) -> None:
        """A DaemonSet's missing selector only shows as a template it does not match."""
        errs.invalid("spec.template.metadata.labels", {}, "`selector` does not match template `labels`")

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
