"""The ReplicaSet controller: keeps the number of live pods equal to ``spec.replicas``.

Like kube-controller-manager's: it owns pods through a controller ownerReference, adopts
orphans that match its selector, releases owned pods whose labels no longer match (they keep
running and a replacement is created), and when there are too many it deletes unscheduled
before scheduled, pending before running, not-ready before ready, recently-ready before
long-ready, and newer before older pods. "Expectations" remember creations and deletions
that the informer has not shown yet, so a slow watch never causes a double create.
"""

from __future__ import annotations

import time

from sandbox.client import REPLICASETS, Obj, key_of
from sandbox.controllers.workload import (
    BURST,
    Expectations,
    WorkloadController,
    pod_delete_rank,
    pod_from_template,
    slow_start,
)
from sandbox.meta import is_pod_active, is_pod_available, is_pod_ready

__all__ = ["Expectations", "ReplicaSetController", "pod_delete_rank"]


class ReplicaSetController(WorkloadController):
    """Reconciles ReplicaSets with their pods."""

    resource = REPLICASETS
    component = "replicaset-controller"

    def adoptable(self, owner: Obj, child: Obj) -> bool:
        """Only active pods are claimed (`FilterActivePods` before `claimPods`)."""
        return is_pod_active(child)

    async def sync(self, key: str) -> None:
        """Reconcile one ReplicaSet."""
        found = await self.claimed(key)
        if found is None:
            return
        rs, owned = found
        active = [p for p in owned if is_pod_active(p)]
        if self.expectations.satisfied(key):
            await self._manage(rs, key, active)
        await self._update_status(rs, owned, active)

    async def _manage(self, rs: Obj, key: str, active: list[Obj]) -> None:
        """Create or delete pods so that ``len(active) == spec.replicas``."""
        diff = len(active) - int(rs["spec"].get("replicas", 1))
        if diff < 0:
            template = rs["spec"].get("template") or {}
            await slow_start(range(min(-diff, BURST)),
                             lambda _: self.create_pod(rs, key, pod_from_template(rs, template)))
        elif diff > 0:
            await self.delete_pods(rs, key, sorted(active, key=pod_delete_rank)[:diff])

    async def _update_status(self, rs: Obj, owned: list[Obj], active: list[Obj]) -> None:
        """Write replicas / fullyLabeledReplicas / readyReplicas / availableReplicas if they changed."""
        template_labels = ((rs["spec"].get("template") or {}).get("metadata") or {}).get("labels") or {}
        min_ready = int(rs["spec"].get("minReadySeconds") or 0)
        now = time.time()
        available = [p for p in active if is_pod_available(p, min_ready, now=now)]
        status = {
            "replicas": len(active),
            "fullyLabeledReplicas": sum(
                1
                for p in active
                if all((p["metadata"].get("labels") or {}).get(k) == v for k, v in template_labels.items())
            ),
            "readyReplicas": sum(1 for p in active if is_pod_ready(p)),
            "availableReplicas": len(available),
            "terminatingReplicas": sum(1 for p in owned if p["metadata"].get("deletionTimestamp")),
            "observedGeneration": rs["metadata"].get("generation", 1),
        }
        if min_ready and any(is_pod_ready(p) for p in active) and len(available) < status["readyReplicas"]:
            self.queue.add_after(key_of(rs), 1.0)
        await self.write_status(rs, status)
