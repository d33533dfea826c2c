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


def _validate_rolebinding(errs: Errors, obj: dict) -> None:
    ref = obj.get("roleRef")
    if not isinstance(ref, dict):
        errs.required("roleRef")
        return
    if ref.get("apiGroup") != "rbac.authorization.k8s.io":
        errs.not_supported("roleRef.apiGroup", ref.get("apiGroup") or "", ("rbac.authorization.k8s.io",))
    if ref.get("kind") not in ("Role", "ClusterRole"):
        errs.not_supported("roleRef.kind", ref.get("kind") or "", ("ClusterRole", "Role"))
    if not ref.get("name"):
        errs.required("roleRef.name")
    for i, subject in enumerate(obj.get("subjects") or []):
        path = f"subjects[{i}]"
        if not isinstance(subject, dict):
            errs.invalid(path, subject, "must be a subject")
            continue
        if not subject.get("name"):
            errs.required(f"{path}.name")
        if subject.get("kind") not in ("ServiceAccount", "User", "Group"):
            errs.not_supported(f"{path}.kind", subject.get("kind") or "", ("Group", "ServiceAccount", "User"))


def _validate_rolebinding_update(errs: Errors, obj: dict, old: dict) -> None:
    if obj.get("roleRef") != old.get("roleRef"):
        errs.invalid("roleRef", obj.get("roleRef"), "cannot change roleRef")


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
        _validate_rolebinding(errs, obj)

    def validate_update(self, errs: Errors, obj: dict, old: dict) -> None:
        """roleRef is immutable."""
        _validate_rolebinding_update(errs, obj, old)

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
