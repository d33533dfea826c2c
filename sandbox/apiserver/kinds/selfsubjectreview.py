"""SelfSubjectReview (authentication.k8s.io/v1): `kubectl auth whoami`.

Not stored: a create answers with the caller's own user info (`status.userInfo`: username,
uid, groups, extra) as the authenticator saw it, like kube-apiserver's
`pkg/registry/authentication/selfsubjectreview`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from sandbox.apiserver.auth import USER
from sandbox.apiserver.store import encode
from sandbox.apiserver.strategy import Resource, Strategy, now

if TYPE_CHECKING:
    from sandbox.apiserver.server import ApiServer, Target

RESOURCE = Resource("authentication.k8s.io", "v1", "SelfSubjectReview", "selfsubjectreviews",
                    "io.k8s.api.authentication.v1.SelfSubjectReview", namespaced=False, verbs=("create",))


class SelfSubjectReviewStrategy(Strategy):
    """SelfSubjectReview: who am I."""

    resource = RESOURCE

    async def serve_create(self, api: ApiServer, request: web.Request,
                           target: Target) -> web.StreamResponse | None:
        """The caller's user info (the body is read and ignored, as on a real server)."""
        await api.object_body(request)
        review = {"kind": "SelfSubjectReview", "apiVersion": "authentication.k8s.io/v1",
                  "metadata": {"creationTimestamp": now()},
                  "status": {"userInfo": request[USER].as_json()}}
        return web.Response(status=201, body=encode(review), content_type="application/json")


STRATEGY = SelfSubjectReviewStrategy()
