"""Read-only kinds computed per request, never stored: what kube-apiserver's own REST storages
without etcd do (`componentstatus/rest.go`) and what an aggregated API such as metrics-server
serves (PodMetrics, NodeMetrics).

A `ComputedStrategy` says what objects exist right now (`items`) and how a Table row shows one
(`columns`, `row`); its `serve` hook answers GET of a list (namespace and labelSelector honoured)
or of one object (404 when it does not exist), as JSON or as a Table. There is no watch, no
write and no resourceVersion.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from aiohttp import web

from sandbox.apiserver import errors
from sandbox.apiserver.selectors import SelectorError, labels_match, parse_label_selector
from sandbox.apiserver.strategy import Strategy

if TYPE_CHECKING:
    from sandbox.apiserver.server import ApiServer, Target


class ComputedStrategy(Strategy):
    """A kind answered from `items` at request time (get and list only)."""

    def items(self, server: ApiServer) -> list[dict[str, Any]]:
        """The objects of this resource right now."""
        raise NotImplementedError

    async def serve(self, server: ApiServer, request: web.Request, target: Target) -> web.StreamResponse:
        """GET a list (namespace, labelSelector) or one object, as JSON or a Table."""
        from sandbox.apiserver.server import negotiate

        res = self.resource
        try:
            selector = parse_label_selector(request.query.get("labelSelector"))
        except SelectorError as exc:
            raise errors.bad_request(str(exc)) from None
        objects = [o for o in self.items(server)
                   if (not target.namespace_given or o["metadata"].get("namespace") == target.namespace)
                   and labels_match(selector, o["metadata"].get("labels"))]
        if target.name is not None:
            objects = [o for o in objects if o["metadata"]["name"] == target.name]
            if not objects:
                raise errors.not_found(res, target.name)
        negotiated = negotiate(request.headers.get("Accept"), table_ok=True)
        if negotiated.as_kind == "Table":
            now = datetime.now(UTC)
            body: dict[str, Any] = {
                "kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": {"resourceVersion": ""},
                "columnDefinitions": self.columns(),
                "rows": [{"cells": self.row(o, now),
                          "object": {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                                     "metadata": o["metadata"]}} for o in objects],
            }
        elif target.name is not None:
            body = objects[0]
        else:
            body = {"kind": f"{res.kind}List", "apiVersion": res.api_version, "metadata": {},
                    "items": objects}
        return web.json_response(body)
