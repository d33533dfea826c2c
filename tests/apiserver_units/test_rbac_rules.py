"""RBAC's pure parts: request attributes from paths (RequestInfoFactory), RuleAllows, and the
403 message kube-apiserver writes."""

from __future__ import annotations

import pytest

from sandbox.apiserver.auth import UserInfo
from sandbox.apiserver.rbac import Attributes, forbidden, request_attributes, rule_allows

SA = UserInfo("system:serviceaccount:default:x", groups=("system:serviceaccounts", "system:authenticated"))


@pytest.mark.parametrize(("method", "path", "query", "expected"), [
    ("GET", "/api/v1/namespaces/default/pods", {}, ("list", "default", "", "pods", "", "")),
    ("GET", "/api/v1/namespaces/default/pods", {"watch": "true"}, ("watch", "default", "", "pods", "", "")),
    ("GET", "/api/v1/watch/namespaces/default/pods", {}, ("watch", "default", "", "pods", "", "")),
    ("GET", "/api/v1/namespaces/default/pods/web/log", {}, ("get", "default", "", "pods", "log", "web")),
    ("POST", "/apis/apps/v1/namespaces/a/deployments", {}, ("create", "a", "apps", "deployments", "", "")),
    ("PATCH", "/apis/apps/v1/namespaces/a/deployments/d/scale", {},
     ("patch", "a", "apps", "deployments", "scale", "d")),
    ("DELETE", "/api/v1/namespaces/a/secrets", {}, ("deletecollection", "a", "", "secrets", "", "")),
    ("GET", "/api/v1/namespaces/team", {}, ("get", "team", "", "namespaces", "", "team")),
    ("PUT", "/api/v1/namespaces/team/finalize", {}, ("update", "team", "", "namespaces", "finalize", "team")),
    ("GET", "/api/v1/nodes", {}, ("list", "", "", "nodes", "", "")),
])
def test_request_attributes(method: str, path: str, query: dict, expected: tuple) -> None:
    attrs = request_attributes(method, path, query)
    assert attrs.resource_request
    got = (attrs.verb, attrs.namespace, attrs.api_group, attrs.resource, attrs.subresource, attrs.name)
    assert got == expected


def test_non_resource_requests() -> None:
    for path in ("/api", "/apis", "/apis/apps", "/version", "/openapi/v3"):
        attrs = request_attributes("GET", path, {})
        assert (attrs.resource_request, attrs.verb, attrs.path) == (False, "get", path)


def attrs(verb: str = "get", resource: str = "pods", sub: str = "", name: str = "",
          group: str = "") -> Attributes:
    return Attributes(verb=verb, resource_request=True, namespace="default", api_group=group,
                      resource=resource, subresource=sub, name=name)


def test_rule_allows() -> None:
    rule = {"verbs": ["get", "list"], "apiGroups": [""], "resources": ["pods", "pods/log"]}
    assert rule_allows(attrs(), rule)
    assert rule_allows(attrs(sub="log"), rule)
    assert not rule_allows(attrs(sub="exec"), rule)
    assert not rule_allows(attrs(verb="delete"), rule)
    assert not rule_allows(attrs(group="apps"), rule)
    assert rule_allows(attrs(verb="patch", sub="status"), {"verbs": ["*"], "apiGroups": ["*"],
                                                           "resources": ["*/status"]})
    named = {"verbs": ["get"], "apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["app"]}
    assert rule_allows(attrs(resource="configmaps", name="app"), named)
    assert not rule_allows(attrs(resource="configmaps", name="other"), named)
    assert not rule_allows(attrs(verb="get", resource="configmaps"), named)
    urls = {"verbs": ["get"], "nonResourceURLs": ["/healthz", "/apis/*"]}
    assert rule_allows(Attributes(verb="get", resource_request=False, path="/apis/apps/v1"), urls)
    assert not rule_allows(Attributes(verb="get", resource_request=False, path="/metrics"), urls)


def test_forbidden_messages_read_like_kube_apiservers() -> None:
    denied = forbidden(SA, attrs(verb="list"))
    assert denied.code == 403 and denied.details == {"kind": "pods"}
    assert denied.message == ('pods is forbidden: User "system:serviceaccount:default:x" cannot list '
                              'resource "pods" in API group "" in the namespace "default"')
    named = forbidden(SA, attrs(verb="get", resource="deployments", sub="scale", name="web", group="apps"))
    assert named.message == ('deployments.apps "web" is forbidden: User "system:serviceaccount:default:x" '
                             'cannot get resource "deployments/scale" in API group "apps" in the namespace '
                             '"default"')
    assert named.details == {"name": "web", "kind": "deployments", "group": "apps"}
    cluster = forbidden(SA, Attributes(verb="list", resource_request=True, resource="nodes"))
    assert cluster.message.endswith('cannot list resource "nodes" in API group "" at the cluster scope')
    path = forbidden(SA, Attributes(verb="get", resource_request=False, path="/metrics"))
    assert path.message == 'forbidden: User "system:serviceaccount:default:x" cannot get path "/metrics"'
