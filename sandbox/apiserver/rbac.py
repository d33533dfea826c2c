"""RBAC authorization, the sandbox's `plugin/pkg/auth/authorizer/rbac` and bootstrap policy.

Every authenticated request is described by its attributes (`request_attributes`, like
kube-apiserver's RequestInfoFactory: verb, namespace, API group, resource, subresource, name,
or a non-resource path) and allowed when a rule of a role bound to the user allows it:

- ClusterRoleBindings grant their ClusterRole everywhere; RoleBindings grant their Role or
  ClusterRole in their namespace;
- a subject matches a User by name, a Group by any of the user's groups, a ServiceAccount by
  namespace/name (`system:serviceaccount:<ns>:<name>`);
- `RuleAllows`: verbs, API groups, resources (`*`, `resource/subresource`, `*/subresource`),
  resourceNames (only requests naming an object), nonResourceURLs (`*` and `prefix*`);
- an aggregated ClusterRole (`aggregationRule`) has the rules of every ClusterRole its label
  selectors match, as the aggregation controller would write them;
- members of `system:masters` (the admin token) are allowed everything, like kube-apiserver's
  privileged-group authorizer.

Denials are 403 with kube-apiserver's message: `pods is forbidden: User
"system:serviceaccount:default:x" cannot list resource "pods" in API group "" in the namespace
"default"`. `rules_for` answers SelfSubjectRulesReview, `authorize` SelfSubjectAccessReview.

The bootstrap policy (`DEFAULT_CLUSTER_ROLES`, `DEFAULT_CLUSTER_ROLE_BINDINGS`) is the part
of Kubernetes' that a learner meets: cluster-admin, admin/edit/view (aggregated from
system:aggregate-to-*), system:basic-user, system:discovery, system:public-info-viewer and
their bindings, limited to the kinds the sandbox serves.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sandbox.meta import selector_matches

from .auth import UserInfo
from .errors import ApiError

if TYPE_CHECKING:
    from .store import Store

GROUP = "rbac.authorization.k8s.io"
ROLES, ROLE_BINDINGS = f"{GROUP}/roles", f"{GROUP}/rolebindings"
CLUSTER_ROLES, CLUSTER_ROLE_BINDINGS = f"{GROUP}/clusterroles", f"{GROUP}/clusterrolebindings"
SUPERUSER_GROUP = "system:masters"
NAMESPACE_SUBRESOURCES = frozenset({"status", "finalize"})


@dataclass(frozen=True)
class Attributes:
    """What a request asks to do (`authorizer.Attributes`)."""

    verb: str
    resource_request: bool
    namespace: str = ""
    api_group: str = ""
    api_version: str = ""
    resource: str = ""
    subresource: str = ""
    name: str = ""
    path: str = ""


CONNECT_CREATE = frozenset({"exec", "attach", "portforward"})


def request_attributes(method: str, path: str, query: Any) -> Attributes:
    """`RequestInfoFactory.NewRequestInfo`: the attributes of an HTTP request."""
    parts = [p for p in path.strip("/").split("/") if p]
    http_verb = method.lower()
    if len(parts) < 2 or parts[0] not in ("api", "apis") or (parts[0] == "apis" and len(parts) < 3):
        return Attributes(verb=http_verb, resource_request=False, path=path)
    if parts[0] == "api":
        group, version, rest = "", parts[1], parts[2:]
    else:
        group, version, rest = parts[1], parts[2], parts[3:]
    if not rest:
        return Attributes(verb=http_verb, resource_request=False, path=path)
    watch = False
    if rest[0] == "watch":
        watch, rest = True, rest[1:]
    namespace = ""
    if rest and rest[0] == "namespaces" and len(rest) > 1:
        namespace = rest[1]
        if len(rest) > 2 and rest[2] not in NAMESPACE_SUBRESOURCES:
            rest = rest[2:]
    resource = rest[0] if rest else ""
    name = rest[1] if len(rest) > 1 else ""
    subresource = rest[2] if len(rest) > 2 else ""
    if method == "GET" and (watch or str(query.get("watch", "")).lower() in ("true", "1")):
        verb = "watch"
    elif method in ("GET", "HEAD"):
        verb = "get" if name else "list"
    elif method == "DELETE":
        verb = "delete" if name else "deletecollection"
    else:
        verb = {"POST": "create", "PUT": "update", "PATCH": "patch"}.get(method, http_verb)
    if verb == "get" and subresource in CONNECT_CREATE:
        verb = "create"  # AuthorizePodWebsocketUpgradeCreatePermission: a WebSocket GET needs create
    return Attributes(verb=verb, resource_request=True, namespace=namespace, api_group=group,
                      api_version=version, resource=resource, subresource=subresource, name=name, path=path)


def _matches(values: Iterable[str], wanted: str) -> bool:
    values = list(values or [])
    return "*" in values or wanted in values


def rule_allows(attrs: Attributes, rule: dict) -> bool:
    """`RuleAllows`: whether one PolicyRule covers the request."""
    if not _matches(rule.get("verbs") or [], attrs.verb):
        return False
    if not attrs.resource_request:
        for url in rule.get("nonResourceURLs") or []:
            if url == "*" or url == attrs.path or (url.endswith("*") and attrs.path.startswith(url[:-1])):
                return True
        return False
    if not _matches(rule.get("apiGroups") or [], attrs.api_group):
        return False
    combined = f"{attrs.resource}/{attrs.subresource}" if attrs.subresource else attrs.resource
    resource_ok = False
    for resource in rule.get("resources") or []:
        if resource in ("*", combined) or (attrs.subresource and resource == f"*/{attrs.subresource}"):
            resource_ok = True
            break
    if not resource_ok:
        return False
    names = rule.get("resourceNames") or []
    return not names or attrs.name in names


def _subject_matches(subject: dict, user: UserInfo, binding_namespace: str) -> bool:
    kind, name = subject.get("kind"), subject.get("name")
    if kind == "User":
        return name == user.username
    if kind == "Group":
        return name in user.groups
    if kind == "ServiceAccount":
        account = user.service_account
        namespace = subject.get("namespace") or binding_namespace
        return account == (namespace, name)
    return False


def _describe_subject(subject: dict, binding_namespace: str) -> str:
    if subject.get("kind") == "ServiceAccount":
        return f'ServiceAccount "{subject.get("name")}/{subject.get("namespace") or binding_namespace}"'
    return f'{subject.get("kind")} "{subject.get("name")}"'


def aggregated_rules(role: dict, roles: Iterable[dict]) -> list[dict]:
    """The rules an aggregated ClusterRole has (`ClusterRoleAggregationController.syncClusterRole`):
    those of every other ClusterRole a `clusterRoleSelectors` entry matches, by role name, each
    rule once."""
    aggregation = role.get("aggregationRule")
    if not isinstance(aggregation, dict):
        return []
    selectors = [s for s in aggregation.get("clusterRoleSelectors") or [] if isinstance(s, dict) and s]
    name = role["metadata"]["name"]
    matched = sorted((other for other in roles if other["metadata"]["name"] != name
                      and any(selector_matches(s, other["metadata"].get("labels") or {}) for s in selectors)),
                     key=lambda other: other["metadata"]["name"])
    rules: list[dict] = []
    for other in matched:
        for rule in other.get("rules") or []:
            if isinstance(rule, dict) and rule not in rules:
                rules.append(rule)
    return rules


class Authorizer:
    """Answers "may this user do this?" from the stored RBAC objects."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def _cluster_role_rules(self, name: str) -> list[dict]:
        entry = self.store.get(CLUSTER_ROLES, "", name)
        if entry is None:
            return []
        role = entry.obj
        rules = [r for r in role.get("rules") or [] if isinstance(r, dict)]
        if isinstance(role.get("aggregationRule"), dict):
            # Until the aggregation controller has written them back (then this adds nothing).
            others = [e.obj for e in self.store.entries(CLUSTER_ROLES)]
            rules += [r for r in aggregated_rules(role, others) if r not in rules]
        return rules

    def _role_rules(self, ref: dict, namespace: str) -> list[dict]:
        if ref.get("kind") == "ClusterRole":
            return self._cluster_role_rules(str(ref.get("name") or ""))
        entry = self.store.get(ROLES, namespace, str(ref.get("name") or ""))
        return [r for r in (entry.obj.get("rules") or []) if isinstance(r, dict)] if entry else []

    def _grants(self, user: UserInfo, namespace: str) -> Iterable[tuple[str, list[dict]]]:
        """(how it is granted, rules) for every binding of the user that applies in ``namespace``."""
        for entry in self.store.entries(CLUSTER_ROLE_BINDINGS):
            binding = entry.obj
            for subject in binding.get("subjects") or []:
                if isinstance(subject, dict) and _subject_matches(subject, user, ""):
                    ref = binding.get("roleRef") or {}
                    source = (f'ClusterRoleBinding "{binding["metadata"]["name"]}" of {ref.get("kind")} '
                              f'"{ref.get("name")}" to {_describe_subject(subject, "")}')
                    yield source, self._role_rules(ref, "")
                    break
        if not namespace:
            return
        for entry in self.store.entries(ROLE_BINDINGS, namespace):
            binding = entry.obj
            for subject in binding.get("subjects") or []:
                if isinstance(subject, dict) and _subject_matches(subject, user, namespace):
                    ref = binding.get("roleRef") or {}
                    source = (f'RoleBinding "{binding["metadata"]["name"]}/{namespace}" of {ref.get("kind")} '
                              f'"{ref.get("name")}" to {_describe_subject(subject, namespace)}')
                    yield source, self._role_rules(ref, namespace)
                    break

    def authorize(self, user: UserInfo, attrs: Attributes) -> tuple[bool, str]:
        """(allowed, reason) as the RBAC authorizer (behind the privileged group) decides."""
        if SUPERUSER_GROUP in user.groups:
            return True, ""
        for source, rules in self._grants(user, attrs.namespace):
            if any(rule_allows(attrs, rule) for rule in rules):
                return True, f"RBAC: allowed by {source}"
        return False, ""

    def rules_for(self, user: UserInfo, namespace: str) -> tuple[list[dict], list[dict]]:
        """(resourceRules, nonResourceRules) the user has in ``namespace`` (SelfSubjectRulesReview)."""
        if SUPERUSER_GROUP in user.groups:
            return ([{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}],
                    [{"verbs": ["*"], "nonResourceURLs": ["*"]}])
        resource_rules: list[dict] = []
        non_resource: list[dict] = []
        for _, rules in self._grants(user, namespace):
            for rule in rules:
                if rule.get("nonResourceURLs"):
                    non_resource.append({"verbs": list(rule.get("verbs") or []),
                                         "nonResourceURLs": list(rule["nonResourceURLs"])})
                else:
                    out = {"verbs": list(rule.get("verbs") or []),
                           "apiGroups": list(rule.get("apiGroups") or []),
                           "resources": list(rule.get("resources") or [])}
                    if rule.get("resourceNames"):
                        out["resourceNames"] = list(rule["resourceNames"])
                    resource_rules.append(out)
        return resource_rules, non_resource


def forbidden(user: UserInfo, attrs: Attributes) -> ApiError:
    """kube-apiserver's 403 for a denied request (`responsewriters.Forbidden`)."""
    if not attrs.resource_request:
        why = f'User "{user.username}" cannot {attrs.verb} path "{attrs.path}"'
        return ApiError(403, "Forbidden", f"forbidden: {why}", details={})
    resource = f"{attrs.resource}/{attrs.subresource}" if attrs.subresource else attrs.resource
    scope = f'in the namespace "{attrs.namespace}"' if attrs.namespace else "at the cluster scope"
    why = (f'User "{user.username}" cannot {attrs.verb} resource "{resource}" in API group '
           f'"{attrs.api_group}" {scope}')
    qualified = f"{attrs.resource}.{attrs.api_group}" if attrs.api_group else attrs.resource
    subject = f'{qualified} "{attrs.name}"' if attrs.name else qualified
    details: dict[str, str] = {"kind": attrs.resource}
    if attrs.name:
        details = {"name": attrs.name, **details}
    if attrs.api_group:
        details["group"] = attrs.api_group
    return ApiError(403, "Forbidden", f"{subject} is forbidden: {why}", details=details)


# --- bootstrap policy ------------------------------------------------------------------------------

READ = ["get", "list", "watch"]
WRITE = ["create", "delete", "deletecollection", "patch", "update"]
BOOTSTRAP_LABELS = {"kubernetes.io/bootstrapping": "rbac-defaults"}
AUTOUPDATE = {"rbac.authorization.kubernetes.io/autoupdate": "true"}
AGGREGATE = "rbac.authorization.k8s.io/aggregate-to-"

_VIEWABLE: list[tuple[str, list[str]]] = [
    ("", ["configmaps", "endpoints", "persistentvolumeclaims", "persistentvolumeclaims/status", "pods",
          "replicationcontrollers", "replicationcontrollers/scale", "serviceaccounts", "services",
          "services/status", "bindings", "events", "limitranges", "namespaces/status", "pods/log",
          "pods/status", "replicationcontrollers/status", "resourcequotas", "resourcequotas/status"]),
    ("", ["namespaces"]),
    ("discovery.k8s.io", ["endpointslices"]),
    ("apps", ["controllerrevisions", "daemonsets", "daemonsets/status", "deployments", "deployments/scale",
              "deployments/status", "replicasets", "replicasets/scale", "replicasets/status", "statefulsets",
              "statefulsets/scale", "statefulsets/status"]),
    ("autoscaling", ["horizontalpodautoscalers", "horizontalpodautoscalers/status"]),
    ("batch", ["cronjobs", "cronjobs/status", "jobs", "jobs/status"]),
    ("networking.k8s.io", ["ingresses", "ingresses/status", "networkpolicies"]),
    ("policy", ["poddisruptionbudgets", "poddisruptionbudgets/status"]),
]
_EDITABLE: list[tuple[str, list[str]]] = [
    ("", ["configmaps", "endpoints", "events", "persistentvolumeclaims", "pods", "pods/attach",
          "pods/eviction", "pods/exec", "pods/portforward", "pods/proxy", "replicationcontrollers",
          "replicationcontrollers/scale", "secrets", "serviceaccounts", "services", "services/proxy"]),
    ("apps", ["daemonsets", "deployments", "deployments/rollback", "deployments/scale", "replicasets",
              "replicasets/scale", "statefulsets", "statefulsets/scale"]),
    ("autoscaling", ["horizontalpodautoscalers"]),
    ("batch", ["cronjobs", "jobs"]),
    ("coordination.k8s.io", ["leases"]),
    ("discovery.k8s.io", ["endpointslices"]),
    ("networking.k8s.io", ["ingresses", "networkpolicies"]),
    ("policy", ["poddisruptionbudgets"]),
]


def _cluster_role(name: str, rules: list[dict], *, labels: dict[str, str] | None = None,
                  aggregate_from: str | None = None) -> dict:
    role: dict[str, Any] = {"metadata": {"name": name, "labels": {**BOOTSTRAP_LABELS, **(labels or {})},
                                         "annotations": dict(AUTOUPDATE)}, "rules": rules}
    if aggregate_from:
        selector = {"matchLabels": {AGGREGATE + aggregate_from: "true"}}
        role["aggregationRule"] = {"clusterRoleSelectors": [selector]}
        role["rules"] = []
    return role


DEFAULT_CLUSTER_ROLES: tuple[dict, ...] = (
    _cluster_role("cluster-admin", [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]},
                                    {"verbs": ["*"], "nonResourceURLs": ["*"]}]),
    _cluster_role("admin", [], aggregate_from="admin"),
    _cluster_role("edit", [], labels={AGGREGATE + "admin": "true"}, aggregate_from="edit"),
    _cluster_role("view", [], labels={AGGREGATE + "edit": "true"}, aggregate_from="view"),
    _cluster_role("system:aggregate-to-admin", [
        {"verbs": ["create"], "apiGroups": ["authorization.k8s.io"],
         "resources": ["localsubjectaccessreviews"]},
        {"verbs": [*READ, *WRITE], "apiGroups": [GROUP], "resources": ["rolebindings", "roles"]},
    ], labels={AGGREGATE + "admin": "true"}),
    _cluster_role("system:aggregate-to-edit", [
        *({"verbs": [*READ, *WRITE], "apiGroups": [group], "resources": resources}
          for group, resources in _EDITABLE),
        {"verbs": ["create"], "apiGroups": [""], "resources": ["serviceaccounts/token"]},
    ], labels={AGGREGATE + "edit": "true"}),
    _cluster_role("system:aggregate-to-view", [
        {"verbs": READ, "apiGroups": [group], "resources": resources} for group, resources in _VIEWABLE
    ], labels={AGGREGATE + "view": "true"}),
    _cluster_role("system:basic-user", [
        {"verbs": ["create"], "apiGroups": ["authorization.k8s.io"],
         "resources": ["selfsubjectaccessreviews", "selfsubjectrulesreviews"]},
        {"verbs": ["create"], "apiGroups": ["authentication.k8s.io"], "resources": ["selfsubjectreviews"]},
    ]),
    _cluster_role("system:discovery", [
        {"verbs": ["get"], "nonResourceURLs": ["/api", "/api/*", "/apis", "/apis/*", "/healthz", "/livez",
                                               "/openapi", "/openapi/*", "/readyz", "/version", "/version/"]},
    ]),
    _cluster_role("system:public-info-viewer", [
        {"verbs": ["get"], "nonResourceURLs": ["/healthz", "/livez", "/readyz", "/version", "/version/"]},
    ]),
)


def _binding(name: str, role: str, *subjects: tuple[str, str]) -> dict:
    return {"metadata": {"name": name, "labels": dict(BOOTSTRAP_LABELS), "annotations": dict(AUTOUPDATE)},
            "roleRef": {"apiGroup": GROUP, "kind": "ClusterRole", "name": role},
            "subjects": [{"apiGroup": GROUP, "kind": kind, "name": subject} for kind, subject in subjects]}


DEFAULT_CLUSTER_ROLE_BINDINGS: tuple[dict, ...] = (
    _binding("cluster-admin", "cluster-admin", ("Group", SUPERUSER_GROUP)),
    _binding("system:basic-user", "system:basic-user", ("Group", "system:authenticated")),
    _binding("system:discovery", "system:discovery", ("Group", "system:authenticated")),
    _binding("system:public-info-viewer", "system:public-info-viewer", ("Group", "system:authenticated"),
             ("Group", "system:unauthenticated")),
)
