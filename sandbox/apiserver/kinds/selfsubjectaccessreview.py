"""SelfSubjectAccessReview and SelfSubjectRulesReview (authorization.k8s.io/v1): `kubectl auth
can-i VERB RESOURCE` and `kubectl auth can-i --list`.

Not stored: a create answers with the RBAC authorizer's decision for the caller
(`status.allowed` and, when allowed by a binding, kube-apiserver's `reason` — `RBAC: allowed by
RoleBinding "x/ns" of Role "r" to ServiceAccount "sa/ns"`) or with the rules the caller has in a
namespace (`status.resourceRules`, `status.nonResourceRules`). Exactly one of
`resourceAttributes` and `nonResourceAttributes` must be given, as
`ValidateSelfSubjectAccessReviewSpec` requires.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

from sandbox.apiserver import errors
from sandbox.apiserver.auth import USER
from sandbox.apiserver.errors import ApiError
from sandbox.apiserver.rbac import Attributes
from sandbox.apiserver.schemas import decode_error_of
from sandbox.apiserver.store import encode
from sandbox.apiserver.strategy import Resource, Strategy, now
from sandbox.apiserver.validation.fielderrors import Errors, Invalid

if TYPE_CHECKING:
    from sandbox.apiserver.server import ApiServer, Target

GROUP = "authorization.k8s.io"


async def _review_body(api: ApiServer, request: web.Request, kind: str) -> dict:
    body = await api.object_body(request)
    undecodable = decode_error_of(f"io.k8s.api.authorization.v1.{kind}", body)
    if undecodable is not None:
        raise errors.bad_request(undecodable)
    return body


def _invalid(kind: str, errs: Errors) -> ApiError:
    invalid = Invalid(kind=kind, group=GROUP, name="", errors=list(errs))
    return ApiError(422, "Invalid", invalid.message, details={"group": GROUP, "kind": kind,
                                                              "causes": invalid.causes})


def _answer(kind: str, body: dict, status: dict[str, Any]) -> web.Response:
    review = {"kind": kind, "apiVersion": f"{GROUP}/v1",
              "metadata": {**(body.get("metadata") or {}), "creationTimestamp": now()},
              "spec": body.get("spec") or {}, "status": status}
    return web.Response(status=201, body=encode(review), content_type="application/json")


ACCESS = Resource(GROUP, "v1", "SelfSubjectAccessReview", "selfsubjectaccessreviews",
                  "io.k8s.api.authorization.v1.SelfSubjectAccessReview", namespaced=False, verbs=("create",))
RULES = Resource(GROUP, "v1", "SelfSubjectRulesReview", "selfsubjectrulesreviews",
                 "io.k8s.api.authorization.v1.SelfSubjectRulesReview", namespaced=False, verbs=("create",))


class SelfSubjectAccessReviewStrategy(Strategy):
    """May I? The authorizer's answer for the caller."""

    resource = ACCESS

    async def serve_create(self, api: ApiServer, request: web.Request,
                           target: Target) -> web.StreamResponse | None:
        """Evaluate the review's attributes for the caller."""
        body = await _review_body(api, request, "SelfSubjectAccessReview")
        spec = body.get("spec") or {}
        resource, non_resource = spec.get("resourceAttributes"), spec.get("nonResourceAttributes")
        errs = Errors()
        if resource is not None and non_resource is not None:
            errs.invalid("spec.nonResourceAttributes", non_resource,
                         "cannot be specified in combination with resourceAttributes")
        if resource is None and non_resource is None:
            errs.invalid("spec.resourceAttributes", "null",
                         "exactly one of nonResourceAttributes or resourceAttributes must be specified")
        if errs:
            raise _invalid("SelfSubjectAccessReview", errs)
        if resource is not None:
            attrs = Attributes(verb=str(resource.get("verb") or ""), resource_request=True,
                               namespace=str(resource.get("namespace") or ""),
                               api_group=str(resource.get("group") or ""),
                               api_version=str(resource.get("version") or ""),
                               resource=str(resource.get("resource") or ""),
                               subresource=str(resource.get("subresource") or ""),
                               name=str(resource.get("name") or ""))
        else:
            url: dict[str, Any] = non_resource or {}
            attrs = Attributes(verb=str(url.get("verb") or ""), resource_request=False,
                               path=str(url.get("path") or ""))
        allowed, reason = api.authorizer.authorize(request[USER], attrs)
        status: dict[str, Any] = {"allowed": allowed}
        if reason:
            status["reason"] = reason
        return _answer("SelfSubjectAccessReview", body, status)


class SelfSubjectRulesReviewStrategy(Strategy):
    """What may I do in a namespace? The rules of the caller's bindings there."""

    resource = RULES

    async def serve_create(self, api: ApiServer, request: web.Request,
                           target: Target) -> web.StreamResponse | None:
        """List the caller's rules in spec.namespace."""
        body = await _review_body(api, request, "SelfSubjectRulesReview")
        namespace = str((body.get("spec") or {}).get("namespace") or "")
        if not namespace:
            errs = Errors()
            errs.required("spec.namespace")
            raise _invalid("SelfSubjectRulesReview", errs)
        resource_rules, non_resource_rules = api.authorizer.rules_for(request[USER], namespace)
        return _answer("SelfSubjectRulesReview", body, {"resourceRules": resource_rules,
                                                        "nonResourceRules": non_resource_rules,
                                                        "incomplete": False})


ACCESS_STRATEGY = SelfSubjectAccessReviewStrategy()
RULES_STRATEGY = SelfSubjectRulesReviewStrategy()
