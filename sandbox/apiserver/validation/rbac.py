"""RBAC validation (`pkg/apis/rbac/validation`), the one implementation the four RBAC kinds
share: policy rules, binding subjects, role references and the immutable roleRef, with
kube-apiserver's messages and its supported-value order."""

from __future__ import annotations

from typing import Any

from sandbox.apiserver.validation.fielderrors import Errors, go_struct
from sandbox.apiserver.validation.labels import validate_label_selector
from sandbox.apiserver.validation.names import dns1123_subdomain_errors, path_segment_name_errors

GROUP = "rbac.authorization.k8s.io"
SUBJECT_KINDS = ("ServiceAccount", "User", "Group")


def validate_rules(errs: Errors, obj: dict, *, namespaced: bool) -> None:
    """The `rules[i]` loop of `ValidateRole` / `ValidateClusterRole`."""
    for i, rule in enumerate(obj.get("rules") or []):
        validate_policy_rule(errs, rule, f"rules[{i}]", namespaced=namespaced)


def validate_policy_rule(errs: Errors, rule: Any, path: str, *, namespaced: bool) -> None:
    """`validatePolicyRule`: verbs always; non-resource URLs only on cluster rules and never
    mixed with resources; resource rules need apiGroups and resources."""
    if not isinstance(rule, dict):
        errs.invalid(path, rule, "must be a policy rule")
        return
    if not rule.get("verbs"):
        errs.required(f"{path}.verbs", "verbs must contain at least one value")
    urls = rule.get("nonResourceURLs")
    if urls:
        if namespaced:
            errs.invalid(f"{path}.nonResourceURLs", urls,
                         "namespaced rules cannot apply to non-resource URLs")
        if rule.get("apiGroups") or rule.get("resources") or rule.get("resourceNames"):
            errs.invalid(f"{path}.nonResourceURLs", urls,
                         "rules cannot apply to both regular resources and non-resource URLs")
        return
    if not rule.get("apiGroups"):
        errs.required(f"{path}.apiGroups", "resource rules must supply at least one api group")
    if not rule.get("resources"):
        errs.required(f"{path}.resources", "resource rules must supply at least one resource")
    if rule.get("resourceNames") and len(rule.get("resources") or []) > 1:
        errs.required(f"{path}.resourceNames", "resource names cannot apply to multiple resources")


def validate_aggregation_rule(errs: Errors, rule: Any, path: str) -> None:
    """An aggregationRule needs at least one valid label selector."""
    if rule is None:
        return
    selectors = rule.get("clusterRoleSelectors") if isinstance(rule, dict) else None
    if not selectors:
        errs.required(f"{path}.clusterRoleSelectors", "at least one clusterRoleSelector required if "
                                                     "aggregationRule is non-nil")
        return
    for i, selector in enumerate(selectors):
        validate_label_selector(errs, selector, f"{path}.clusterRoleSelectors[{i}]")


def validate_binding(errs: Errors, obj: dict, *, namespaced: bool) -> None:
    """`ValidateRoleBinding` (``namespaced``) / `ValidateClusterRoleBinding`: the roleRef
    (a Role or ClusterRole, only a ClusterRole cluster-wide) and every subject."""
    kinds = ("Role", "ClusterRole") if namespaced else ("ClusterRole",)
    validate_role_ref(errs, obj.get("roleRef"), kinds=kinds)
    for i, subject in enumerate(obj.get("subjects") or []):
        validate_subject(errs, subject, f"subjects[{i}]", namespaced=namespaced)


def validate_binding_update(errs: Errors, obj: dict, old: dict) -> None:
    """roleRef is immutable: `Invalid value: rbac.RoleRef{...}: cannot change roleRef`."""
    ref, old_ref = _ref_fields(obj.get("roleRef")), _ref_fields(old.get("roleRef"))
    if ref != old_ref:
        errs.invalid("roleRef", go_struct("rbac.RoleRef", ref), "cannot change roleRef")


def _ref_fields(ref: Any) -> list[tuple[str, str]]:
    ref = ref if isinstance(ref, dict) else {}
    return [(go, str(ref.get(key) or "")) for go, key in (("APIGroup", "apiGroup"), ("Kind", "kind"),
                                                         ("Name", "name"))]


def validate_subject(errs: Errors, subject: Any, path: str, *, namespaced: bool) -> None:
    """`validateRoleBindingSubject`: ServiceAccounts name a DNS subdomain in the core group
    (and a namespace in a ClusterRoleBinding); users and groups belong to the RBAC group."""
    if not isinstance(subject, dict):
        errs.invalid(path, subject, "must be a subject")
        return
    name, kind, group = subject.get("name") or "", subject.get("kind") or "", subject.get("apiGroup") or ""
    if not name:
        errs.required(f"{path}.name")
    if kind == "ServiceAccount":
        for msg in dns1123_subdomain_errors(name) if name else ():
            errs.invalid(f"{path}.name", name, msg)
        if group:
            errs.not_supported(f"{path}.apiGroup", group, ("",))
        if not namespaced and not subject.get("namespace"):
            errs.required(f"{path}.namespace")
    elif kind in ("User", "Group"):
        if not name:
            errs.invalid(f"{path}.name", name, f"{kind.lower()} name cannot be empty")
        if group != GROUP:
            errs.not_supported(f"{path}.apiGroup", group, (GROUP,))
    else:
        errs.not_supported(f"{path}.kind", kind, SUBJECT_KINDS, ordered=True)


def validate_role_ref(errs: Errors, ref: Any, *, kinds: tuple[str, ...]) -> None:
    """roleRef: the RBAC group, a kind among ``kinds``, a path-segment name."""
    ref = ref if isinstance(ref, dict) else {}
    if ref.get("apiGroup") != GROUP:
        errs.not_supported("roleRef.apiGroup", ref.get("apiGroup") or "", (GROUP,))
    if ref.get("kind") not in kinds:
        errs.not_supported("roleRef.kind", ref.get("kind") or "", kinds, ordered=True)
    name = ref.get("name") or ""
    if not name:
        errs.required("roleRef.name")
    for msg in path_segment_name_errors(name) if name else ():
        errs.invalid("roleRef.name", name, msg)
