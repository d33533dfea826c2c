"""RBAC rules the cluster-scoped kinds share (`pkg/apis/rbac/validation`): policy rules,
binding subjects and role references, with kube-apiserver's messages."""

from __future__ import annotations

from typing import Any

from sandbox.apiserver.validation.fielderrors import Errors
from sandbox.apiserver.validation.labels import validate_label_selector
from sandbox.apiserver.validation.names import dns1123_subdomain_errors

GROUP = "rbac.authorization.k8s.io"


def validate_policy_rule(errs: Errors, rule: Any, path: str, *, namespaced: bool) -> None:
    """`ValidatePolicyRule`."""
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


def validate_subject(errs: Errors, subject: Any, path: str, *, namespaced: bool) -> None:
    """`ValidateRoleBindingSubject`."""
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
        if group != GROUP:
            errs.not_supported(f"{path}.apiGroup", group, (GROUP,))
    else:
        errs.not_supported(f"{path}.kind", kind, ("ServiceAccount", "User", "Group"))


def validate_role_ref(errs: Errors, ref: Any, *, kinds: tuple[str, ...]) -> None:
    """roleRef: the RBAC group, a kind among ``kinds``, a name."""
    if not isinstance(ref, dict):
        errs.required("roleRef")
        return
    if ref.get("apiGroup") != GROUP:
        errs.not_supported("roleRef.apiGroup", ref.get("apiGroup") or "", (GROUP,))
    if ref.get("kind") not in kinds:
        errs.not_supported("roleRef.kind", ref.get("kind") or "", kinds)
    if not ref.get("name"):
        errs.required("roleRef.name")
