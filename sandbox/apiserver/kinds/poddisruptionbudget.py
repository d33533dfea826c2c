"""PodDisruptionBudgets (policy/v1), the sandbox's `pkg/registry/policy/poddisruptionbudget`:
`ValidatePodDisruptionBudget` (minAvailable xor maxUnavailable, each a non-negative int or a
percentage up to 100%, the label selector, unhealthyPodEvictionPolicy, non-negative status
counts) and printPodDisruptionBudget's NAME, MIN AVAILABLE, MAX UNAVAILABLE, ALLOWED
DISRUPTIONS, AGE. Its status is the disruption controller's (`sandbox/controllers/disruption.py`)
and the eviction subresource's (`sandbox/apiserver/eviction.py`)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sandbox.apiserver.printing import Row, age_col, age_of, as_int, col, name_col, name_of
from sandbox.apiserver.strategy import STATUS, Resource, Strategy
from sandbox.apiserver.validation.apps import validate_int_or_percent
from sandbox.apiserver.validation.defaulting import dict_at
from sandbox.apiserver.validation.fielderrors import Errors
from sandbox.apiserver.validation.labels import validate_label_selector
from sandbox.apiserver.validation.names import is_int

POLICIES = ("AlwaysAllow", "IfHealthyBudget")
STATUS_COUNTS = ("disruptionsAllowed", "currentHealthy", "desiredHealthy", "expectedPods",
                 "observedGeneration")


def _validate_pdb(errs: Errors, obj: dict) -> None:
    spec = obj.get("spec") or {}
    if not isinstance(spec, dict):
        return
    if spec.get("minAvailable") is not None and spec.get("maxUnavailable") is not None:
        errs.invalid("spec", spec, "minAvailable and maxUnavailable cannot be both set")
    for key in ("minAvailable", "maxUnavailable"):
        validate_int_or_percent(errs, spec.get(key), f"spec.{key}")
    validate_label_selector(errs, spec.get("selector"), "spec.selector")
    policy = spec.get("unhealthyPodEvictionPolicy")
    if policy is not None and policy not in POLICIES:
        errs.not_supported("spec.unhealthyPodEvictionPolicy", policy, POLICIES)
    status = obj.get("status")
    if isinstance(status, dict):
        for key in STATUS_COUNTS:
            value = status.get(key)
            if value is not None and (not is_int(value) or value < 0):
                errs.invalid(f"status.{key}", value, "must be greater than or equal to 0")


def _int_or_string(value: Any) -> str:
    """`IntOrString.String()`; N/A when unset."""
    if value is None:
        return "N/A"
    return value if isinstance(value, str) else json.dumps(value)


RESOURCE = Resource("policy", "v1", "PodDisruptionBudget", "poddisruptionbudgets",
                    "io.k8s.api.policy.v1.PodDisruptionBudget", short_names=("pdb",), subresources=(STATUS,),
                    generation=True)


class PodDisruptionBudgetStrategy(Strategy):
    """PodDisruptionBudgets: validation, printPodDisruptionBudget."""

    resource = RESOURCE
    reset_status_on_create = True

    def default(self, obj: dict) -> None:
        """The status counts gogo writes even when zero (they have no omitempty)."""
        status = dict_at(obj, "status")
        for key in ("disruptionsAllowed", "currentHealthy", "desiredHealthy", "expectedPods"):
            status.setdefault(key, 0)

    def validate(self, errs: Errors, obj: dict) -> None:
        """`ValidatePodDisruptionBudget` (spec and status)."""
        _validate_pdb(errs, obj)

    def columns(self) -> list[dict[str, Any]]:
        """printPodDisruptionBudget's columns."""
        return [name_col(),
                col("Min Available", description="The minimum number of pods that must be available."),
                col("Max Unavailable", description="The maximum number of pods that may be unavailable."),
                col("Allowed Disruptions", "integer",
                    "Calculated number of pods that may be disrupted at this time."),
                age_col()]

    def row(self, obj: dict, now: datetime) -> Row:
        """printPodDisruptionBudget's cells."""
        spec, status = obj.get("spec") or {}, obj.get("status") or {}
        return [name_of(obj), _int_or_string(spec.get("minAvailable")),
                _int_or_string(spec.get("maxUnavailable")), as_int(status.get("disruptionsAllowed")),
                age_of(obj, now)]


STRATEGY = PodDisruptionBudgetStrategy()
