"""The ReplicaSet controller: keeps the number of live pods equal to ``spec.replicas``.

Like kube-controller-manager's: it owns pods through a controller ownerReference, adopts
orphans that match its selector, releases owned pods whose labels no longer match (they keep
running and a replacement is created), and when there are too many it deletes unscheduled
before scheduled, pending before running, not-ready before ready, recently-ready before
long-ready, and newer before older pods. "Expectations" remember creations and deletions
that the informer has not shown yet, so a slow watch never causes a double create.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import time

from sandbox.client import PODS, REPLICASETS, ApiClient, ApiError, Informer, InformerFactory, Obj, key_of
from sandbox.controllers.workqueue import WorkQueue
from sandbox.meta import (
    condition,
    controller_ref,
    is_pod_active,
    is_pod_available,
    is_pod_ready,
    owner_reference,
    parse_time,
    selector_matches,
)
from sandbox.record import NORMAL, WARNING, EventRecorder

log = logging.getLogger(__name__)

EXPECTATIONS_TTL = 30.0
BURST = 500


class Expectations:
    """Pods a controller created or deleted that its informer has not reported yet."""

    def __init__(self) -> None:
        self._adds: dict[str, set[str]] = {}
        self._dels: dict[str, set[str]] = {}
        self._stamp: dict[str, float] = {}

    def expect(self, key: str, *, adds: set[str] | None = None, dels: set[str] | None = None) -> None:
        """Remember pods (by name or uid) we are waiting to see appear or disappear."""
        self._adds.setdefault(key, set()).update(adds or ())
        self._dels.setdefault(key, set()).update(dels or ())
        self._stamp[key] = time.monotonic()

    def observed_add(self, key: str, name: str) -> None:
        """The informer showed a pod we created."""
        self._adds.get(key, set()).discard(name)

    def observed_del(self, key: str, uid: str) -> None:
        """The informer showed a pod we deleted as terminating or gone."""
        self._dels.get(key, set()).discard(uid)

    def satisfied(self, key: str) -> bool:
        """Nothing pending (or it has been too long: resync anyway)."""
        if not self._adds.get(key) and not self._dels.get(key):
            return True
        return time.monotonic() - self._stamp.get(key, 0) > EXPECTATIONS_TTL

    def drop(self, key: str) -> None:
        """Forget a deleted controller."""
        for table in (self._adds, self._dels, self._stamp):
            table.pop(key, None)


def pod_delete_rank(pod: Obj) -> tuple:
    """Sort key: pods that should go first sort first (controller.ActivePodsWithRanks)."""
    status = pod.get("status", {})
    phase_rank = {"Pending": 0, "Unknown": 1, "Running": 2}.get(status.get("phase", "Pending"), 0)
    ready = is_pod_ready(pod)
    ready_since = parse_time((condition(pod, "Ready") or {}).get("lastTransitionTime")) or 0.0
    restarts = sum(c.get("restartCount", 0) for c in status.get("containerStatuses") or [])
    created = parse_time(pod["metadata"].get("creationTimestamp")) or 0.0
    return (
        bool(pod.get("spec", {}).get("nodeName")),
        phase_rank,
        ready,
        -ready_since if ready else 0.0,
        -restarts,
        -created,
    )


class ReplicaSetController:
    """Reconciles ReplicaSets with their pods."""

    def __init__(self, client: ApiClient, informers: InformerFactory) -> None:
        self.client = client
        self.rs_informer: Informer = informers.informer(REPLICASETS)
        self.pod_informer: Informer = informers.informer(PODS)
        self.queue = WorkQueue("replicaset")
        self.expectations = Expectations()
        self.recorder = EventRecorder(client, component="replicaset-controller")
        self.rs_informer.add_handler(self._on_rs)
        self.pod_informer.add_handler(self._on_pod)

    def _on_rs(self, kind: str, old: Obj | None, new: Obj | None) -> None:
        obj = new or old
        assert obj is not None
        if kind == "DELETED":
            self.expectations.drop(key_of(obj))
        self.queue.add(key_of(obj))

    def _on_pod(self, kind: str, old: Obj | None, new: Obj | None) -> None:
        for pod in (old, new):
            if pod is None:
                continue
            ref = controller_ref(pod)
            ns = pod["metadata"].get("namespace")
            if ref and ref.get("kind") == "ReplicaSet":
                key = f"{ns}/{ref['name']}"
                if kind == "ADDED" and pod is new:
                    self.expectations.observed_add(key, pod["metadata"]["name"])
                if kind == "DELETED" or (pod is new and pod["metadata"].get("deletionTimestamp")):
                    self.expectations.observed_del(key, pod["metadata"]["uid"])
                self.queue.add(key)
            elif pod is new:
                for rs in self.rs_informer.items(ns):
                    if selector_matches(rs["spec"].get("selector"), pod["metadata"].get("labels")):
                        self.queue.add(key_of(rs))

    async def run(self) -> None:
        """Process the queue forever."""
        await self.queue.run(self.sync, workers=2)

    async def sync(self, key: str) -> None:
        """Reconcile one ReplicaSet."""
        rs = self.rs_informer.get(key)
        if rs is None or rs["metadata"].get("deletionTimestamp"):
            return
        ns = rs["metadata"]["namespace"]
        uid = rs["metadata"]["uid"]
        selector = rs["spec"].get("selector")
        owned: list[Obj] = []
        for pod in self.pod_informer.items(ns):
            ref = controller_ref(pod)
            labels = pod["metadata"].get("labels")
            if ref and ref.get("uid") == uid:
                if selector_matches(selector, labels):
                    owned.append(pod)
                elif is_pod_active(pod):
                    await self._release(rs, pod)
            elif (
                ref is None
                and is_pod_active(pod)
                and selector_matches(selector, labels)
                and await self._adopt(rs, pod)
            ):
                owned.append(pod)
        active = [p for p in owned if is_pod_active(p)]
        if self.expectations.satisfied(key):
            await self._manage(rs, key, active)
        await self._update_status(rs, owned, active)

    async def _adopt(self, rs: Obj, pod: Obj) -> bool:
        """Take ownership of an orphan pod matching the selector."""
        refs = [*(pod["metadata"].get("ownerReferences") or []), owner_reference(rs)]
        patch = {"metadata": {"ownerReferences": refs}}
        try:
            await self.client.patch(
                PODS, pod["metadata"]["name"], patch, namespace=pod["metadata"]["namespace"]
            )
            return True
        except ApiError as exc:
            log.info("could not adopt %s: %s", pod["metadata"]["name"], exc)
            return False

    async def _release(self, rs: Obj, pod: Obj) -> None:
        """Remove our ownerReference from a pod relabelled out of the selector."""
        refs = [
            r for r in pod["metadata"].get("ownerReferences") or [] if r.get("uid") != rs["metadata"]["uid"]
        ]
        patch = {"metadata": {"ownerReferences": refs or None}}
        try:
            await self.client.patch(
                PODS, pod["metadata"]["name"], patch, namespace=pod["metadata"]["namespace"]
            )
        except ApiError as exc:
            if not exc.not_found:
                raise

    async def _manage(self, rs: Obj, key: str, active: list[Obj]) -> None:
        """Create or delete pods so that ``len(active) == spec.replicas``."""
        want = int(rs["spec"].get("replicas", 1))
        diff = len(active) - want
        if diff < 0:
            await self._create_pods(rs, key, min(-diff, BURST))
        elif diff > 0:
            victims = sorted(active, key=pod_delete_rank)[:diff]
            self.expectations.expect(key, dels={p["metadata"]["uid"] for p in victims})
            await asyncio.gather(*(self._delete_pod(rs, key, p) for p in victims))

    async def _create_pods(self, rs: Obj, key: str, count: int) -> None:
        """Create ``count`` pods from the template, in slow-start batches (1, 2, 4, ...)."""
        template = rs["spec"].get("template") or {}
        batch = 1
        remaining = count
        while remaining > 0:
            size = min(batch, remaining)
            results = await asyncio.gather(
                *(self._create_pod(rs, key, template) for _ in range(size)), return_exceptions=True
            )
            failures = [r for r in results if isinstance(r, BaseException)]
            if failures:
                raise failures[0]
            remaining -= size
            batch *= 2

    async def _create_pod(self, rs: Obj, key: str, template: Obj) -> None:
        meta = copy.deepcopy(template.get("metadata") or {})
        pod: Obj = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "generateName": f"{rs['metadata']['name']}-",
                "namespace": rs["metadata"]["namespace"],
                "labels": meta.get("labels") or {},
                "annotations": meta.get("annotations") or {},
                "ownerReferences": [owner_reference(rs)],
            },
            "spec": copy.deepcopy(template.get("spec") or {}),
        }
        if not pod["metadata"]["annotations"]:
            del pod["metadata"]["annotations"]
        created = await self.client.create(PODS, pod)
        name = created["metadata"]["name"]
        if self.pod_informer.get(key_of(created)) is None:
            self.expectations.expect(key, adds={name})
        self.recorder.event(rs, NORMAL, "SuccessfulCreate", f"Created pod: {name}")

    async def _delete_pod(self, rs: Obj, key: str, pod: Obj) -> None:
        name = pod["metadata"]["name"]
        try:
            await self.client.delete(
                PODS, name, namespace=pod["metadata"]["namespace"], uid=pod["metadata"]["uid"]
            )
        except ApiError as exc:
            self.expectations.observed_del(key, pod["metadata"]["uid"])
            if exc.not_found:
                return
            self.recorder.event(rs, WARNING, "FailedDelete", f"Error deleting: {exc}")
            raise
        self.recorder.event(rs, NORMAL, "SuccessfulDelete", f"Deleted pod: {name}")

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
        current = rs.get("status") or {}
        if all(current.get(k, 0) == v for k, v in status.items()):
            return
        try:
            await self.client.patch(
                REPLICASETS,
                rs["metadata"]["name"],
                {"status": status},
                namespace=rs["metadata"]["namespace"],
                subresource="status",
            )
        except ApiError as exc:
            if not exc.not_found:
                raise
