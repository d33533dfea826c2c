"""Deployments (apps/v1), the sandbox's `pkg/registry/apps/deployment/strategy.go`.

Defaults (`SetDefaults_Deployment`: replicas, RollingUpdate 25%/25%, history limit, progress
deadline), validation (`ValidateDeployment`: strategy, int-or-percent surge/unavailable, the
shared replicated-workload rules, an immutable selector), printDeployment's columns, and the
`status` and `scale` subresources (served generically by the registry).
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
    format_selector,
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
    validate_selector_immutable,
    validate_status_counts,
)
from sandbox.apiserver.validation.defaulting import dict_at
from sandbox.apiserver.validation.fielderrors import Errors
from sandbox.apiserver.validation.names import is_int
from sandbox.apiserver.validation.podspec import default_template

APPS = "io.k8s.api.apps.v1."


def _validate_deployment(errs: Errors, obj: dict) -> None:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        errs.required("spec.selector")
        errs.required("spec.template")
        return
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
    limit = spec.get("revisionHistoryLimit")
    if limit is not None and (not is_int(limit) or limit < 0):
        errs.invalid("spec.revisionHistoryLimit", limit, "must be greater than or equal to 0")
    deadline = spec.get("progressDeadlineSeconds")
    if deadline is not None:
        if not is_int(deadline) or deadline < 0:
            errs.invalid("spec.progressDeadlineSeconds", deadline, "must be greater than or equal to 0")
        elif is_int(spec.get("minReadySeconds")) and deadline <= spec["minReadySeconds"]:
            errs.invalid("spec.progressDeadlineSeconds", deadline, "must be greater than minReadySeconds")


def _default_deployment(obj: dict) -> None:
    spec = dict_at(obj, "spec")
    spec.setdefault("replicas", 1)
    strategy = dict_at(spec, "strategy")
    strategy.setdefault("type", "RollingUpdate")
    if strategy.get("type") == "RollingUpdate":
        rolling = dict_at(strategy, "rollingUpdate")
        rolling.setdefault("maxUnavailable", "25%")
        rolling.setdefault("maxSurge", "25%")
    spec.setdefault("revisionHistoryLimit", 10)
    spec.setdefault("progressDeadlineSeconds", 600)
    default_template(spec)
    dict_at(obj, "status")


def _deployment_row(obj: dict, now: datetime) -> Row:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    names, images = containers_cells(get_path(spec, "template", "spec"))
    desired = spec.get("replicas")
    desired = 1 if desired is None else as_int(desired)
    return [name_of(obj), f"{as_int(status.get('readyReplicas'))}/{desired}",
            as_int(status.get("updatedReplicas")), as_int(status.get("availableReplicas")), age_of(obj, now),
            names, images,
            format_selector(spec.get("selector"))]


RESOURCE = Resource("apps", "v1", "Deployment", "deployments", "io.k8s.api.apps.v1.Deployment",
                    short_names=("deploy",), categories=("all",), subresources=(STATUS, SCALE),
                    generation=True)


class DeploymentStrategy(Strategy):
    """Deployments: defaults, validation, printDeployment."""

    resource = RESOURCE
    reset_status_on_create = True

    def default(self, obj: dict) -> None:
        """`SetDefaults_Deployment` and the pod template's defaults."""
        _default_deployment(obj)

    def validate(self, errs: Errors, obj: dict) -> None:
        """`ValidateDeployment` (spec and status counts)."""
        _validate_deployment(errs, obj)
        validate_status_counts(errs, obj)

    def validate_update(self, errs: Errors, obj: dict, old: dict) -> None:
        """The selector is immutable in apps/v1."""
        validate_selector_immutable(errs, obj, old)

    def columns(self) -> list[dict[str, Any]]:
        """printDeployment's columns."""
        return [name_col(),
                col("Ready", description="Number of the pod with ready state"),
                col("Up-to-date", description=doc(APPS + "DeploymentStatus", "updatedReplicas")),
                col("Available", description=doc(APPS + "DeploymentStatus", "availableReplicas")),
                age_col(),
                *template_cols(doc(APPS + "DeploymentSpec", "selector"))]

    def row(self, obj: dict, now: datetime) -> Row:
        """printDeployment's cells."""
        return _deployment_row(obj, now)


STRATEGY = DeploymentStrategy()
