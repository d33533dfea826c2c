"""The disruption controller: keeps each PodDisruptionBudget's status current
(kube-controller-manager's `pkg/controller/disruption`).

For every budget it finds the pods its selector covers, the number of pods it expects (the
scale of the pods' controllers — a Deployment through its ReplicaSet, a ReplicaSet, a
StatefulSet, any owner with a `scale` subresource — when the budget is a percentage or a
maxUnavailable, else the pods found), how many must stay healthy, how many are (ready, not
terminating, not just evicted), and writes `currentHealthy`, `desiredHealthy`, `expectedPods`,
`disruptionsAllowed`, `disruptedPods`, `observedGeneration` and the `DisruptionAllowed`
condition (SufficientPods / InsufficientPods). When the expected count cannot be computed it
fails safe: no disruption allowed, condition reason SyncFailed with the error, a
CalculateExpectedPodCountFailed event. Evictions the API server approved stay in
`disruptedPods` until the pod is seen terminating or DELETION_TIMEOUT (2 min) passes; then the
pod gets a NotDeleted event. A DisruptionTarget condition left on a pod that was never deleted is
set False after 2 minutes. The rules are `sandbox/disruption.py`, shared with `pods/eviction`.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import time

from sandbox import disruption
from sandbox.client import (
    DEPLOYMENTS,
    PODS,
    REPLICASETS,
    STRATEGIC_MERGE_PATCH,
    ApiClient,
    ApiError,
    Informer,
    InformerFactory,
    Obj,
    Resource,
    key_of,
)
from sandbox.controllers.workqueue import WorkQueue
from sandbox.meta import now_iso
from sandbox.record import NORMAL, WARNING, EventRecorder

log = logging.getLogger(__name__)

PDBS = Resource("policy/v1", "poddisruptionbudgets", "PodDisruptionBudget")
# Owners whose scale is read through their `scale` subresource (no informer here).
SCALED_KINDS = {"StatefulSet": Resource("apps/v1", "statefulsets", "StatefulSet"),
                "ReplicationController": Resource("v1", "replicationcontrollers", "ReplicationController")}
UNMANAGED = ("Pods selected by this PodDisruptionBudget (selector: {selector}) were found to be unmanaged. "
             "As a result, the status of the PDB cannot be calculated correctly, which may result in "
             "undefined behavior. To account for these pods please set \".spec.minAvailable\" field of the "
             "PDB to an integer value.")


class DisruptionController:
    """Writes PodDisruptionBudget status from the pods they cover."""

    def __init__(self, client: ApiClient, informers: InformerFactory) -> None:
        self.client = client
        self.pdbs: Informer = informers.informer(PDBS)
        self.pods: Informer = informers.informer(PODS)
        self.replicasets: Informer = informers.informer(REPLICASETS)
        self.deployments: Informer = informers.informer(DEPLOYMENTS)
        self.queue = WorkQueue("disruption")
        self.stale_queue = WorkQueue("disruption-stale-pods")
        self.recorder = EventRecorder(client, component="controllermanager")
        self.pdbs.add_handler(lambda kind, old, new: self.queue.add(key_of(new or old)))  # type: ignore[arg-type]
        self.pods.add_handler(self._on_pod)
        self.replicasets.add_handler(self._on_owner)
        self.deployments.add_handler(self._on_owner)

    def _on_pod(self, kind: str, old: Obj | None, new: Obj | None) -> None:
        """Queue the budgets covering the pod before or after the change (and the pod itself
        when it carries a DisruptionTarget condition that may go stale)."""
        if new is not None and (wait := disruption.stale_disruption_wait(new, time.time())) is not None:
            self.stale_queue.add_after(key_of(new), wait + 0.1)
        for pod in (old, new):
            if pod is None:
                continue
            for pdb in self.pdbs.items(pod["metadata"].get("namespace")):
                if disruption.selects(pdb, pod, empty_selects_all=True):
                    self.queue.add(key_of(pdb))

    def _on_owner(self, kind: str, old: Obj | None, new: Obj | None) -> None:
        """A controller's scale may have changed: queue its namespace's budgets."""
        obj = new or old
        if obj is not None:
            for pdb in self.pdbs.items(obj["metadata"].get("namespace")):
                self.queue.add(key_of(pdb))

    async def run(self) -> None:
        """Reconcile budgets (and stale pod conditions) forever."""
        await asyncio.gather(self.queue.run(self.sync, workers=2), self.stale_queue.run(self.reset_stale))

    async def reset_stale(self, key: str) -> None:
        """`syncStalePodDisruption`: DisruptionTarget False on a pod that was not deleted after all."""
        pod = self.pods.get(key)
        if pod is None or disruption.stale_disruption_wait(pod, time.time()) != 0.0:
            return
        cond = {"type": "DisruptionTarget", "status": "False", "reason": None, "message": None,
                "lastTransitionTime": now_iso()}
        try:
            await self.client.patch(PODS, pod["metadata"]["name"], {"status": {"conditions": [cond]}},
                                    namespace=pod["metadata"]["namespace"], subresource="status",
                                    content_type=STRATEGIC_MERGE_PATCH)
        except ApiError as exc:
            if not exc.not_found:
                raise

    async def _scale(self, ref: Obj, namespace: str) -> int | None:
        """The replicas of a pod's controller (`finders`), or None if it has no scale."""
        kind, name = ref.get("kind"), str(ref.get("name"))
        if kind == "ReplicaSet":
            rs = self.replicasets.get(f"{namespace}/{name}")
            if rs is None or rs["metadata"].get("uid") != ref.get("uid"):
                return None
            owner = next((r for r in rs["metadata"].get("ownerReferences") or []
                          if r.get("controller") and r.get("kind") == "Deployment"), None)
            if owner is not None:
                deployment = self.deployments.get(f"{namespace}/{owner['name']}")
                if deployment is not None and deployment["metadata"].get("uid") == owner.get("uid"):
                    return int((deployment.get("spec") or {}).get("replicas", 1))
            return int((rs.get("spec") or {}).get("replicas", 1))
        res = SCALED_KINDS.get(str(kind))
        if res is None:
            return None
        try:
            scale = await self.client.get(res, name, namespace=namespace)
        except ApiError:
            return None
        if scale["metadata"].get("uid") != ref.get("uid"):
            return None
        return int((scale.get("spec") or {}).get("replicas", 1))

    async def sync(self, key: str) -> None:
        """`sync`/`trySync` of one budget."""
        pdb = self.pdbs.get(key)
        if pdb is None:
            return
        namespace = pdb["metadata"]["namespace"]
        pods = [p for p in self.pods.items(namespace) if disruption.selects(pdb, p, empty_selects_all=True)]
        if not pods:
            self.recorder.event(pdb, NORMAL, "NoPods", "No matching pods found")
        scales: dict[str, int | None] = {}
        for pod in pods:
            ref = next((r for r in pod["metadata"].get("ownerReferences") or [] if r.get("controller")), None)
            if ref is not None and str(ref.get("uid")) not in scales:
                scales[str(ref.get("uid"))] = await self._scale(ref, namespace)
        try:
            expected, desired, unmanaged = disruption.expected_pods(
                pdb, pods, lambda ref, _ns: scales.get(str(ref.get("uid"))))
        except (disruption.NoController, ValueError) as exc:
            self.recorder.event(pdb, WARNING, "CalculateExpectedPodCountFailed",
                                f"Failed to calculate the number of expected pods: {exc}")
            await self._fail_safe(pdb, str(exc))
            return
        if unmanaged:
            selector = (pdb.get("spec") or {}).get("selector")
            self.recorder.event(pdb, WARNING, "UnmanagedPods", UNMANAGED.format(selector=selector))
        now = time.time()
        disrupted, recheck, overdue = disruption.disrupted_pods(pdb, pods, now)
        for pod in overdue:
            # (sic: kube-controller-manager names the namespace twice)
            message = f"Pod was expected by PDB {namespace}/{namespace} to be deleted but it wasn't"
            self.recorder.event(pod, WARNING, "NotDeleted", message)
        healthy = disruption.healthy_pods(pods, disrupted, now)
        await self._update_status(pdb, healthy, desired, expected, disrupted)
        if recheck is not None:
            self.queue.add_after(key, max(recheck - now, 0.0) + 0.1)

    async def _update_status(self, pdb: Obj, healthy: int, desired: int, expected: int,
                             disrupted: dict[str, str]) -> None:
        """`updatePdbStatus`: write the status unless it already says all of this."""
        allowed = disruption.disruptions_allowed(healthy, desired, expected)
        status = pdb.get("status") or {}
        generation = int(pdb["metadata"].get("generation") or 0)
        if (status.get("currentHealthy") == healthy and status.get("desiredHealthy") == desired
                and status.get("expectedPods") == expected and status.get("disruptionsAllowed") == allowed
                and (status.get("disruptedPods") or {}) == disrupted
                and status.get("observedGeneration") == generation and disruption.conditions_up_to_date(pdb)):
            return
        new = copy.deepcopy(pdb)
        new_status: Obj = {"currentHealthy": healthy, "desiredHealthy": desired, "expectedPods": expected,
                           "disruptionsAllowed": allowed, "observedGeneration": generation,
                           "conditions": status.get("conditions") or []}
        if disrupted:
            new_status["disruptedPods"] = disrupted
        disruption.set_disruption_allowed_condition(new_status)
        new["status"] = new_status
        await self._write(new)

    async def _fail_safe(self, pdb: Obj, message: str) -> None:
        """`failSafe`: no disruption allowed, condition False/SyncFailed with the error."""
        new = copy.deepcopy(pdb)
        status = new.setdefault("status", {})
        status["disruptionsAllowed"] = 0
        disruption.set_condition(status, "False", disruption.SYNC_FAILED, message)
        if new != pdb:
            await self._write(new)

    async def _write(self, pdb: Obj) -> None:
        """PUT the status; a conflict re-queues the budget (the informer brings the newer one)."""
        try:
            await self.client.replace(PDBS, pdb, subresource="status")
        except ApiError as exc:
            if exc.not_found:
                return
            if exc.conflict:
                await asyncio.sleep(0.05)
                self.queue.add(key_of(pdb))
                return
            raise
