"""RoleBindings (rbac.authorization.k8s.io/v1): roleRef and subject validation with an immutable
roleRef, subject apiGroup defaults, printRoleBinding's columns (ROLE, USERS, GROUPS,
SERVICEACCOUNTS)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sandbox.apiserver.printing import Row, age_col, age_of, col, doc, name_col, name_of
from sandbox.apiserver.strategy import Resource, Strategy
from sandbox.apiserver.validation.defaulting import as_list
from sandbox.apiserver.validation.fielderrors import Errors
from sandbox.apiserver.validation.rbac import validate_binding, validate_binding_update


def _default_rolebinding(obj: dict) -> None:
    for subject in as_list(obj.get("subjects")):
        if isinstance(subject, dict) and "apiGroup" not in subject:
            if subject.get("kind") == "ServiceAccount":
                subject["apiGroup"] = ""
            elif subject.get("kind") in ("User", "Group"):
                subject["apiGroup"] = "rbac.authorization.k8s.io"


def _rolebinding_row(obj: dict, now: datetime) -> Row:
    ref = obj.get("roleRef") or {}
    subjects = [s for s in obj.get("subjects") or [] if isinstance(s, dict)]

    def names(kind: str) -> str:
        picked = [f"{s.get('namespace')}/{s.get('name')}" if kind == "ServiceAccount" else str(s.get("name"))
                  for s in subjects if s.get("kind") == kind]
        return ", ".join(picked)

    return [name_of(obj), f"{ref.get('kind')}/{ref.get('name')}", age_of(obj, now), names("User"),
            names("Group"), names("ServiceAccount")]


RESOURCE = Resource("rbac.authorization.k8s.io", "v1", "RoleBinding", "rolebindings",
                    "io.k8s.api.rbac.v1.RoleBinding")


class RoleBindingStrategy(Strategy):
    """RoleBindings: validation, subject defaults, printRoleBinding."""

    resource = RESOURCE
    name_rule = "path"

    def default(self, obj: dict) -> None:
        """Subjects' apiGroup: "" for ServiceAccounts, rbac.authorization.k8s.io for users and groups."""
        _default_rolebinding(obj)

    def validate(self, errs: Errors, obj: dict) -> None:
        """`ValidateRoleBinding`."""
        validate_binding(errs, obj, namespaced=True)

    def validate_update(self, errs: Errors, obj: dict, old: dict) -> None:
        """roleRef is immutable."""
        validate_binding_update(errs, obj, old)

    def columns(self) -> list[dict[str, Any]]:
        """printRoleBinding's columns."""
        binding = "io.k8s.api.rbac.v1.RoleBinding"
        return [name_col(),
                col("Role", description=doc(binding, "roleRef")),
                age_col(),
                col("Users", description="Users in the roleBinding", priority=1),
                col("Groups", description="Groups in the roleBinding", priority=1),
                col("ServiceAccounts", description="ServiceAccounts in the roleBinding", priority=1)]

    def row(self, obj: dict, now: datetime) -> Row:
        """printRoleBinding's cells."""
        return _rolebinding_row(obj, now)


STRATEGY = RoleBindingStrategy()
