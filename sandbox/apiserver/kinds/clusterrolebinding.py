"""ClusterRoleBindings (rbac.authorization.k8s.io/v1): a ClusterRole granted cluster-wide to
users, groups and ServiceAccounts (which must name their namespace). `ValidateClusterRoleBinding`
with an immutable roleRef; printClusterRoleBinding's ROLE, AGE, USERS, GROUPS, SERVICEACCOUNTS.
The bootstrap bindings (cluster-admin to system:masters, the discovery and basic-user roles to
every authenticated user) are created at start-up when missing."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from sandbox.apiserver import rbac
from sandbox.apiserver.kinds.rolebinding import STRATEGY as ROLE_BINDINGS
from sandbox.apiserver.printing import Row
from sandbox.apiserver.strategy import Resource, Strategy
from sandbox.apiserver.validation.fielderrors import Errors
from sandbox.apiserver.validation.rbac import validate_binding, validate_binding_update

if TYPE_CHECKING:
    from sandbox.apiserver.registry import Registry

RESOURCE = Resource("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding", "clusterrolebindings",
                    "io.k8s.api.rbac.v1.ClusterRoleBinding", namespaced=False)


class ClusterRoleBindingStrategy(Strategy):
    """ClusterRoleBindings: validation, subject defaults, the RoleBinding printer's columns."""

    resource = RESOURCE
    name_rule = "path"

    def default(self, obj: dict) -> None:
        """Subjects' apiGroup defaults, as for RoleBindings."""
        ROLE_BINDINGS.default(obj)

    def validate(self, errs: Errors, obj: dict) -> None:
        """`ValidateClusterRoleBinding`: a ClusterRole reference, valid subjects."""
        validate_binding(errs, obj, namespaced=False)

    def validate_update(self, errs: Errors, obj: dict, old: dict) -> None:
        """roleRef is immutable."""
        validate_binding_update(errs, obj, old)

    def columns(self) -> list[dict[str, Any]]:
        """printClusterRoleBinding's columns (those of printRoleBinding)."""
        return ROLE_BINDINGS.columns()

    def row(self, obj: dict, now: datetime) -> Row:
        """printClusterRoleBinding's cells."""
        return ROLE_BINDINGS.row(obj, now)

    async def bootstrap(self, registry: Registry) -> None:
        """The default bindings every cluster has (created when missing)."""
        for binding in rbac.DEFAULT_CLUSTER_ROLE_BINDINGS:
            await registry.ensure(RESOURCE, "", binding)


STRATEGY = ClusterRoleBindingStrategy()
