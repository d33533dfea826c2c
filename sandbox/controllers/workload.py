"""What the workload controllers share, written once (kube-controller-manager's `controller_utils.go`).

`WorkloadController` is the skeleton the ReplicaSet, DaemonSet, StatefulSet, Job and Deployment
controllers each wrote for themselves: shared informers for the workload and its children, a work
queue, an event recorder, the add/update/delete handlers that resolve a child's controller
ownerReference and enqueue its owner (or every workload whose selector matches an orphan),
`ControllerExpectations`, `ClaimPods`' adopt/release, `PodControl`'s create and delete with their
events ("Created pod: x", "Error creating: ..."), the slow-start batches, and the status write that
is skipped when nothing changed. Each controller keeps only what is its own: its sync, its pod
names and event wording, its status.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import ClassVar, TypeVar

from sandbox.client import PODS, ApiClient, ApiError, InformerFactory, Obj, Resource, event_key, key_of
from sandbox.controllers.workqueue import WorkQueue
from sandbox.meta import (
    condition,
    controller_ref,
    is_pod_ready,
    is_terminating,
    owner_reference,
    parse_time,
    selector_matches,
)
from sandbox.record import NORMAL, WARNING, EventRecorder

log = logging.getLogger(__name__)

EXPECTATIONS_TTL = 30.0
BURST = 500  # MaxPodCreateDeletePerSync / burstReplicas
T = TypeVar("T")
POD_ACTIONS = {"create": ("Created", "creating"), "delete": ("Deleted", "deleting")}


class Expectations:
    """Pods a controller created or deleted that its informer has not reported yet
    (`ControllerExpectations`, keyed by pod name for creations and uid for deletions)."""

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


def pod_from_template(owner: Obj, template: Obj, *, name: str | None = None) -> Obj:
    """`GetPodFromTemplate`: the template's labels, annotations, finalizers and spec, the owner as
    controller, named ``name`` or generated from the owner's name."""
    meta = copy.deepcopy(template.get("metadata") or {})
    pod_meta: Obj = {"name": name} if name else {"generateName": f"{owner['metadata']['name']}-"}
    pod_meta.update(namespace=owner["metadata"]["namespace"], labels=meta.get("labels") or {})
    for key in ("annotations", "finalizers"):
        if meta.get(key):
            pod_meta[key] = meta[key]
    pod_meta["ownerReferences"] = [owner_reference(owner)]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": pod_meta,
            "spec": copy.deepcopy(template.get("spec") or {})}


def api_message(exc: ApiError) -> str:
    """What Go's ``%v`` of a StatusError prints: its message."""
    body = exc.body
    return str(body.get("message") or exc) if isinstance(body, dict) else str(exc)


async def slow_start(items: Iterable[T], create: Callable[[T], Awaitable[Obj]]) -> list[Obj]:
    """`slowStartBatch`: create in batches of 1, 2, 4 ...; the first failing batch stops the rest
    (a quota or an invalid template fails once, not a thousand times) and its error is raised."""
    pending = list(items)
    done: list[Obj] = []
    size = 1
    while pending:
        batch, pending = pending[:size], pending[size:]
        results = await asyncio.gather(*(create(item) for item in batch), return_exceptions=True)
        done.extend(r for r in results if isinstance(r, dict))
        failures = [r for r in results if isinstance(r, BaseException)]
        if failures:
            raise failures[0]
        size *= 2
    return done


class WorkloadController:
    """Informers, queue, recorder, handlers, expectations, claiming and pod control of a workload
    controller; subclasses set `resource` (the workload), `component` and write `sync`."""

    resource: ClassVar[Resource]
    child: ClassVar[Resource] = PODS  # what the workload owns (a Deployment owns ReplicaSets)
    component: ClassVar[str]
    workers: ClassVar[int] = 2

    def __init__(self, client: ApiClient, informers: InformerFactory) -> None:
        self.client = client
        self.owners = informers.informer(self.resource)  # the workloads
        self.pods = informers.informer(PODS)
        self.children = informers.informer(self.child)  # what they own (the pods, or ReplicaSets)
        self.queue = WorkQueue(self.resource.plural.removesuffix("s"))
        self.expectations = Expectations()
        self.recorder = EventRecorder(client, component=self.component)
        self.owners.add_handler(self._on_owner)
        self.children.add_handler(self._on_child)

    # ----- event handlers ----------------------------------------------------------------------
    def _on_owner(self, kind: str, old: Obj | None, new: Obj | None) -> None:
        key = event_key(old, new)
        if kind == "DELETED":
            self.forget(key, old or new or {})
        self.queue.add(key)

    def forget(self, key: str, owner: Obj) -> None:
        """A workload was deleted: drop what was remembered about it."""
        self.expectations.drop(key)

    def _on_child(self, kind: str, old: Obj | None, new: Obj | None) -> None:
        """Enqueue the controller owner of the child's old and new state (`resolveControllerRef`),
        or, for an orphan, every workload whose selector matches it (it may be adopted)."""
        for child in (old, new):
            if child is None:
                continue
            ref = controller_ref(child)
            if ref and ref.get("kind") == self.resource.kind:
                key = f"{child['metadata'].get('namespace')}/{ref['name']}"
                self.observe(kind, key, child, child is new)
                self.queue.add(key)
            elif child is new:
                self.observe_orphan(kind, child, ref)

    def observe(self, kind: str, key: str, child: Obj, is_new: bool) -> None:
        """Expectations: a creation or deletion of ours the informer now shows."""
        if kind == "ADDED" and is_new:
            self.expectations.observed_add(key, child["metadata"]["name"])
        if kind == "DELETED" or (is_new and is_terminating(child)):
            self.expectations.observed_del(key, child["metadata"]["uid"])

    def observe_orphan(self, kind: str, child: Obj, ref: Obj | None) -> None:
        """A child without our controller: the workloads it matches may adopt it."""
        if ref is not None:
            return
        for owner in self.owners.items(child["metadata"].get("namespace")):
            if selector_matches(owner["spec"].get("selector"), child["metadata"].get("labels")):
                self.queue.add(key_of(owner))

    async def run(self) -> None:
        """Process the queue forever."""
        await self.queue.run(self.sync, workers=self.workers)

    async def sync(self, key: str) -> None:
        raise NotImplementedError

    async def claimed(self, key: str) -> tuple[Obj, list[Obj]] | None:
        """The workload of ``key`` (a copy to work on) and the children it claims; None when it is
        gone or being deleted (its children are then the garbage collector's)."""
        cached = self.owners.get(key)
        if cached is None or is_terminating(cached):
            return None
        owner = copy.deepcopy(cached)
        return owner, await self.claim(owner)

    # ----- ClaimPods -----------------------------------------------------------------------------
    def adoptable(self, owner: Obj, child: Obj) -> bool:
        """May an orphan that matches the selector be adopted, or an owned one that no longer
        matches be released (`ClaimObject` leaves objects being deleted alone)?"""
        return not is_terminating(child)

    async def claim(self, owner: Obj) -> list[Obj]:
        """`ClaimPods` (or `ClaimReplicaSets`): owned children matching the selector; matching
        orphans adopted, owned children relabelled out of the selector released."""
        ns, uid = owner["metadata"]["namespace"], owner["metadata"]["uid"]
        selector = owner["spec"].get("selector")
        out = []
        for child in self.children.items(ns):
            ref = controller_ref(child)
            matches = selector_matches(selector, child["metadata"].get("labels"))
            if ref and ref.get("uid") == uid:
                if matches:
                    out.append(child)
                elif self.adoptable(owner, child):
                    refs = [r for r in child["metadata"].get("ownerReferences") or [] if r.get("uid") != uid]
                    await self.patch_child(child, {"metadata": {"ownerReferences": refs or None}})
            elif ref is None and matches and self.adoptable(owner, child):
                refs = [*(child["metadata"].get("ownerReferences") or []), owner_reference(owner)]
                adopted = await self.patch_child(child, {"metadata": {"ownerReferences": refs}})
                if adopted is not None:
                    out.append(adopted)
        return out

    async def patch_child(self, child: Obj, patch: Obj) -> Obj | None:
        """Merge-patch a child; None when it is gone."""
        meta = child["metadata"]
        try:
            return await self.client.patch(self.child, meta["name"], patch, namespace=meta["namespace"])
        except ApiError as exc:
            if not exc.not_found:
                raise
            return None

    # ----- PodControl ----------------------------------------------------------------------------
    def pod_message(self, action: str, owner: Obj, pod: Obj, error: ApiError | None) -> str:
        """The event message of a pod created or deleted (``action``), or of the error (PodControl's
        wording; StatefulSets say it their own way)."""
        done, doing = POD_ACTIONS[action]
        if error is not None:
            return f"Error {doing}: {api_message(error)}"
        return f"{done} pod: {pod['metadata']['name']}"

    async def create_pod(self, owner: Obj, key: str, pod: Obj) -> Obj:
        """Create a pod, expecting it until the informer shows it; SuccessfulCreate / FailedCreate.
        A pod of a fixed name that exists already was created by an earlier pass."""
        try:
            created = await self.client.create(PODS, pod)
        except ApiError as exc:
            if exc.conflict and pod["metadata"].get("name"):
                return pod
            self.recorder.event(owner, WARNING, "FailedCreate", self.pod_message("create", owner, pod, exc))
            raise
        if self.pods.get(key_of(created)) is None:
            self.expectations.expect(key, adds={created["metadata"]["name"]})
        message = self.pod_message("create", owner, created, None)
        self.recorder.event(owner, NORMAL, "SuccessfulCreate", message)
        return created

    async def delete_pods(self, owner: Obj, key: str, pods: list[Obj]) -> None:
        """Delete pods at once, expecting each deletion until the informer shows it."""
        if not pods:
            return
        self.expectations.expect(key, dels={p["metadata"]["uid"] for p in pods})
        await asyncio.gather(*(self.delete_pod(owner, key, p) for p in pods))

    async def delete_pod(self, owner: Obj, key: str, pod: Obj) -> None:
        """Delete one pod (this uid only); SuccessfulDelete / FailedDelete. Gone already is fine."""
        meta = pod["metadata"]
        try:
            await self.client.delete(PODS, meta["name"], namespace=meta["namespace"], uid=meta["uid"])
        except ApiError as exc:
            self.expectations.observed_del(key, meta["uid"])
            if exc.not_found or exc.conflict:
                return
            self.recorder.event(owner, WARNING, "FailedDelete", self.pod_message("delete", owner, pod, exc))
            raise
        self.recorder.event(owner, NORMAL, "SuccessfulDelete", self.pod_message("delete", owner, pod, None))

    # ----- status --------------------------------------------------------------------------------
    async def write_status(self, owner: Obj, status: Obj) -> None:
        """Patch `status` when a field differs from what is stored (missing counts as 0)."""
        current = owner.get("status") or {}
        if all(current.get(k, 0) == v for k, v in status.items()):
            return
        try:
            await self.client.patch(self.resource, owner["metadata"]["name"], {"status": status},
                                    namespace=owner["metadata"]["namespace"], subresource="status")
        except ApiError as exc:
            if not exc.not_found:
                raise
