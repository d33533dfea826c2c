"""Leases' rules (`ValidateLease`) and printLease's cells."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from sandbox.apiserver.tables import table_row
from sandbox.apiserver.validation import Invalid, default_object, validate_object


def lease(**spec: object) -> dict:
    return {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": "node-1", "namespace": "kube-node-lease",
                         "creationTimestamp": "2026-03-01T11:00:00Z"}, "spec": spec}


def test_a_node_heartbeat_is_valid_and_prints_its_holder(official) -> None:
    obj = default_object("leases", lease(holderIdentity="node-1", leaseDurationSeconds=40,
                                         renewTime="2026-03-01T11:59:58.123456Z"))
    validate_object("leases", obj)
    official("leases", obj)
    assert table_row("leases", obj, now=datetime(2026, 3, 1, 12, 0, tzinfo=UTC))["cells"] == \
        ["node-1", "node-1", "60m"]
    assert table_row("leases", lease())["cells"][1] == "<unknown>"


@pytest.mark.parametrize(("spec", "message"), [
    ({"leaseDurationSeconds": 0}, "spec.leaseDurationSeconds: Invalid value: 0: must be greater than 0"),
    ({"leaseTransitions": -1},
     "spec.leaseTransitions: Invalid value: -1: must be greater than or equal to 0"),
    ({"preferredHolder": "a"},
     "spec.preferredHolder: Forbidden: may only be specified if `strategy` is defined"),
    ({"strategy": "Newest"},
     'spec.strategy: Unsupported value: "Newest": supported values: "OldestEmulationVersion"'),
])
def test_invalid_leases(spec: dict, message: str) -> None:
    obj = default_object("leases", lease(**spec))
    with pytest.raises(Invalid) as caught:
        validate_object("leases", obj)
    assert caught.value.message == f'Lease.coordination.k8s.io "node-1" is invalid: {message}'
