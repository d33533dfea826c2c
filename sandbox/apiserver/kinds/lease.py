"""Leases (coordination.k8s.io/v1): node heartbeats (`kube-node-lease/<node>`, which `kubectl
describe node` shows) and leader election. `ValidateLease` (positive leaseDurationSeconds,
non-negative leaseTransitions, the coordinated strategy and preferredHolder rules) and printLease's
NAME, HOLDER, AGE."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sandbox.apiserver.printing import Row, age_col, age_of, col, doc, name_col, name_of
from sandbox.apiserver.strategy import Resource, Strategy
from sandbox.apiserver.validation.fielderrors import Errors
from sandbox.apiserver.validation.names import is_int

SPEC = "io.k8s.api.coordination.v1.LeaseSpec"
STRATEGIES = ("OldestEmulationVersion",)


def _validate_lease(errs: Errors, obj: dict) -> None:
    spec = obj.get("spec") or {}
    duration = spec.get("leaseDurationSeconds")
    if is_int(duration) and duration <= 0:
        errs.invalid("spec.leaseDurationSeconds", duration, "must be greater than 0")
    transitions = spec.get("leaseTransitions")
    if is_int(transitions) and transitions < 0:
        errs.invalid("spec.leaseTransitions", transitions, "must be greater than or equal to 0")
    strategy = spec.get("strategy")
    if strategy is not None and strategy not in STRATEGIES:
        errs.not_supported("spec.strategy", strategy, STRATEGIES)
    if spec.get("preferredHolder") and not strategy:
        errs.forbidden("spec.preferredHolder", "may only be specified if `strategy` is defined")


RESOURCE = Resource("coordination.k8s.io", "v1", "Lease", "leases", "io.k8s.api.coordination.v1.Lease")


class LeaseStrategy(Strategy):
    """Leases: validation, printLease."""

    resource = RESOURCE

    def validate(self, errs: Errors, obj: dict) -> None:
        """`ValidateLease`."""
        _validate_lease(errs, obj)

    def columns(self) -> list[dict[str, Any]]:
        """printLease's columns."""
        return [name_col(), col("Holder", description=doc(SPEC, "holderIdentity")), age_col()]

    def row(self, obj: dict, now: datetime) -> Row:
        """printLease's cells (`<unknown>` without a holder)."""
        holder = (obj.get("spec") or {}).get("holderIdentity")
        return [name_of(obj), "<unknown>" if holder is None else str(holder), age_of(obj, now)]


STRATEGY = LeaseStrategy()
