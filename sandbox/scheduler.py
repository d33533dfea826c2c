"""The scheduler: binds every pending pod to a node, spreading pods out (kube-scheduler's job).

It watches pods without ``spec.nodeName`` and Node objects. Feasible nodes are Ready, not
cordoned (``spec.unschedulable``), carry no NoSchedule/NoExecute taint the pod does not tolerate
(TaintToleration; simulated nodes are tainted; a cordoned node only takes pods tolerating its
unschedulable taint, as DaemonSet pods do), match the pod's nodeSelector and required node affinity
(matchExpressions, and matchFields on metadata.name, which pins DaemonSet pods) and have room under their
``pods`` capacity. Among them it prefers the nodes with the fewest PreferNoSchedule taints the pod
does not tolerate (the TaintToleration score, which outweighs spreading here), then the node with
the fewest pods of the same owner
(like the default PodTopologySpread on hostname), then the fewest pods overall, then the
name, so three replicas land on three nodes. The choice is written with a Binding
(``pods/<name>/binding``), followed by a ``Scheduled`` event; a pod that fits nowhere gets
PodScheduled=False/Unschedulable and a ``FailedScheduling`` event, and is retried.

A pod with ``spec.schedulingGates`` is not scheduled at all (the SchedulingGates plugin's
PreEnqueue): it waits with PodScheduled=False, reason ``SchedulingGated`` (the API server
sets it on create; the scheduler adds it when it is missing), no event, until the gates are
removed — that update enqueues it like any new pod.
"""

from __future__ import annotations

import asyncio
import logging
import time

from sandbox.client import (
    NODES,
    PODS,
    STRATEGIC_MERGE_PATCH,
    ApiClient,
    ApiError,
    Informer,
    InformerFactory,
    Obj,
    event_key,
    key_of,
)
from sandbox.controllers.workqueue import WorkQueue
from sandbox.meta import condition, controller_ref, now_iso
from sandbox.record import NORMAL, WARNING, EventRecorder

log = logging.getLogger(__name__)

SCHEDULER_NAME = "default-scheduler"
SCHEDULING_GATED = "SchedulingGated"
SCHEDULING_GATED_MESSAGE = "Scheduling is blocked due to non-empty scheduling gates"


def node_is_ready(node: Obj) -> bool:
    """The node's Ready condition is True."""
    cond = condition(node, "Ready")
    return bool(cond and cond.get("status") == "True")


def tolerates(toleration: Obj, taint: Obj) -> bool:
    """``Toleration.ToleratesTaint``: the effect matches (or is empty), the key matches (an empty
    key with Exists tolerates everything), and Exists, or Equal with the same value."""
    if toleration.get("effect") and toleration.get("effect") != taint.get("effect"):
        return False
    if toleration.get("key") and toleration.get("key") != taint.get("key"):
        return False
    if toleration.get("operator", "Equal") == "Exists":
        return True
    return bool(toleration.get("key")) and (toleration.get("value") or "") == (taint.get("value") or "")


def untolerated_taint(node: Obj, pod: Obj) -> Obj | None:
    """The first NoSchedule/NoExecute taint of the node the pod does not tolerate (the
    TaintToleration filter), or None."""
    tolerations = [t for t in (pod.get("spec") or {}).get("tolerations") or [] if isinstance(t, dict)]
    for taint in (node.get("spec") or {}).get("taints") or []:
        if taint.get("effect") not in ("NoSchedule", "NoExecute"):
            continue
        if not any(tolerates(t, taint) for t in tolerations):
            return taint
    return None


def _requirement_matches(req: Obj, value: str | None) -> bool:
    """One NodeSelectorRequirement against a label or field value (None: absent)."""
    op, values = req.get("operator"), [str(v) for v in req.get("values") or []]
    if op == "In":
        return value is not None and value in values
    if op == "NotIn":
        return value is None or value not in values
    if op == "Exists":
        return value is not None
    if op == "DoesNotExist":
        return value is None
    if op in ("Gt", "Lt") and value is not None and len(values) == 1:
        try:
            have, want = int(value), int(values[0])
        except ValueError:
            return False
        return have > want if op == "Gt" else have < want
    return False


def node_affinity_matches(pod: Obj, node: Obj) -> bool:
    """The NodeAffinity filter: the pod's nodeSelector, and any one of its required
    nodeSelectorTerms (matchExpressions on labels, matchFields on ``metadata.name`` — the
    term the DaemonSet controller pins its pods with)."""
    spec = pod.get("spec") or {}
    labels = node["metadata"].get("labels") or {}
    if any(labels.get(k) != v for k, v in (spec.get("nodeSelector") or {}).items()):
        return False
    required = (((spec.get("affinity") or {}).get("nodeAffinity") or {})
                .get("requiredDuringSchedulingIgnoredDuringExecution") or {})
    terms = [t for t in required.get("nodeSelectorTerms") or [] if isinstance(t, dict)]
    if not terms:
        return True
    fields = {"metadata.name": node["metadata"]["name"]}

    def term_matches(term: Obj) -> bool:
        exprs, field_reqs = term.get("matchExpressions") or [], term.get("matchFields") or []
        return bool(exprs or field_reqs) \
            and all(_requirement_matches(r, labels.get(r.get("key"))) for r in exprs) \
            and all(_requirement_matches(r, fields.get(r.get("key"))) for r in field_reqs)

    return any(term_matches(term) for term in terms)


UNSCHEDULABLE_TAINT = {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}


def tolerates_unschedulable(pod: Obj) -> bool:
    """The NodeUnschedulable filter lets a cordoned node take a pod that tolerates its taint
    (DaemonSet pods do)."""
    tolerations = [t for t in (pod.get("spec") or {}).get("tolerations") or [] if isinstance(t, dict)]
    return any(tolerates(t, UNSCHEDULABLE_TAINT) for t in tolerations)


def intolerable_prefer_no_schedule(node: Obj, pod: Obj) -> int:
    """The TaintToleration score's count: PreferNoSchedule taints of the node that no toleration
    of the pod with effect PreferNoSchedule (or empty) tolerates; fewer scores higher."""
    tolerations = [t for t in (pod.get("spec") or {}).get("tolerations") or []
                   if isinstance(t, dict) and t.get("effect") in (None, "", "PreferNoSchedule")]
    return sum(1 for taint in (node.get("spec") or {}).get("taints") or []
               if isinstance(taint, dict) and taint.get("effect") == "PreferNoSchedule"
               and not any(tolerates(t, taint) for t in tolerations))


class Scheduler:
    """Binds unscheduled pods to nodes."""

    def __init__(self, client: ApiClient, informers: InformerFactory) -> None:
        self.client = client
        self.pod_informer: Informer = informers.informer(PODS)
        self.node_informer: Informer = informers.informer(NODES)
        self.queue = WorkQueue("scheduler")
        self.recorder = EventRecorder(client, component=SCHEDULER_NAME)
        self._assumed: dict[str, str] = {}
        # Pods per node and per (owner uid, node), kept up to date from the informer and the
        # assumptions, so a scheduling cycle costs O(nodes) rather than O(pods).
        self._placed: dict[str, tuple[str, str | None]] = {}
        self._counts: dict[str, int] = {}
        self._owner_counts: dict[str, dict[str, int]] = {}
        self._binding: set[asyncio.Task] = set()
        self.pod_informer.add_handler(self._on_pod)
        self.node_informer.add_handler(self._on_node)

    def _wants(self, pod: Obj) -> bool:
        """An unbound, live pod of this scheduler (gated or not)."""
        spec = pod.get("spec", {})
        return (
            not spec.get("nodeName")
            and not pod["metadata"].get("deletionTimestamp")
            and spec.get("schedulerName", SCHEDULER_NAME) == SCHEDULER_NAME
            and pod.get("status", {}).get("phase") not in ("Succeeded", "Failed")
        )

    def _on_pod(self, kind: str, old: Obj | None, new: Obj | None) -> None:
        if new is not None and self._wants(new):
            self.queue.add(key_of(new))
        key = event_key(old, new)
        if new is None or new.get("spec", {}).get("nodeName"):
            self._assumed.pop(key, None)
        self._account(key, new)

    def _account(self, key: str, pod: Obj | None) -> None:
        """Count ``pod`` (None: gone) on its node — bound, or assumed — unless it finished."""
        before = self._placed.pop(key, None)
        if before is not None:
            node, owner = before
            self._counts[node] -= 1
            if owner:
                per_owner = self._owner_counts[owner]
                per_owner[node] -= 1
                if not per_owner[node]:
                    del per_owner[node]
                    if not per_owner:
                        del self._owner_counts[owner]
        if pod is None:
            return
        placed = pod.get("spec", {}).get("nodeName") or self._assumed.get(key)
        if not placed or pod.get("status", {}).get("phase") in ("Succeeded", "Failed"):
            return
        node, owner = str(placed), (controller_ref(pod) or {}).get("uid")
        self._placed[key] = (node, owner)
        self._counts[node] = self._counts.get(node, 0) + 1
        if owner:
            per_node = self._owner_counts.setdefault(owner, {})
            per_node[node] = per_node.get(node, 0) + 1

    def _on_node(self, kind: str, old: Obj | None, new: Obj | None) -> None:
        """A node appeared or changed: pending pods may fit now."""
        for pod in self.pod_informer.items():
            if self._wants(pod):
                self.queue.add(key_of(pod))

    async def run(self) -> None:
        """Schedule forever, one pod at a time (like kube-scheduler's single scheduling cycle)."""
        await self.queue.run(self.schedule, workers=1)

    def pick_node(self, pod: Obj) -> tuple[str | None, str]:
        """The best node for ``pod``, or None and the reason nothing fits."""
        nodes = list(self.node_informer.items())
        if not nodes:
            return None, "no nodes available to schedule pods"
        counts = self._counts
        owner = (controller_ref(pod) or {}).get("uid")
        owner_counts = self._owner_counts.get(owner, {}) if owner else {}
        reasons: dict[str, int] = {}
        feasible = []
        prefer_avoid: dict[str, int] = {}
        for node in nodes:
            name = node["metadata"]["name"]
            capacity = int(((node.get("status") or {}).get("allocatable") or {}).get("pods", "110"))
            if not node_is_ready(node):
                reasons["node(s) were not ready"] = reasons.get("node(s) were not ready", 0) + 1
            elif node.get("spec", {}).get("unschedulable") and not tolerates_unschedulable(pod):
                reasons["node(s) were unschedulable"] = reasons.get("node(s) were unschedulable", 0) + 1
            elif (taint := untolerated_taint(node, pod)) is not None:
                why = f"node(s) had untolerated taint {{{taint.get('key')}: {taint.get('value', '')}}}"
                reasons[why] = reasons.get(why, 0) + 1
            elif not node_affinity_matches(pod, node):
                why = "node(s) didn't match Pod's node affinity/selector"
                reasons[why] = reasons.get(why, 0) + 1
            elif counts.get(name, 0) >= capacity:
                reasons["Too many pods"] = reasons.get("Too many pods", 0) + 1
            else:
                feasible.append(name)
                prefer_avoid[name] = intolerable_prefer_no_schedule(node, pod)
        if not feasible:
            detail = ", ".join(f"{n} {why}" for why, n in sorted(reasons.items()))
            return None, f"0/{len(nodes)} nodes are available: {detail}."
        best = min(feasible, key=lambda n: (prefer_avoid[n], owner_counts.get(n, 0), counts.get(n, 0), n))
        return best, ""

    async def schedule(self, key: str) -> None:
        """Bind one pending pod."""
        pod = self.pod_informer.get(key)
        if pod is None or not self._wants(pod) or key in self._assumed:
            return
        if pod.get("spec", {}).get("schedulingGates"):
            await self._mark_gated(pod)
            return
        node, why = self.pick_node(pod)
        if node is None:
            self.recorder.event(pod, WARNING, "FailedScheduling", why)
            cond = condition(pod, "PodScheduled")
            if not cond or cond.get("reason") != "Unschedulable" or cond.get("message") != why:
                await self._patch_status(
                    pod,
                    {
                        "conditions": [
                            {
                                "type": "PodScheduled",
                                "status": "False",
                                "reason": "Unschedulable",
                                "message": why,
                                "lastProbeTime": None,
                                "lastTransitionTime": now_iso(),
                            }
                        ]
                    },
                )
            self.queue.add_after(key, 5.0)
            return
        # Assume the pod is on the node now, so the next scheduling cycle counts it, and bind
        # in the background: kube-scheduler's binding cycle runs apart from the scheduling cycle.
        self._assumed[key] = node
        self._account(key, pod)
        task = asyncio.get_running_loop().create_task(self._bind(pod, node))
        self._binding.add(task)
        task.add_done_callback(self._binding.discard)

    async def _bind(self, pod: Obj, node: str) -> None:
        """POST the Binding; on failure forget the assumption and retry the pod."""
        ns, name = pod["metadata"]["namespace"], pod["metadata"]["name"]
        key = key_of(pod)
        binding = {
            "apiVersion": "v1",
            "kind": "Binding",
            "metadata": {"name": name, "namespace": ns, "uid": pod["metadata"]["uid"]},
            "target": {"apiVersion": "v1", "kind": "Node", "name": node},
        }
        decided = time.time_ns()
        try:
            await self.client.request(
                "POST", PODS.path(namespace=ns, name=name, subresource="binding"), body=binding
            )
        except ApiError as exc:
            self._assumed.pop(key, None)
            self._account(key, self.pod_informer.get(key))
            if not (exc.not_found or exc.conflict):
                log.warning("binding %s to %s failed: %s", key, node, exc)
                self.queue.add_rate_limited(key)
            return
        except Exception as exc:
            self._assumed.pop(key, None)
            self._account(key, self.pod_informer.get(key))
            log.warning("binding %s to %s failed: %s", key, node, exc)
            self.queue.add_rate_limited(key)
            return
        self.recorder.event(
            pod, NORMAL, "Scheduled", f"Successfully assigned {ns}/{name} to {node}", when_ns=decided
        )

    async def _mark_gated(self, pod: Obj) -> None:
        """PodScheduled=False/SchedulingGated on a gated pod, unless it already says so."""
        cond = condition(pod, "PodScheduled")
        if cond and cond.get("reason") == SCHEDULING_GATED and cond.get("status") == "False":
            return
        await self._patch_status(
            pod,
            {
                "conditions": [
                    {
                        "type": "PodScheduled",
                        "status": "False",
                        "reason": SCHEDULING_GATED,
                        "message": SCHEDULING_GATED_MESSAGE,
                        "lastProbeTime": None,
                        "lastTransitionTime": now_iso(),
                    }
                ]
            },
        )

    async def _patch_status(self, pod: Obj, status: Obj) -> None:
        try:
            await self.client.patch(
                PODS,
                pod["metadata"]["name"],
                {"status": status},
                namespace=pod["metadata"]["namespace"],
                subresource="status",
                content_type=STRATEGIC_MERGE_PATCH,
            )
        except ApiError as exc:
            if not exc.not_found:
                raise
