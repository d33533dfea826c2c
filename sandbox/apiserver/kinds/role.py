"""Roles (rbac.authorization.k8s.io/v1): policy-rule validation (`ValidateRole`) and printRole's
NAME and CREATED AT columns."""

from __future__ import annotations

from sandbox.apiserver.strategy import Resource, Strategy
from sandbox.apiserver.validation.fielderrors import Errors


def _validate_role(errs: Errors, obj: dict) -> None:
    for i, rule in enumerate(obj.get("rules") or []):
        path = f"rules[{i}]"
        if not isinstance(rule, dict):
            errs.invalid(path, rule, "must be a policy rule")
            continue
        if not rule.get("verbs"):
            errs.required(f"{path}.verbs", "verbs must contain at least one value")
        if rule.get("nonResourceURLs"):
            errs.invalid(f"{path}.nonResourceURLs", rule["nonResourceURLs"],
                         "namespaced rules cannot apply to non-resource URLs")
        if rule.get("resources") and rule.get("apiGroups") is None:
            errs.required(f"{path}.apiGroups", "resource rules must supply at least one api group")


RESOURCE = Resource("rbac.authorization.k8s.io", "v1", "Role", "roles", "io.k8s.api.rbac.v1.Role")


class RoleStrategy(Strategy):
    """Roles: rule validation; the default NAME / CREATED AT table."""

    resource = RESOURCE
    name_rule = "path"

    def validate(self, errs: Errors, obj: dict) -> None:
        """`ValidateRole`."""
        _validate_role(errs, obj)


STRATEGY = RoleStrategy()
