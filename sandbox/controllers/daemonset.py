"""The DaemonSet controller: one pod per node that should run it (`pkg/controller/daemon`).

- A node should run the DaemonSet's pod when the pod built for it (the template plus the
  tolerations the controller adds: not-ready and unreachable NoExecute; disk-, memory- and
  pid-pressure and unschedulable NoSchedule; network-unavailable for hostNetwork pods) matches the
  node (nodeSelector, required node affinity) and tolerates its NoSchedule/NoExecute taints
  (`NodeShouldRunDaemonPod`, with the scheduler's own filter functions). An untolerated NoSchedule
  taint added later leaves a running pod alone; an untolerated NoExecute one removes it. Simulated
  nodes (tainted ``lb-demo.dev/simulated=true:NoSchedule``) get pods only when the template
  tolerates that.
- Pods are named ``<ds>-<random>``, labelled ``controller-revision-hash``, and pinned to their node
  with the nodeAffinity term ``matchFields metadata.name In [node]``
  (`ReplaceDaemonSetPodNodeNameNodeAffinity`); the scheduler binds them there. Failed pods are
  deleted and replaced (FailedDaemonPod), extra pods on a node deleted, pods on nodes that should
  not run them deleted.
- RollingUpdate (`rollingUpdate` in update.go): with maxSurge 0, old pods are deleted while at most
  maxUnavailable nodes are unavailable (unavailable old pods go at once); with maxSurge, a new pod
  is started next to an old one on up to maxSurge nodes and the old one deleted once the new one is
  available. OnDelete: pods take the new template when deleted by someone else.
- ControllerRevisions (`history.RevisionHistory`), status desiredNumberScheduled /
  currentNumberScheduled / numberReady / updatedNumberScheduled / numberAvailable /
  numberUnavailable / numberMisscheduled / observedGeneration, SuccessfulCreate / SuccessfulDelete
  events ("Created pod: x", "Deleted pod: x").

Creations the informer has not shown yet are remembered per DaemonSet and node (expectations), so
a slow watch never starts two pods on one node.
"""

from __future__ import annotations

import copy
import logging
import time

from sandbox.client import (
    DAEMONSETS,
    NODES,
    ApiClient,
    ApiError,
    Informer,
    InformerFactory,
    Obj,
    key_of,
)
from sandbox.controllers.history import POD_REVISION_LABEL, RevisionedController
from sandbox.controllers.workload import EXPECTATIONS_TTL, pod_from_template
from sandbox.meta import (
    int_or_percent,
    is_pod_available,
    is_pod_ready,
    is_terminating,
    parse_time,
)
from sandbox.record import WARNING
from sandbox.scheduler import node_affinity_matches, tolerates

log = logging.getLogger(__name__)

# `AddOrUpdateDaemonPodTolerations`: what every DaemonSet pod tolerates.
DAEMON_TOLERATIONS = (
    {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute"},
    {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute"},
    {"key": "node.kubernetes.io/disk-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/memory-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/pid-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"},
)
HOST_NETWORK_TOLERATION = {"key": "node.kubernetes.io/network-unavailable", "operator": "Exists",
                           "effect": "NoSchedule"}


def add_daemon_tolerations(pod_spec: Obj) -> None:
    """Add the DaemonSet tolerations a pod spec does not have yet, in place."""
    tolerations = pod_spec.setdefault("tolerations", [])
    wanted = [*DAEMON_TOLERATIONS, *([HOST_NETWORK_TOLERATION] if pod_spec.get("hostNetwork") else [])]
    for toleration in wanted:
        if not any(t.get("key") == toleration["key"] and t.get("effect") == toleration["effect"]
                   for t in tolerations if isinstance(t, dict)):
            tolerations.append(dict(toleration))


def pin_to_node(pod_spec: Obj, node_name: str) -> None:
    """`ReplaceDaemonSetPodNodeNameNodeAffinity`: the required node affinity becomes the single
    term ``matchFields metadata.name In [node]``, in place."""
    term = {"matchFields": [{"key": "metadata.name", "operator": "In", "values": [node_name]}]}
    affinity = pod_spec.setdefault("affinity", {})
    node_affinity = affinity.setdefault("nodeAffinity", {})
    node_affinity["requiredDuringSchedulingIgnoredDuringExecution"] = {"nodeSelectorTerms": [term]}


def target_node(pod: Obj) -> str | None:
    """`GetTargetNodeName`: the pod's node, or the node its matchFields term pins it to."""
    spec = pod.get("spec") or {}
    if spec.get("nodeName"):
        return str(spec["nodeName"])
    required = (((spec.get("affinity") or {}).get("nodeAffinity") or {})
                .get("requiredDuringSchedulingIgnoredDuringExecution") or {})
    for term in required.get("nodeSelectorTerms") or []:
        for req in term.get("matchFields") or []:
            values = req.get("values") or []
            if req.get("key") == "metadata.name" and req.get("operator") == "In" and len(values) == 1:
                return str(values[0])
    return None


def daemon_pod_spec(ds: Obj) -> Obj:
    """The template's pod spec with the DaemonSet tolerations (what `NewPod` builds)."""
    spec = copy.deepcopy((ds["spec"].get("template") or {}).get("spec") or {})
    add_daemon_tolerations(spec)
    return spec


def should_run(ds: Obj, node: Obj) -> tuple[bool, bool]:
    """`NodeShouldRunDaemonPod`: (should run a new pod, should keep a running one)."""
    pod = {"spec": daemon_pod_spec(ds)}
    if not node_affinity_matches(pod, node):
        return False, False
    tolerations = pod["spec"]["tolerations"]
    run = keep = True
    for taint in (node.get("spec") or {}).get("taints") or []:
        effect = taint.get("effect")
        if effect not in ("NoSchedule", "NoExecute") or any(tolerates(t, taint) for t in tolerations):
            continue
        run = False
        if effect == "NoExecute":
            keep = False
    return run, keep


def pod_revision(pod: Obj) -> str | None:
    return (pod["metadata"].get("labels") or {}).get(POD_REVISION_LABEL)


def oldest_first(pods: list[Obj]) -> list[Obj]:
    return sorted(pods, key=lambda p: (parse_time(p["metadata"].get("creationTimestamp")) or 0.0,
                                       p["metadata"]["name"]))


def split_by_revision(pods: list[Obj], revision: str) -> tuple[Obj | None, Obj | None, bool]:
    """`findUpdatedPodsOnNode`: the node's new and old live pod; False when it has two of a kind."""
    new = [p for p in pods if not is_terminating(p) and pod_revision(p) == revision]
    old = [p for p in pods if not is_terminating(p) and pod_revision(p) != revision]
    if len(new) > 1 or len(old) > 1:
        return None, None, False
    return (new[0] if new else None), (old[0] if old else None), True


def max_surge(ds: Obj, desired: int) -> int:
    """maxSurge scaled to the desired node count, rounded up (0 unless RollingUpdate)."""
    strategy = ds["spec"].get("updateStrategy") or {}
    if strategy.get("type") != "RollingUpdate":
        return 0
    surge = (strategy.get("rollingUpdate") or {}).get("maxSurge", 0)
    return int_or_percent(surge, desired, round_up=True)


def rolling_plan(ds: Obj, nodes: dict[str, Obj], by_node: dict[str, list[Obj]], revision: str,
                 now: float) -> tuple[list[Obj], list[str]]:
    """`rollingUpdate` in update.go: the old pods to delete and the nodes to start a new pod on.

    maxSurge 0: old pods go while at most maxUnavailable nodes are unavailable (an unavailable old
    pod goes at once). maxSurge: a new pod starts next to an available old one on up to maxSurge
    nodes (at once where the old one is unavailable); the old one goes when the new one is
    available. A node that should run a pod and has none counts as unavailable
    (`updatedDesiredNodeCounts`)."""
    min_ready = int(ds["spec"].get("minReadySeconds") or 0)
    wanted = [name for name, n in nodes.items() if should_run(ds, n)[0]]
    by_node = {**{name: [] for name in wanted}, **by_node}
    surge = max_surge(ds, len(wanted))
    available = lambda pod: is_pod_available(pod, min_ready, now=now)  # noqa: E731
    if surge == 0:
        rolling = (ds["spec"].get("updateStrategy") or {}).get("rollingUpdate") or {}
        max_unavailable = int_or_percent(rolling.get("maxUnavailable", 1), len(wanted), round_up=True)
        unavailable = 0
        replace: list[Obj] = []
        candidates: list[Obj] = []
        for name in sorted(by_node):
            new, old, ok = split_by_revision(by_node[name], revision)
            if not ok or (new is None) == (old is None):
                unavailable += 1
            elif new is not None:
                unavailable += not available(new)
            elif old is not None and not available(old):
                replace.append(old)
            elif old is not None and unavailable < max_unavailable:
                candidates.append(old)
        room = min(max(max_unavailable - unavailable, 0), len(candidates))
        return replace + candidates[:room], []
    surged = 0
    allowed: list[str] = []
    candidate_nodes: list[str] = []
    old_to_delete: list[Obj] = []
    for name in sorted(by_node):
        new, old, ok = split_by_revision(by_node[name], revision)
        if not ok:
            surged += 1
        elif old is None:
            continue
        elif new is None:
            if not available(old):
                allowed.append(name)
            elif surged < surge:
                candidate_nodes.append(name)
        elif not available(new):
            surged += 1
        else:
            old_to_delete.append(old)
    room = min(max(surge - surged, 0), len(candidate_nodes))
    return old_to_delete, [n for n in allowed + candidate_nodes[:room] if n in nodes]


class DaemonSetController(RevisionedController):
    """Reconciles DaemonSets with the nodes and their pods."""

    resource = DAEMONSETS
    component = "daemonset-controller"
    hash_label = POD_REVISION_LABEL

    def __init__(self, client: ApiClient, informers: InformerFactory) -> None:
        super().__init__(client, informers)
        self.node_informer: Informer = informers.informer(NODES)
        # (ds key, node) -> when a pod was created there that the informer has not shown yet.
        self._creating: dict[tuple[str, str], float] = {}
        self.node_informer.add_handler(self._on_node)

    def observe(self, kind: str, key: str, child: Obj, is_new: bool) -> None:
        """Creations are expected per node: a pod showing up for its node settles it."""
        node = target_node(child)
        if kind == "ADDED" and is_new and node:
            self._creating.pop((key, node), None)

    def forget(self, key: str, owner: Obj) -> None:
        for pending in [k for k in self._creating if k[0] == key]:
            del self._creating[pending]

    def _on_node(self, kind: str, old: Obj | None, new: Obj | None) -> None:
        """A node came, went, or changed labels or taints: every DaemonSet may need a pass."""
        if old is not None and new is not None and \
                old["metadata"].get("labels") == new["metadata"].get("labels") and \
                (old.get("spec") or {}) == (new.get("spec") or {}):
            return
        for ds in self.owners.items():
            self.queue.add(key_of(ds))

    async def sync(self, key: str) -> None:
        """Reconcile one DaemonSet."""
        found = await self.claimed(key)
        if found is None:
            return
        ds, pods = found
        revisions, current, collisions = await self.revisions(ds)
        revision = (current["metadata"].get("labels") or {}).get(POD_REVISION_LABEL) or ""
        by_node: dict[str, list[Obj]] = {}
        for pod in pods:
            node = target_node(pod)
            if node:
                by_node.setdefault(node, []).append(pod)
        nodes = {n["metadata"]["name"]: n for n in self.node_informer.items()}
        await self._manage(ds, key, nodes, by_node, revision)
        strategy = ds["spec"].get("updateStrategy") or {}
        if strategy.get("type") == "RollingUpdate":
            await self._rolling_update(ds, key, nodes, by_node, revision)
        await self._update_status(ds, nodes, by_node, revision, collisions)
        running = {pod_revision(p) for p in pods}
        live = {current["metadata"]["name"]}
        live |= {r["metadata"]["name"] for r in revisions
                 if (r["metadata"].get("labels") or {}).get(POD_REVISION_LABEL) in running}
        await self.truncate_history(ds, live)

    def _pending_create(self, key: str, node: str) -> bool:
        stamp = self._creating.get((key, node))
        return stamp is not None and time.monotonic() - stamp < EXPECTATIONS_TTL

    async def _manage(self, ds: Obj, key: str, nodes: dict[str, Obj], by_node: dict[str, list[Obj]],
                      revision: str) -> None:
        """`manage` and `podsShouldBeOnNode`: create missing pods, delete failed, extra and
        misplaced ones."""
        surge = max_surge(ds, len(nodes)) > 0
        to_create: list[str] = []
        to_delete: list[Obj] = []
        for name, node in nodes.items():
            run, keep = should_run(ds, node)
            pods = by_node.get(name, [])
            live = [p for p in pods if not is_terminating(p)]
            if run and not pods:
                if not self._pending_create(key, name):
                    to_create.append(name)
                continue
            if not keep:
                to_delete.extend(live)
                continue
            failed = [p for p in live if (p.get("status") or {}).get("phase") == "Failed"]
            for pod in failed:
                self.recorder.event(ds, WARNING, "FailedDaemonPod",
                                    f"Found failed daemon pod {pod['metadata']['namespace']}/"
                                    f"{pod['metadata']['name']} on node {name}, will try to kill it")
            to_delete.extend(failed)
            running = oldest_first([p for p in live if p not in failed])
            if surge:
                new = [p for p in running if pod_revision(p) == revision]
                old = [p for p in running if pod_revision(p) != revision]
                to_delete.extend(new[1:] + old[1:])
            else:
                to_delete.extend(running[1:])
        for name in set(by_node) - set(nodes):
            to_delete.extend(p for p in by_node[name] if not is_terminating(p))
        for name in to_create:
            await self._create_pod(ds, key, name, revision)
        for pod in to_delete:
            await self.delete_pod(ds, key, pod)

    async def _rolling_update(self, ds: Obj, key: str, nodes: dict[str, Obj], by_node: dict[str, list[Obj]],
                              revision: str) -> None:
        """`rollingUpdate`: delete and start what `rolling_plan` says."""
        to_delete, to_create = rolling_plan(ds, nodes, by_node, revision, time.time())
        for pod in to_delete:
            await self.delete_pod(ds, key, pod)
        for name in to_create:
            if not self._pending_create(key, name):
                await self._create_pod(ds, key, name, revision)

    async def _create_pod(self, ds: Obj, key: str, node: str, revision: str) -> None:
        template = ds["spec"].get("template") or {}
        spec = daemon_pod_spec(ds)
        pin_to_node(spec, node)
        pod = pod_from_template(ds, {"metadata": template.get("metadata") or {}, "spec": spec})
        pod["metadata"]["labels"][POD_REVISION_LABEL] = revision
        self._creating[(key, node)] = time.monotonic()
        try:
            created = await self.create_pod(ds, key, pod)
        except ApiError:
            self._creating.pop((key, node), None)
            raise
        if self.pods.get(key_of(created)) is not None:
            self._creating.pop((key, node), None)

    async def _update_status(self, ds: Obj, nodes: dict[str, Obj], by_node: dict[str, list[Obj]],
                             revision: str, collisions: int) -> None:
        """`updateDaemonSetStatus`."""
        min_ready = int(ds["spec"].get("minReadySeconds") or 0)
        now = time.time()
        status: Obj = {"desiredNumberScheduled": 0, "currentNumberScheduled": 0, "numberReady": 0,
                       "numberAvailable": 0, "updatedNumberScheduled": 0, "numberMisscheduled": 0}
        for name, node in nodes.items():
            pods = oldest_first([p for p in by_node.get(name, []) if not is_terminating(p)])
            if should_run(ds, node)[0]:
                status["desiredNumberScheduled"] += 1
                if not pods:
                    continue
                status["currentNumberScheduled"] += 1
                pod = pods[0]
                if is_pod_ready(pod):
                    status["numberReady"] += 1
                    status["numberAvailable"] += is_pod_available(pod, min_ready, now=now)
                status["updatedNumberScheduled"] += pod_revision(pod) == revision
            elif pods:
                status["numberMisscheduled"] += 1
        status["numberUnavailable"] = status["desiredNumberScheduled"] - status["numberAvailable"]
        status["observedGeneration"] = ds["metadata"].get("generation", 1)
        if collisions:
            status["collisionCount"] = collisions
        if min_ready and status["numberReady"] > status["numberAvailable"]:
            self.queue.add_after(key_of(ds), 1.0)
        await self.write_status(ds, status)
