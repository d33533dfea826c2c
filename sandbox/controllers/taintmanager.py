"""The taint-eviction controller: pods leave nodes with NoExecute taints they do not tolerate
(kube-controller-manager's `pkg/controller/tainteviction`, formerly the node lifecycle
controller's taint manager).

For each pod bound to a node with NoExecute taints: a taint no toleration of the pod matches
means deletion now; otherwise the pod stays for the smallest `tolerationSeconds` among the
tolerations used (forever when none sets it), counted from when the controller first saw the
pod under the taints, like kube-controller-manager's timed queue. The deletion adds the
`DisruptionTarget` condition (DeletionByTaintManager) and records a TaintManagerEviction event
"Marking for deletion Pod <ns>/<name>"; a pending deletion whose taint goes away (or becomes
tolerated) is cancelled with "Cancelling deletion of Pod <ns>/<name>". Toleration matching is
the scheduler's `tolerates` (one implementation of `Toleration.ToleratesTaint`).
"""

from __future__ import annotations

import logging
import time

from sandbox.client import (
    NODES,
    PODS,
    STRATEGIC_MERGE_PATCH,
    ApiClient,
    ApiError,
    InformerFactory,
    Obj,
    event_key,
    key_of,
)
from sandbox.controllers.workqueue import WorkQueue
from sandbox.meta import now_iso
from sandbox.record import NORMAL, EventRecorder
from sandbox.scheduler import tolerates

log = logging.getLogger(__name__)

DISRUPTION_TARGET = {"type": "DisruptionTarget", "status": "True", "reason": "DeletionByTaintManager",
                     "message": "Taint manager: deleting due to NoExecute taint"}


def no_execute_taints(node: Obj | None) -> list[Obj]:
    """The node's NoExecute taints."""
    return [t for t in ((node or {}).get("spec") or {}).get("taints") or []
            if isinstance(t, dict) and t.get("effect") == "NoExecute"]


def min_toleration_seconds(pod: Obj, taints: list[Obj]) -> float | None:
    """`GetMatchingTolerations` + `getMinTolerationTime`: 0 when a taint is not tolerated, the
    smallest tolerationSeconds of the tolerations used (negative counts as 0), None for forever."""
    tolerations = [t for t in (pod.get("spec") or {}).get("tolerations") or []
                   if isinstance(t, dict) and t.get("effect") in (None, "", "NoExecute")]
    seconds: float | None = None
    for taint in taints:
        used = [t for t in tolerations if tolerates(t, taint)]
        if not used:
            return 0.0
        for toleration in used:
            value = toleration.get("tolerationSeconds")
            if value is None:
                continue
            value = max(float(value), 0.0)
            seconds = value if seconds is None else min(seconds, value)
    return seconds


class TaintEvictionController:
    """Deletes pods from nodes whose NoExecute taints they do not (or no longer) tolerate."""

    def __init__(self, client: ApiClient, informers: InformerFactory) -> None:
        self.client = client
        self.pods = informers.informer(PODS)
        self.nodes = informers.informer(NODES)
        self.queue = WorkQueue("taint-eviction")
        self.recorder = EventRecorder(client, component="taint-eviction-controller")
        self._on_node_pods: dict[str, set[str]] = {}
        self._node_of: dict[str, str] = {}
        self._since: dict[str, float] = {}  # pod key -> when its countdown started
        self.pods.add_handler(self._on_pod)
        self.nodes.add_handler(self._on_node)

    def _on_pod(self, kind: str, old: Obj | None, new: Obj | None) -> None:
        key = event_key(old, new)
        node = ((new or {}).get("spec") or {}).get("nodeName") if new is not None else None
        before = self._node_of.pop(key, None)
        if before is not None:
            self._on_node_pods.get(before, set()).discard(key)
        if node:
            self._node_of[key] = node
            self._on_node_pods.setdefault(node, set()).add(key)
            self.queue.add(key)
        elif new is None:
            self._since.pop(key, None)

    def _on_node(self, kind: str, old: Obj | None, new: Obj | None) -> None:
        """Queue the node's pods when its NoExecute taints change."""
        if no_execute_taints(old) == no_execute_taints(new):
            return
        name = (new or old or {}).get("metadata", {}).get("name", "")
        for key in list(self._on_node_pods.get(name, ())):
            self.queue.add(key)

    async def run(self) -> None:
        """Process pods forever."""
        await self.queue.run(self.process, workers=1)

    async def process(self, key: str) -> None:
        """`processPodOnNode`: delete now, later, or cancel."""
        pod = self.pods.get(key)
        if pod is None or pod["metadata"].get("deletionTimestamp"):
            self._since.pop(key, None)
            return
        node = self.nodes.get(str((pod.get("spec") or {}).get("nodeName") or ""))
        taints = no_execute_taints(node)
        seconds = min_toleration_seconds(pod, taints) if taints else None
        if seconds is None:
            if self._since.pop(key, None) is not None:
                self.recorder.event(pod, NORMAL, "TaintManagerEviction", f"Cancelling deletion of Pod {key}")
            return
        now = time.time()
        started = self._since.setdefault(key, now)
        remaining = started + seconds - now
        if remaining > 0:
            self.queue.add_after(key, remaining)
            return
        await self._evict(pod)

    async def _evict(self, pod: Obj) -> None:
        """Mark the pod DisruptionTarget and delete it (`addConditionAndDeletePod`)."""
        ns, name = pod["metadata"]["namespace"], pod["metadata"]["name"]
        self.recorder.event(pod, NORMAL, "TaintManagerEviction", f"Marking for deletion Pod {ns}/{name}")
        condition = {**DISRUPTION_TARGET, "lastProbeTime": None, "lastTransitionTime": now_iso()}
        try:
            await self.client.patch(PODS, name, {"status": {"conditions": [condition]}}, namespace=ns,
                                    subresource="status", content_type=STRATEGIC_MERGE_PATCH)
            await self.client.delete(PODS, name, namespace=ns)
        except ApiError as exc:
            if not exc.not_found:
                raise
        self._since.pop(key_of(pod), None)
