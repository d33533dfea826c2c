"""The StatefulSet controller: pods with stable identities, created and replaced in ordinal order.

It follows kube-controller-manager's `pkg/controller/statefulset` (stateful_set_control.go):

- pod ``<set>-<ordinal>`` for each ordinal in ``[start, start + replicas)``, labelled
  ``statefulset.kubernetes.io/pod-name``, ``apps.kubernetes.io/pod-index`` and
  ``controller-revision-hash`` (the revision's name), with ``hostname`` = its name and
  ``subdomain`` = ``serviceName``; each volumeClaimTemplate becomes an emptyDir volume of that name
  (the sandbox serves no PersistentVolumeClaims, see `kinds/statefulset.py`);
- OrderedReady: one pod at a time in increasing ordinal order, each Running and Ready (and
  available after minReadySeconds) before the next; scale-down removes the highest ordinal first,
  one at a time. Parallel: every missing pod at once, every condemned pod at once;
- a failed or succeeded pod is deleted and recreated (RecreatingFailedPod);
- RollingUpdate: the pod with the highest ordinal not at the update revision is deleted (and
  recreated from the new template) once the others are healthy, down to ``partition``; with
  ``maxUnavailable`` up to that many at a time. OnDelete: pods take the new template only when
  they are deleted by someone else;
- ControllerRevisions through `history.RevisionHistory`; status replicas / readyReplicas /
  currentReplicas / updatedReplicas / availableReplicas / currentRevision / updateRevision /
  collisionCount / observedGeneration; SuccessfulCreate / SuccessfulDelete events with the real
  messages ("create Pod web-0 in StatefulSet web successful").

Pod names are fixed, so a create the informer has not shown yet answers 409 and a repeated delete
is harmless: the controller needs no expectations.
"""

from __future__ import annotations

import copy
import logging
import re
import time

from sandbox.client import (
    CONTROLLERREVISIONS,
    PODS,
    STATEFULSETS,
    ApiClient,
    ApiError,
    Informer,
    InformerFactory,
    Obj,
    event_key,
    key_of,
)
from sandbox.controllers.history import (
    HASH_LABEL,
    POD_REVISION_LABEL,
    RevisionHistory,
    owned_revisions,
    revision_template,
)
from sandbox.controllers.workqueue import WorkQueue
from sandbox.meta import (
    controller_ref,
    int_or_percent,
    is_pod_available,
    is_pod_ready,
    is_terminating,
    owner_reference,
    selector_matches,
)
from sandbox.record import NORMAL, WARNING, EventRecorder

log = logging.getLogger(__name__)

POD_NAME_LABEL = "statefulset.kubernetes.io/pod-name"
POD_INDEX_LABEL = "apps.kubernetes.io/pod-index"


def ordinal_of(set_name: str, pod_name: str) -> int | None:
    """The ordinal of a pod named ``<set>-<n>`` (`getParentNameAndOrdinal`), else None."""
    match = re.fullmatch(rf"{re.escape(set_name)}-(\d+)", pod_name)
    return int(match.group(1)) if match else None


def start_ordinal(sts: Obj) -> int:
    start = (sts["spec"].get("ordinals") or {}).get("start")
    return start if isinstance(start, int) else 0


def new_pod(sts: Obj, template: Obj, ordinal: int, revision: str) -> Obj:
    """`newVersionedStatefulSetPod`: the pod of ``ordinal`` from ``template`` at ``revision``."""
    name = f"{sts['metadata']['name']}-{ordinal}"
    meta = copy.deepcopy(template.get("metadata") or {})
    labels = {**(meta.get("labels") or {}), POD_NAME_LABEL: name, POD_INDEX_LABEL: str(ordinal),
              POD_REVISION_LABEL: revision}
    spec = copy.deepcopy(template.get("spec") or {})
    spec["hostname"] = name
    if sts["spec"].get("serviceName"):
        spec["subdomain"] = sts["spec"]["serviceName"]
    volumes = spec.setdefault("volumes", [])
    names = {v.get("name") for v in volumes}
    for claim in sts["spec"].get("volumeClaimTemplates") or []:
        claim_name = (claim.get("metadata") or {}).get("name")
        if claim_name and claim_name not in names:
            volumes.append({"name": claim_name, "emptyDir": {}})
    if not volumes:
        del spec["volumes"]
    pod: Obj = {"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": name, "namespace": sts["metadata"]["namespace"], "labels": labels,
                             "ownerReferences": [owner_reference(sts)]},
                "spec": spec}
    if meta.get("annotations"):
        pod["metadata"]["annotations"] = meta["annotations"]
    return pod


def is_running_and_ready(pod: Obj) -> bool:
    return (pod.get("status") or {}).get("phase") == "Running" and is_pod_ready(pod)


def is_healthy(pod: Obj, min_ready: int, now: float) -> bool:
    """Running, Ready, available after minReadySeconds and not terminating (`isHealthy`)."""
    return is_running_and_ready(pod) and is_pod_available(pod, min_ready, now=now) and not is_terminating(pod)


def is_finished(pod: Obj) -> bool:
    return (pod.get("status") or {}).get("phase") in ("Failed", "Succeeded")


def replica_status(pods: list[Obj], min_ready: int, current: str, update: str, now: float) -> Obj:
    """`computeReplicaStatus` over the set's pods."""
    status = {"replicas": 0, "readyReplicas": 0, "availableReplicas": 0, "currentReplicas": 0,
              "updatedReplicas": 0}
    for pod in pods:
        status["replicas"] += 1
        if is_running_and_ready(pod):
            status["readyReplicas"] += 1
            if is_pod_available(pod, min_ready, now=now):
                status["availableReplicas"] += 1
        if not is_terminating(pod):
            revision = (pod["metadata"].get("labels") or {}).get(POD_REVISION_LABEL)
            status["currentReplicas"] += revision == current
            status["updatedReplicas"] += revision == update
    return status


class StatefulSetController:
    """Reconciles StatefulSets with their pods and ControllerRevisions."""

    def __init__(self, client: ApiClient, informers: InformerFactory) -> None:
        self.client = client
        self.sts_informer: Informer = informers.informer(STATEFULSETS)
        self.pod_informer: Informer = informers.informer(PODS)
        self.rev_informer: Informer = informers.informer(CONTROLLERREVISIONS)
        self.history = RevisionHistory(client, self.rev_informer, hash_label=HASH_LABEL)
        self.queue = WorkQueue("statefulset")
        self.recorder = EventRecorder(client, component="statefulset-controller")
        self.sts_informer.add_handler(lambda kind, old, new: self.queue.add(event_key(old, new)))
        self.pod_informer.add_handler(self._on_pod)

    def _on_pod(self, kind: str, old: Obj | None, new: Obj | None) -> None:
        for pod in (old, new):
            if pod is None:
                continue
            ref = controller_ref(pod)
            ns = pod["metadata"].get("namespace")
            if ref and ref.get("kind") == "StatefulSet":
                self.queue.add(f"{ns}/{ref['name']}")
            elif ref is None and pod is new:
                for sts in self.sts_informer.items(ns):
                    if selector_matches(sts["spec"].get("selector"), pod["metadata"].get("labels")):
                        self.queue.add(key_of(sts))

    async def run(self) -> None:
        """Process the queue forever."""
        await self.queue.run(self.sync, workers=2)

    async def sync(self, key: str) -> None:
        """Reconcile one StatefulSet."""
        sts = self.sts_informer.get(key)
        if sts is None or is_terminating(sts):
            return
        sts = copy.deepcopy(sts)
        pods = await self._claim_pods(sts)
        await self.history.adopt(sts)
        revisions = owned_revisions(self.rev_informer, sts)
        update_rev, collisions = await self.history.sync(sts, revisions)
        revisions = [r for r in revisions if r["metadata"]["name"] != update_rev["metadata"]["name"]]
        revisions.append(update_rev)
        current_name = (sts.get("status") or {}).get("currentRevision")
        current_rev = next((r for r in revisions if r["metadata"]["name"] == current_name), update_rev)
        await self._update(sts, pods, current_rev, update_rev)
        pods = self._pods_of(sts)
        status = self._status(sts, pods, current_rev["metadata"]["name"], update_rev["metadata"]["name"],
                              collisions)
        await self._write_status(sts, status)
        live = {status["currentRevision"], status["updateRevision"],
                *((p["metadata"].get("labels") or {}).get(POD_REVISION_LABEL) for p in pods)}
        await self.history.truncate(sts, owned_revisions(self.rev_informer, sts), live)

    def _pods_of(self, sts: Obj) -> list[Obj]:
        uid = sts["metadata"]["uid"]
        return [p for p in self.pod_informer.items(sts["metadata"]["namespace"])
                if (controller_ref(p) or {}).get("uid") == uid]

    async def _claim_pods(self, sts: Obj) -> list[Obj]:
        """Owned pods matching the selector; orphans named like members are adopted, owned pods
        relabelled out of the selector released (`ClaimPods` with `isMemberOf`)."""
        ns, uid, name = sts["metadata"]["namespace"], sts["metadata"]["uid"], sts["metadata"]["name"]
        selector = sts["spec"].get("selector")
        out = []
        for pod in self.pod_informer.items(ns):
            ref = controller_ref(pod)
            labels = pod["metadata"].get("labels")
            matches = selector_matches(selector, labels)
            if ref and ref.get("uid") == uid:
                if matches:
                    out.append(pod)
                elif not is_terminating(pod):
                    refs = [r for r in pod["metadata"].get("ownerReferences") or [] if r.get("uid") != uid]
                    await self._patch_pod(pod, {"metadata": {"ownerReferences": refs or None}})
            elif ref is None and matches and not is_terminating(pod) and \
                    ordinal_of(name, pod["metadata"]["name"]) is not None:
                refs = [*(pod["metadata"].get("ownerReferences") or []), owner_reference(sts)]
                if await self._patch_pod(pod, {"metadata": {"ownerReferences": refs}}):
                    out.append(pod)
        return out

    async def _patch_pod(self, pod: Obj, patch: Obj) -> bool:
        try:
            meta = pod["metadata"]
            await self.client.patch(PODS, meta["name"], patch, namespace=meta["namespace"])
            return True
        except ApiError as exc:
            if not exc.not_found:
                raise
            return False

    async def _update(self, sts: Obj, pods: list[Obj], current_rev: Obj, update_rev: Obj) -> None:
        """One pass of `updateStatefulSet`: create, recreate, condemn, then roll."""
        spec = sts["spec"]
        name = sts["metadata"]["name"]
        start, count = start_ordinal(sts), int(spec.get("replicas", 1))
        monotonic = spec.get("podManagementPolicy", "OrderedReady") != "Parallel"
        min_ready = int(spec.get("minReadySeconds") or 0)
        now = time.time()
        replicas: dict[int, Obj] = {}
        condemned: list[tuple[int, Obj]] = []
        for pod in pods:
            ordinal = ordinal_of(name, pod["metadata"]["name"])
            if ordinal is None:
                continue
            if start <= ordinal < start + count:
                replicas[ordinal] = pod
            else:
                condemned.append((ordinal, pod))
        condemned.sort(key=lambda item: item[0])
        strategy = spec.get("updateStrategy") or {}
        rolling = strategy.get("rollingUpdate") or {}
        partition = int(rolling.get("partition") or 0) if strategy.get("type") == "RollingUpdate" else 0
        current_name, update_name = current_rev["metadata"]["name"], update_rev["metadata"]["name"]
        current_template, update_template = revision_template(current_rev), spec.get("template") or {}
        for ordinal in range(start, start + count):
            member = replicas.get(ordinal)
            if member is not None and is_finished(member):
                if not is_terminating(member):
                    self.recorder.event(sts, WARNING, "RecreatingFailedPod",
                                        f"StatefulSet {sts['metadata']['namespace']}/{name} is recreating "
                                        f"failed Pod {member['metadata']['name']}")
                    await self._delete_pod(sts, member)
                if monotonic:
                    return
                continue
            if member is None:
                if strategy.get("type") == "RollingUpdate" and ordinal < start + partition:
                    fresh = new_pod(sts, current_template, ordinal, current_name)
                else:
                    fresh = new_pod(sts, update_template, ordinal, update_name)
                await self._create_pod(sts, fresh)
                if monotonic:
                    return
                continue
            if monotonic and not is_healthy(member, min_ready, now):
                return
        first_unhealthy = next((p for _, p in sorted(replicas.items()) if not is_healthy(p, min_ready, now)),
                               None)
        if first_unhealthy is None and condemned:
            first_unhealthy = next((p for _, p in condemned if not is_healthy(p, min_ready, now)), None)
        for _, doomed in reversed(condemned):
            if is_terminating(doomed):
                if monotonic:
                    return
                continue
            if monotonic and not is_running_and_ready(doomed) and doomed is not first_unhealthy:
                return
            await self._delete_pod(sts, doomed)
            if monotonic:
                return
        if strategy.get("type") != "RollingUpdate":
            return
        ordered = [replicas[o] for o in sorted(replicas)]
        unavailable = sum(1 for p in ordered if not is_healthy(p, min_ready, now))
        max_unavailable = max(int_or_percent(rolling.get("maxUnavailable", 1), count, round_up=False), 1)
        budget = max_unavailable - unavailable
        for ordinal in sorted(replicas, reverse=True):
            if ordinal < start + partition or budget <= 0:
                break
            target = replicas[ordinal]
            if (target["metadata"].get("labels") or {}).get(POD_REVISION_LABEL) != update_name and \
                    not is_terminating(target):
                await self._delete_pod(sts, target)
                budget -= 1

    async def _create_pod(self, sts: Obj, pod: Obj) -> None:
        try:
            await self.client.create(PODS, pod)
        except ApiError as exc:
            if exc.conflict:
                return  # created by an earlier pass the informer has not shown yet, or still terminating
            self.recorder.event(sts, WARNING, "FailedCreate",
                                f"create Pod {pod['metadata']['name']} in StatefulSet "
                                f"{sts['metadata']['name']} failed error: {exc}")
            raise
        self.recorder.event(sts, NORMAL, "SuccessfulCreate",
                            f"create Pod {pod['metadata']['name']} in StatefulSet {sts['metadata']['name']} "
                            "successful")

    async def _delete_pod(self, sts: Obj, pod: Obj) -> None:
        name, owner = pod["metadata"]["name"], sts["metadata"]["name"]
        try:
            await self.client.delete(PODS, name, namespace=pod["metadata"]["namespace"],
                                     uid=pod["metadata"]["uid"])
        except ApiError as exc:
            if exc.not_found or exc.conflict:
                return
            self.recorder.event(sts, WARNING, "FailedDelete",
                                f"delete Pod {name} in StatefulSet {owner} failed error: {exc}")
            raise
        self.recorder.event(sts, NORMAL, "SuccessfulDelete",
                            f"delete Pod {name} in StatefulSet {owner} successful")

    def _status(self, sts: Obj, pods: list[Obj], current: str, update: str, collisions: int) -> Obj:
        """The new status (`updateStatus` and `completeRollingUpdate`)."""
        min_ready = int(sts["spec"].get("minReadySeconds") or 0)
        now = time.time()
        status: Obj = replica_status(pods, min_ready, current, update, now)
        status.update(observedGeneration=sts["metadata"].get("generation", 1), currentRevision=current,
                      updateRevision=update, collisionCount=collisions)
        strategy = (sts["spec"].get("updateStrategy") or {}).get("type")
        if strategy == "RollingUpdate" and status["updatedReplicas"] == status["replicas"] and \
                status["readyReplicas"] == status["replicas"]:
            status["currentReplicas"] = status["updatedReplicas"]
            status["currentRevision"] = update
        if min_ready and status["readyReplicas"] > status["availableReplicas"]:
            self.queue.add_after(key_of(sts), 1.0)
        return status

    async def _write_status(self, sts: Obj, status: Obj) -> None:
        old = sts.get("status") or {}
        if all(old.get(k, 0) == v for k, v in status.items()):
            return
        try:
            await self.client.patch(STATEFULSETS, sts["metadata"]["name"], {"status": status},
                                    namespace=sts["metadata"]["namespace"], subresource="status")
        except ApiError as exc:
            if not exc.not_found:
                raise
