"""ClusterRoles (rbac.authorization.k8s.io/v1): cluster-wide sets of rules, non-resource URLs
allowed, optionally aggregated from other ClusterRoles by label (`aggregationRule`, whose
effective rules `rbac.py` computes). `ValidateClusterRole`; NAME and CREATED AT. The
bootstrap policy's ClusterRoles (cluster-admin, admin, edit, view, system:*) are created at
start-up when missing (see `rbac.py`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sandbox.apiserver import rbac
from sandbox.apiserver.strategy import Resource, Strategy
from sandbox.apiserver.validation.fielderrors import Errors
from sandbox.apiserver.validation.rbac import validate_aggregation_rule, validate_rules

if TYPE_CHECKING:
    from sandbox.apiserver.registry import Registry

RESOURCE = Resource("rbac.authorization.k8s.io", "v1", "ClusterRole", "clusterroles",
                    "io.k8s.api.rbac.v1.ClusterRole", namespaced=False)


class ClusterRoleStrategy(Strategy):
    """ClusterRoles: rule validation, the bootstrap roles."""

    resource = RESOURCE
    name_rule = "path"

    def validate(self, errs: Errors, obj: dict) -> None:
        """`ValidateClusterRole`."""
        validate_rules(errs, obj, namespaced=False)
        validate_aggregation_rule(errs, obj.get("aggregationRule"), "aggregationRule")

    async def bootstrap(self, registry: Registry) -> None:
        """The default ClusterRoles every cluster has (created when missing)."""
        for role in rbac.DEFAULT_CLUSTER_ROLES:
            await registry.ensure(RESOURCE, "", role)


STRATEGY = ClusterRoleStrategy()
