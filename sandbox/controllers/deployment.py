"""The Deployment controller: rolls a Deployment's pod template out through ReplicaSets.

It follows kube-controller-manager's algorithm so that `kubectl rollout status`, `kubectl
describe deployment` and the dashboard see what they would on a real cluster:

- one ReplicaSet per pod template, named ``<deployment>-<pod-template-hash>`` and labelled
  ``pod-template-hash`` (the hash is FNV-32a of the template, encoded like Kubernetes' own);
- RollingUpdate: scale the new ReplicaSet up while the total stays within
  ``replicas + maxSurge``, scale old ones down while available pods stay above
  ``replicas - maxUnavailable`` (unhealthy old pods go first); Recreate: old ReplicaSets to
  zero, wait until their pods are gone, then the new one up;
- annotations ``deployment.kubernetes.io/revision``, ``desired-replicas``, ``max-replicas``;
  ``ScalingReplicaSet`` events; old ReplicaSets beyond ``revisionHistoryLimit`` deleted;
- status counts and the Available / Progressing conditions with the real reasons
  (MinimumReplicasAvailable, NewReplicaSetCreated, ReplicaSetUpdated, NewReplicaSetAvailable,
  ProgressDeadlineExceeded).
"""

from __future__ import annotations

import copy
import json
import logging
import time

from sandbox.client import (
    DEPLOYMENTS,
    REPLICASETS,
    ApiClient,
    ApiError,
    InformerFactory,
    Obj,
    key_of,
)
from sandbox.controllers.workload import WorkloadController
from sandbox.meta import (
    controller_ref,
    int_or_percent,
    now_iso,
    owner_reference,
    parse_time,
)
from sandbox.record import NORMAL

log = logging.getLogger(__name__)

REVISION = "deployment.kubernetes.io/revision"
DESIRED = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS = "deployment.kubernetes.io/max-replicas"
REVISION_HISTORY = "deployment.kubernetes.io/revision-history"
# deploymentutil's annotationsToSkip: never copied from a Deployment to its ReplicaSets.
ANNOTATIONS_TO_SKIP = frozenset({
    "kubectl.kubernetes.io/last-applied-configuration", REVISION, REVISION_HISTORY, DESIRED, MAX_REPLICAS,
    "deprecated.deployment.rollback.to",
})
MAX_REV_HISTORY_CHARS = 2000
HASH_LABEL = "pod-template-hash"
ALPHANUMS = "bcdfghjklmnpqrstvwxz2456789"


def template_hash(template: Obj, collision_count: int = 0) -> str:
    """The pod-template-hash of a template: FNV-32a, rendered with Kubernetes' safe alphabet."""
    data = json.dumps(template, sort_keys=True, separators=(",", ":")).encode()
    if collision_count:
        data += collision_count.to_bytes(4, "little")
    h = 0x811C9DC5
    for byte in data:
        h = ((h ^ byte) * 0x01000193) & 0xFFFFFFFF
    return "".join(ALPHANUMS[ord(ch) % len(ALPHANUMS)] for ch in str(h))


def strip_hash(template: Obj) -> Obj:
    """A template without the pod-template-hash label, for comparison."""
    t = copy.deepcopy(template or {})
    labels = (t.get("metadata") or {}).get("labels")
    if labels:
        labels.pop(HASH_LABEL, None)
    return t


def revision_of(rs: Obj) -> int:
    """The revision annotation of a ReplicaSet (0 if missing)."""
    try:
        return int((rs["metadata"].get("annotations") or {}).get(REVISION, "0"))
    except ValueError:
        return 0


def surge_and_unavailable(deploy: Obj) -> tuple[int, int]:
    """maxSurge (rounded up) and maxUnavailable (rounded down); both zero means one unavailable."""
    replicas = int(deploy["spec"].get("replicas", 1))
    ru = (deploy["spec"].get("strategy") or {}).get("rollingUpdate") or {}
    surge = int_or_percent(ru.get("maxSurge", "25%"), replicas, round_up=True)
    unavailable = int_or_percent(ru.get("maxUnavailable", "25%"), replicas, round_up=False)
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, min(unavailable, replicas)


def new_rs_annotations(deploy: Obj, rs_annotations: dict[str, str], revision: int) -> dict[str, str]:
    """The annotations `deploymentutil.SetNewReplicaSetAnnotations` changes on the new ReplicaSet.

    The Deployment's own annotations are copied (except `ANNOTATIONS_TO_SKIP`), so
    ``kubernetes.io/change-cause`` reaches `kubectl rollout history`'s CHANGE-CAUSE column; the
    revision only grows, and a ReplicaSet brought back by a rollback keeps its earlier revisions
    in ``revision-history`` (at most 2000 characters, oldest dropped first)."""
    changed = {k: v for k, v in (deploy["metadata"].get("annotations") or {}).items()
               if k not in ANNOTATIONS_TO_SKIP and rs_annotations.get(k) != v}
    old = rs_annotations.get(REVISION)
    try:
        old_revision = int(old) if old is not None else 0
    except ValueError:
        old_revision = 0
    if old_revision < revision:
        changed[REVISION] = str(revision)
        if old is not None:
            history = [h for h in rs_annotations.get(REVISION_HISTORY, "").split(",") if h]
            total = len(",".join([*history, old]))
            while total > MAX_REV_HISTORY_CHARS and history:
                total -= len(history.pop(0)) + 1
            if total <= MAX_REV_HISTORY_CHARS:
                changed[REVISION_HISTORY] = ",".join([*history, old])
    return changed


class DeploymentController(WorkloadController):
    """Reconciles Deployments with their ReplicaSets (one worker: a sync remembers whether it
    created a ReplicaSet)."""

    resource = DEPLOYMENTS
    child = REPLICASETS
    component = "deployment-controller"
    workers = 1

    def __init__(self, client: ApiClient, informers: InformerFactory) -> None:
        super().__init__(client, informers)
        self._progressing: tuple[str, str] | None = None
        self.pods.add_handler(self._on_pod)

    def _on_pod(self, kind: str, old: Obj | None, new: Obj | None) -> None:
        """A pod going away matters to Recreate, which waits for old pods to be gone."""
        if kind != "DELETED" or old is None:
            return
        ref = controller_ref(old)
        if ref and ref.get("kind") == "ReplicaSet":
            rs = self.children.get(f"{old['metadata']['namespace']}/{ref['name']}")
            dref = controller_ref(rs) if rs else None
            if dref and dref.get("kind") == "Deployment":
                self.queue.add(f"{old['metadata']['namespace']}/{dref['name']}")

    async def sync(self, key: str) -> None:
        """Reconcile one Deployment."""
        found = await self.claimed(key)
        if found is None:
            return
        deploy, claimed = found
        rss = [copy.deepcopy(rs) for rs in claimed]  # worked on in place
        new_rs, old_rss = await self._new_and_old(deploy, rss)
        if deploy["spec"].get("paused") or self._is_scaling_event(deploy, [new_rs, *old_rss]):
            await self._proportional_scale(deploy, new_rs, old_rss)
        elif (deploy["spec"].get("strategy") or {}).get("type") == "Recreate":
            await self._recreate(deploy, new_rs, old_rss)
        else:
            await self._rolling(deploy, new_rs, old_rss)
        await self._cleanup(deploy, old_rss)
        await self._update_status(deploy, new_rs, old_rss)

    async def _new_and_old(self, deploy: Obj, rss: list[Obj]) -> tuple[Obj | None, list[Obj]]:
        """Find (or create) the ReplicaSet of the current template; the rest are old."""
        template = deploy["spec"]["template"]
        wanted = strip_hash(template)
        new_rs = None
        for rs in sorted(rss, key=lambda r: r["metadata"].get("creationTimestamp", "")):
            if strip_hash(rs["spec"].get("template")) == wanted:
                new_rs = rs
                break
        old = [rs for rs in rss if rs is not new_rs]
        max_old_revision = max((revision_of(rs) for rs in old), default=0)
        if new_rs is not None:
            changed = new_rs_annotations(deploy, new_rs["metadata"].get("annotations") or {},
                                         max_old_revision + 1)
            if changed:
                new_rs = await self._annotate(new_rs, changed)
            return new_rs, old
        if deploy["spec"].get("paused"):
            return None, old
        return await self._create_new_rs(deploy, max_old_revision + 1), old

    async def _create_new_rs(self, deploy: Obj, revision: int) -> Obj:
        """Create the ReplicaSet of the current template, bumping collisionCount on a name clash."""
        ns = deploy["metadata"]["namespace"]
        while True:
            collisions = int((deploy.get("status") or {}).get("collisionCount") or 0)
            pth = template_hash(strip_hash(deploy["spec"]["template"]), collisions)
            template = copy.deepcopy(deploy["spec"]["template"])
            template.setdefault("metadata", {}).setdefault("labels", {})[HASH_LABEL] = pth
            selector = copy.deepcopy(deploy["spec"]["selector"])
            selector.setdefault("matchLabels", {})[HASH_LABEL] = pth
            surge, _ = surge_and_unavailable(deploy)
            replicas = int(deploy["spec"].get("replicas", 1))
            rs: Obj = {
                "apiVersion": "apps/v1",
                "kind": "ReplicaSet",
                "metadata": {
                    "name": f"{deploy['metadata']['name']}-{pth}",
                    "namespace": ns,
                    "labels": dict(template["metadata"]["labels"]),
                    "annotations": {
                        **new_rs_annotations(deploy, {}, revision),
                        DESIRED: str(replicas),
                        MAX_REPLICAS: str(replicas + surge),
                    },
                    "ownerReferences": [owner_reference(deploy)],
                },
                "spec": {
                    "replicas": 0,
                    "minReadySeconds": int(deploy["spec"].get("minReadySeconds") or 0),
                    "selector": selector,
                    "template": template,
                },
            }
            try:
                created = await self.client.create(REPLICASETS, rs)
            except ApiError as exc:
                if not exc.conflict:
                    raise
                existing = await self.client.get(REPLICASETS, rs["metadata"]["name"], namespace=ns)
                ref = controller_ref(existing)
                if (
                    ref
                    and ref.get("uid") == deploy["metadata"]["uid"]
                    and strip_hash(existing["spec"]["template"]) == strip_hash(template)
                ):
                    return existing
                deploy.setdefault("status", {})["collisionCount"] = collisions + 1
                await self.client.patch(
                    DEPLOYMENTS,
                    deploy["metadata"]["name"],
                    {"status": {"collisionCount": collisions + 1}},
                    namespace=ns,
                    subresource="status",
                )
                continue
            self._progressing = (
                "NewReplicaSetCreated",
                f'Created new replica set "{created["metadata"]["name"]}"',
            )
            return created

    async def _annotate(self, rs: Obj, annotations: dict[str, str]) -> Obj:
        return await self.client.patch(
            REPLICASETS,
            rs["metadata"]["name"],
            {"metadata": {"annotations": annotations}},
            namespace=rs["metadata"]["namespace"],
        )

    async def _scale(self, deploy: Obj, rs: Obj, replicas: int) -> Obj:
        """Set a ReplicaSet's replicas (with the desired/max annotations) and record the event."""
        current = int(rs["spec"].get("replicas", 0))
        surge, _ = surge_and_unavailable(deploy)
        desired = int(deploy["spec"].get("replicas", 1))
        annotations = {DESIRED: str(desired), MAX_REPLICAS: str(desired + surge)}
        have = rs["metadata"].get("annotations") or {}
        if current == replicas and all(have.get(k) == v for k, v in annotations.items()):
            return rs
        updated = await self.client.patch(
            REPLICASETS,
            rs["metadata"]["name"],
            {"metadata": {"annotations": annotations}, "spec": {"replicas": replicas}},
            namespace=rs["metadata"]["namespace"],
        )
        if current != replicas:
            direction = "up" if replicas > current else "down"
            self.recorder.event(
                deploy,
                NORMAL,
                "ScalingReplicaSet",
                f"Scaled {direction} replica set {rs['metadata']['name']} from {current} to {replicas}",
            )
        rs.clear()
        rs.update(updated)
        return rs

    async def _rolling(self, deploy: Obj, new_rs: Obj | None, old_rss: list[Obj]) -> None:
        """One step of a rolling update (rolling.go: reconcileNewReplicaSet, reconcileOldReplicaSets)."""
        replicas = int(deploy["spec"].get("replicas", 1))
        surge, max_unavailable = surge_and_unavailable(deploy)
        assert new_rs is not None
        all_rss = [new_rs, *old_rss]
        new_count = int(new_rs["spec"].get("replicas", 0))
        if new_count > replicas:
            await self._scale(deploy, new_rs, replicas)
        elif new_count < replicas:
            total = sum(int(rs["spec"].get("replicas", 0)) for rs in all_rss)
            scale_up = min(replicas + surge - total, replicas - new_count)
            if scale_up > 0:
                await self._scale(deploy, new_rs, new_count + scale_up)
        else:
            await self._scale(deploy, new_rs, replicas)
        active_old = [rs for rs in old_rss if int(rs["spec"].get("replicas", 0)) > 0]
        if not active_old:
            return
        all_count = sum(int(rs["spec"].get("replicas", 0)) for rs in all_rss)
        min_available = replicas - max_unavailable
        new_unavailable = int(new_rs["spec"].get("replicas", 0)) - int(
            (new_rs.get("status") or {}).get("availableReplicas", 0)
        )
        max_scaled_down = all_count - min_available - new_unavailable
        if max_scaled_down <= 0:
            return
        # First remove old pods that are not available anyway: it costs no availability.
        cleaned = 0
        for rs in sorted(active_old, key=lambda r: r["metadata"].get("creationTimestamp", "")):
            if cleaned >= max_scaled_down:
                break
            spec = int(rs["spec"].get("replicas", 0))
            available = int((rs.get("status") or {}).get("availableReplicas", 0))
            if spec == available:
                continue
            down = min(spec - available, max_scaled_down - cleaned)
            await self._scale(deploy, rs, spec - down)
            cleaned += down
        available_all = sum(int((rs.get("status") or {}).get("availableReplicas", 0)) for rs in all_rss)
        total_down = min(available_all - min_available, max_scaled_down - cleaned)
        for rs in sorted(active_old, key=lambda r: r["metadata"].get("creationTimestamp", "")):
            if total_down <= 0:
                break
            spec = int(rs["spec"].get("replicas", 0))
            if spec == 0:
                continue
            down = min(spec, total_down)
            await self._scale(deploy, rs, spec - down)
            total_down -= down

    async def _recreate(self, deploy: Obj, new_rs: Obj | None, old_rss: list[Obj]) -> None:
        """Old ReplicaSets to zero; once none of their pods is left, the new one to full size."""
        for rs in old_rss:
            if int(rs["spec"].get("replicas", 0)) > 0:
                await self._scale(deploy, rs, 0)
        old_uids = {rs["metadata"]["uid"] for rs in old_rss}
        ns = deploy["metadata"]["namespace"]
        if any((controller_ref(p) or {}).get("uid") in old_uids for p in self.pods.items(ns)):
            return
        if new_rs is not None:
            await self._scale(deploy, new_rs, int(deploy["spec"].get("replicas", 1)))

    @staticmethod
    def _is_scaling_event(deploy: Obj, rss: list[Obj | None]) -> bool:
        """``spec.replicas`` changed since the active ReplicaSets were last sized (their
        desired-replicas annotation says otherwise)."""
        replicas = int(deploy["spec"].get("replicas", 1))
        for rs in rss:
            if rs is None or int(rs["spec"].get("replicas", 0)) == 0:
                continue
            desired = (rs["metadata"].get("annotations") or {}).get(DESIRED)
            if desired is not None and desired.isdigit() and int(desired) != replicas:
                return True
        return False

    async def _proportional_scale(self, deploy: Obj, new_rs: Obj | None, old_rss: list[Obj]) -> None:
        """A replicas change (or a paused Deployment): resize without rolling (sync.go's scale).

        One active ReplicaSet takes the new size; with several (mid-rollout) the change is
        shared out in proportion to their sizes, within replicas + maxSurge, the rest going to
        the largest, so a rollout that is stuck still gets its share of extra old pods."""
        replicas = int(deploy["spec"].get("replicas", 1))
        size = lambda rs: int(rs["spec"].get("replicas", 0))  # noqa: E731
        active = [rs for rs in [new_rs, *old_rss] if rs is not None and size(rs) > 0]
        if len(active) <= 1:
            latest = max([new_rs] if new_rs else old_rss, key=revision_of, default=None)
            target = active[0] if active else latest
            if target is not None:
                await self._scale(deploy, target, replicas)
            return
        status = (new_rs or {}).get("status") or {}
        if (
            new_rs is not None
            and size(new_rs) == replicas
            and int(status.get("availableReplicas", 0)) == replicas
        ):
            for rs in old_rss:
                await self._scale(deploy, rs, 0)
            return
        if (deploy["spec"].get("strategy") or {}).get("type") == "Recreate":
            return
        surge, _ = surge_and_unavailable(deploy)
        to_add = replicas + surge - sum(size(rs) for rs in active)
        newest_first = sorted(
            active, key=lambda rs: rs["metadata"].get("creationTimestamp", ""), reverse=True
        )
        order = sorted(newest_first if to_add > 0 else newest_first[::-1], key=lambda rs: -size(rs))
        sizes: dict[str, int] = {}
        added = 0
        for rs in order:
            share = self._proportion(rs, deploy, to_add, added, surge)
            sizes[rs["metadata"]["uid"]] = size(rs) + share
            added += share
        if to_add:
            first = order[0]["metadata"]["uid"]
            sizes[first] = max(sizes[first] + to_add - added, 0)
        for rs in order:
            await self._scale(deploy, rs, sizes[rs["metadata"]["uid"]])

    @staticmethod
    def _proportion(rs: Obj, deploy: Obj, to_add: int, added: int, surge: int) -> int:
        """How many replicas ``rs`` gains (or loses) in a proportional scale."""
        current = int(rs["spec"].get("replicas", 0))
        if current == 0 or to_add == 0 or to_add == added:
            return 0
        replicas = int(deploy["spec"].get("replicas", 1))
        if replicas == 0:
            fraction = -current
        else:
            annotated = (rs["metadata"].get("annotations") or {}).get(MAX_REPLICAS, "")
            previous = (
                int(annotated)
                if annotated.isdigit()
                else int((deploy.get("status") or {}).get("replicas", 0))
            )
            fraction = int(current * (replicas + surge) / previous + 0.5) - current if previous else 0
        allowed = to_add - added
        return min(fraction, allowed) if to_add > 0 else max(fraction, allowed)

    async def _cleanup(self, deploy: Obj, old_rss: list[Obj]) -> None:
        """Delete the oldest empty old ReplicaSets beyond revisionHistoryLimit."""
        limit = deploy["spec"].get("revisionHistoryLimit", 10)
        empty = [
            rs
            for rs in old_rss
            if int(rs["spec"].get("replicas", 0)) == 0
            and int((rs.get("status") or {}).get("replicas", 0)) == 0
            and not rs["metadata"].get("deletionTimestamp")
        ]
        excess = len(empty) - int(limit)
        for rs in sorted(empty, key=revision_of)[: max(excess, 0)]:
            try:
                await self.client.delete(
                    REPLICASETS, rs["metadata"]["name"], namespace=rs["metadata"]["namespace"]
                )
            except ApiError as exc:
                if not exc.not_found:
                    raise

    async def _update_status(self, deploy: Obj, new_rs: Obj | None, old_rss: list[Obj]) -> None:
        """Compute status counts and conditions; write them when they changed."""
        all_rss = [*([new_rs] if new_rs else []), *old_rss]
        st = lambda rs, f: int((rs.get("status") or {}).get(f, 0))  # noqa: E731
        replicas = int(deploy["spec"].get("replicas", 1))
        _, max_unavailable = surge_and_unavailable(deploy)
        status: Obj = {
            "observedGeneration": deploy["metadata"].get("generation", 1),
            "replicas": sum(st(rs, "replicas") for rs in all_rss),
            "updatedReplicas": st(new_rs, "replicas") if new_rs else 0,
            "readyReplicas": sum(st(rs, "readyReplicas") for rs in all_rss),
            "availableReplicas": sum(st(rs, "availableReplicas") for rs in all_rss),
        }
        status["unavailableReplicas"] = max(replicas - status["availableReplicas"], 0)
        old_status = deploy.get("status") or {}
        if old_status.get("collisionCount"):
            status["collisionCount"] = old_status["collisionCount"]
        conditions = {c["type"]: c for c in old_status.get("conditions") or []}
        stamp = now_iso()

        def set_condition(type_: str, value: str, reason: str, message: str) -> None:
            prev = conditions.get(type_)
            if (
                prev
                and prev.get("status") == value
                and prev.get("reason") == reason
                and prev.get("message") == message
            ):
                return
            transition = prev["lastTransitionTime"] if prev and prev.get("status") == value else stamp
            conditions[type_] = {
                "type": type_,
                "status": value,
                "reason": reason,
                "message": message,
                "lastUpdateTime": stamp,
                "lastTransitionTime": transition,
            }

        if status["availableReplicas"] >= replicas - max_unavailable:
            set_condition(
                "Available", "True", "MinimumReplicasAvailable", "Deployment has minimum availability."
            )
        else:
            set_condition(
                "Available",
                "False",
                "MinimumReplicasUnavailable",
                "Deployment does not have minimum availability.",
            )
        created, self._progressing = self._progressing, None
        if new_rs is not None:
            name = new_rs["metadata"]["name"]
            complete = (
                status["updatedReplicas"] == replicas
                and status["replicas"] == replicas
                and status["availableReplicas"] == replicas
                and int(new_rs["spec"].get("replicas", 0)) == replicas
            )
            prev = conditions.get("Progressing")
            if complete:
                set_condition(
                    "Progressing",
                    "True",
                    "NewReplicaSetAvailable",
                    f'ReplicaSet "{name}" has successfully progressed.',
                )
            elif created:
                set_condition("Progressing", "True", *created)
            elif self._progress_made(deploy, status):
                set_condition(
                    "Progressing", "True", "ReplicaSetUpdated", f'ReplicaSet "{name}" is progressing.'
                )
            elif prev and prev.get("reason") != "ProgressDeadlineExceeded":
                deadline = deploy["spec"].get("progressDeadlineSeconds", 600)
                since = parse_time(prev.get("lastUpdateTime")) or time.time()
                if prev.get("reason") != "NewReplicaSetAvailable" and time.time() - since > deadline:
                    set_condition(
                        "Progressing",
                        "False",
                        "ProgressDeadlineExceeded",
                        f'ReplicaSet "{name}" has timed out progressing.',
                    )
                elif prev.get("reason") == "NewReplicaSetAvailable":
                    set_condition(
                        "Progressing", "True", "ReplicaSetUpdated", f'ReplicaSet "{name}" is progressing.'
                    )
                else:
                    self.queue.add_after(key_of(deploy), max(1.0, since + deadline - time.time()))
        status["conditions"] = [conditions[t] for t in ("Available", "Progressing") if t in conditions]
        if new_rs is not None and (deploy["metadata"].get("annotations") or {}).get(REVISION) != str(
            revision_of(new_rs)
        ):
            await self.client.patch(
                DEPLOYMENTS,
                deploy["metadata"]["name"],
                {"metadata": {"annotations": {REVISION: str(revision_of(new_rs))}}},
                namespace=deploy["metadata"]["namespace"],
            )
        if all(old_status.get(k) == v for k, v in status.items()):
            return
        await self.client.patch(
            DEPLOYMENTS,
            deploy["metadata"]["name"],
            {"status": status},
            namespace=deploy["metadata"]["namespace"],
            subresource="status",
        )

    @staticmethod
    def _progress_made(deploy: Obj, status: Obj) -> bool:
        """Counts changed since the last status: the rollout is moving."""
        old = deploy.get("status") or {}
        return any(
            old.get(k, 0) != status[k]
            for k in ("replicas", "updatedReplicas", "readyReplicas", "availableReplicas")
        )
