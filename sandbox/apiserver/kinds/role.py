"""Roles (rbac.authorization.k8s.io/v1): policy-rule validation (`ValidateRole`) and printRole's
NAME and CREATED AT columns."""

from __future__ import annotations

from sandbox.apiserver.strategy import Resource, Strategy
from sandbox.apiserver.validation.fielderrors import Errors
from sandbox.apiserver.validation.rbac import validate_rules

RESOURCE = Resource("rbac.authorization.k8s.io", "v1", "Role", "roles", "io.k8s.api.rbac.v1.Role")


class RoleStrategy(Strategy):
    """Roles: rule validation; the default NAME / CREATED AT table."""

    resource = RESOURCE
    name_rule = "path"

    def validate(self, errs: Errors, obj: dict) -> None:
        """`ValidateRole`: namespaced rules (no non-resource URLs)."""
        validate_rules(errs, obj, namespaced=True)


STRATEGY = RoleStrategy()
