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

import logging
import re
import time

from sandbox.client import (
    STATEFULSETS,
    ApiError,
    Obj,
    key_of,
)
from sandbox.controllers.history import (
    HASH_LABEL,
    POD_REVISION_LABEL,
    RevisionedController,
    revision_template,
)
from sandbox.controllers.workload import api_message, pod_from_template
from sandbox.meta import (
    controller_ref,
    int_or_percent,
    is_pod_available,
    is_pod_ready,
    is_terminating,
)
from sandbox.record import WARNING

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
    pod = pod_from_template(sts, template, name=name)
    pod["metadata"]["labels"].update({POD_NAME_LABEL: name, POD_INDEX_LABEL: str(ordinal),
                                      POD_REVISION_LABEL: revision})
    spec = pod["spec"]
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


class StatefulSetController(RevisionedController):
    """Reconciles StatefulSets with their pods and ControllerRevisions."""

    resource = STATEFULSETS
    component = "statefulset-controller"
    hash_label = HASH_LABEL

    def adoptable(self, owner: Obj, child: Obj) -> bool:
        """Only pods named like members (`isMemberOf`)."""
        name = child["metadata"]["name"]
        return not is_terminating(child) and ordinal_of(owner["metadata"]["name"], name) is not None

    def pod_message(self, action: str, owner: Obj, pod: Obj, error: ApiError | None) -> str:
        """`recordPodEvent`: "create Pod web-0 in StatefulSet web successful"."""
        outcome = "successful" if error is None else f"failed error: {api_message(error)}"
        return f"{action} Pod {pod['metadata']['name']} in StatefulSet {owner['metadata']['name']} {outcome}"

    async def sync(self, key: str) -> None:
        """Reconcile one StatefulSet."""
        found = await self.claimed(key)
        if found is None:
            return
        sts, pods = found
        revisions, update_rev, collisions = await self.revisions(sts)
        revisions = [r for r in revisions if r["metadata"]["name"] != update_rev["metadata"]["name"]]
        revisions.append(update_rev)
        current_name = (sts.get("status") or {}).get("currentRevision")
        current_rev = next((r for r in revisions if r["metadata"]["name"] == current_name), update_rev)
        await self._update(sts, pods, current_rev, update_rev)
        pods = self._pods_of(sts)
        status = self._status(sts, pods, current_rev["metadata"]["name"], update_rev["metadata"]["name"],
                              collisions)
        await self.write_status(sts, status)
        live = {status["currentRevision"], status["updateRevision"],
                *((p["metadata"].get("labels") or {}).get(POD_REVISION_LABEL) for p in pods)}
        await self.truncate_history(sts, live)

    def _pods_of(self, sts: Obj) -> list[Obj]:
        uid = sts["metadata"]["uid"]
        return [p for p in self.pods.items(sts["metadata"]["namespace"])
                if (controller_ref(p) or {}).get("uid") == uid]

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
                    await self.delete_pod(sts, key_of(sts), member)
                if monotonic:
                    return
                continue
            if member is None:
                if strategy.get("type") == "RollingUpdate" and ordinal < start + partition:
                    fresh = new_pod(sts, current_template, ordinal, current_name)
                else:
                    fresh = new_pod(sts, update_template, ordinal, update_name)
                await self.create_pod(sts, key_of(sts), fresh)
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
            await self.delete_pod(sts, key_of(sts), doomed)
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
                await self.delete_pod(sts, key_of(sts), target)
                budget -= 1

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
