"""The serving-gate controller: the sandbox's host of the ``lb-demo.dev/serving`` rule.

An add-on controller, like the load-balancer controllers that own readiness gates on cloud
clusters: for every pod that declares the gate and has no such condition, it writes the
condition True through ``pods/<name>/status`` (strategic merge patch: no other condition is
touched). The rule itself is `servinggate.default_patch`, shared with the dashboard; this
module is only its plumbing on the sandbox's informers.
"""

from __future__ import annotations

import logging

import servinggate
from sandbox.client import PODS, ApiClient, ApiError, Informer, InformerFactory, Obj, key_of
from sandbox.controllers.workqueue import WorkQueue
from sandbox.meta import now_iso

log = logging.getLogger(__name__)


class ServingGateController:
    """Starts every gated pod serving (once; the readiness switch decides afterwards)."""

    def __init__(self, client: ApiClient, informers: InformerFactory) -> None:
        self.client = client
        self.pod_informer: Informer = informers.informer(PODS)
        self.queue = WorkQueue("servinggate")
        self.pod_informer.add_handler(self._on_pod)

    def _on_pod(self, kind: str, old: Obj | None, new: Obj | None) -> None:
        if new is not None and servinggate.default_patch(new, now="") is not None:
            self.queue.add(key_of(new))

    async def run(self) -> None:
        """Process the queue forever."""
        await self.queue.run(self.sync, workers=1)

    async def sync(self, key: str) -> None:
        """Apply the rule to one pod."""
        pod = self.pod_informer.get(key)
        if pod is None:
            return
        patch = servinggate.default_patch(pod, now=now_iso())
        if patch is None:
            return
        try:
            await self.client.patch(
                PODS,
                pod["metadata"]["name"],
                patch,
                namespace=pod["metadata"]["namespace"],
                subresource="status",
                content_type=servinggate.PATCH_CONTENT_TYPE,
            )
        except ApiError as exc:
            if not exc.not_found:
                raise
