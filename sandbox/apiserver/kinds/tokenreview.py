"""TokenReview (authentication.k8s.io/v1, create only), kube-apiserver's
`pkg/registry/authentication/tokenreview`.

Not stored: a create asks the API server's authenticator (`auth.Authenticator.review`) whether
`spec.token` is valid for `spec.audiences` (the API server's own audience when empty) and
answers with `status.authenticated`, the token's `user` and the `audiences` it is valid for,
or `error` — what webhook token authenticators and `kube-rbac-proxy` style sidecars rely on.
An empty token or a namespaced request is 400 with kube-apiserver's messages. Who may ask
is RBAC's business (`system:auth-delegator` grants it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

from sandbox.apiserver import errors
from sandbox.apiserver.auth import API_AUDIENCES
from sandbox.apiserver.schemas import decode_error_of
from sandbox.apiserver.store import encode
from sandbox.apiserver.strategy import Resource, Strategy, now

if TYPE_CHECKING:
    from sandbox.apiserver.server import ApiServer, Target

DEFINITION = "io.k8s.api.authentication.v1.TokenReview"
RESOURCE = Resource("authentication.k8s.io", "v1", "TokenReview", "tokenreviews", DEFINITION,
                    namespaced=False, verbs=("create",))
INVALID_TOKEN = "invalid bearer token"


class TokenReviewStrategy(Strategy):
    """TokenReview: is this token valid, and whose is it."""

    resource = RESOURCE

    async def serve_create(self, api: ApiServer, request: web.Request,
                           target: Target) -> web.StreamResponse | None:
        """The review of `spec.token`, as `tokenreview.REST.Create` answers it."""
        body = await api.object_body(request)
        for key, want in (("kind", "TokenReview"), ("apiVersion", "authentication.k8s.io/v1")):
            if body.get(key) not in (None, "", want):
                what = "kind" if key == "kind" else "API version"
                raise errors.bad_request(f"the {what} in the data ({body[key]}) does not match the expected "
                                         f"{what} ({want})")
        undecodable = decode_error_of(DEFINITION, body)
        if undecodable is not None:
            raise errors.bad_request(undecodable)
        if target.namespace:
            raise errors.bad_request(f"namespace is not allowed on this type: {target.namespace}")
        spec: dict[str, Any] = dict(body.get("spec") or {})
        token = str(spec.get("token") or "")
        if not token:
            raise errors.bad_request("token is required for TokenReview in authentication")
        wanted = list(spec.get("audiences") or API_AUDIENCES)
        user, audiences = api.authenticator.review(token, wanted)
        status: dict[str, Any] = {"authenticated": user is not None, "user": {}}
        if user is None:
            status["error"] = INVALID_TOKEN
        else:
            status["user"] = user.as_json()
            status["audiences"] = audiences
        meta = dict(body.get("metadata") or {})
        meta["creationTimestamp"] = now()
        review = {"kind": "TokenReview", "apiVersion": "authentication.k8s.io/v1", "metadata": meta,
                  "spec": spec, "status": status}
        return web.Response(status=201, body=encode(review), content_type="application/json")


STRATEGY = TokenReviewStrategy()
