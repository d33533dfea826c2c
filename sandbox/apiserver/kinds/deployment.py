"""Deployments (apps/v1), the sandbox's `pkg/registry/apps/deployment/strategy.go`.

Defaults (`SetDefaults_Deployment`: replicas, RollingUpdate 25%/25%, history limit, progress
deadline), validation (`ValidateDeployment`: strategy, int-or-percent surge/unavailable, the
shared replicated-workload rules, an immutable selector), printDeployment's columns, and the
`status` and `scale` subresources (served generically by the registry).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sandbox.apiserver.kinds.workload import APPS, WorkloadStrategy, ready_of, workload_cells
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
from sandbox.apiserver.validation.apps import validate_deployment_spec
from sandbox.apiserver.validation.defaulting import dict_at
from sandbox.apiserver.validation.fielderrors import Errors
from sandbox.apiserver.validation.podspec import default_template


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
    spec, status, desired, names, images = workload_cells(obj)
    return [name_of(obj), ready_of(status, desired), as_int(status.get("updatedReplicas")),
            as_int(status.get("availableReplicas")), age_of(obj, now), names, images,
            format_selector(spec.get("selector"))]


RESOURCE = Resource("apps", "v1", "Deployment", "deployments", "io.k8s.api.apps.v1.Deployment",
                    short_names=("deploy",), categories=("all",), subresources=(STATUS, SCALE),
                    generation=True)


class DeploymentStrategy(WorkloadStrategy):
    """Deployments: defaults, `ValidateDeployment`, printDeployment."""

    resource = RESOURCE

    def default(self, obj: dict) -> None:
        """`SetDefaults_Deployment` and the pod template's defaults."""
        _default_deployment(obj)

    def validate_spec(self, errs: Errors, spec: dict) -> None:
        """`ValidateDeploymentSpec`."""
        validate_deployment_spec(errs, spec)

    def missing_spec(self, errs: Errors) -> None:
        errs.required("spec.selector")
        errs.required("spec.template")

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
