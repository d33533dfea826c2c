"""The node lifecycle controller: node health from heartbeats, and the taints that say so
(kube-controller-manager's `pkg/controller/nodelifecycle`).

Every NODE_MONITOR_PERIOD it looks at each node's last heartbeat — its Lease's renewTime in
`kube-node-lease` or its Ready condition's lastHeartbeatTime, whichever is newer. A node silent
for longer than NODE_MONITOR_GRACE_PERIOD gets every condition set to Unknown (reason
NodeStatusUnknown, "Kubelet stopped posting node status."), a NodeNotReady event, and its pods
marked not ready (`MarkPodsNotReady`, a NodeNotReady "Node is not ready" event each), so Services
stop sending them traffic. Then it keeps the
node's condition taints in step with its Ready condition (`doNoExecuteTaintingPass` and
`doNoScheduleTaintingPass`): Ready=False -> `node.kubernetes.io/not-ready`, Ready=Unknown ->
`node.kubernetes.io/unreachable`, each as NoSchedule and NoExecute (with timeAdded, which the
taint-eviction controller counts tolerationSeconds from), a cordoned node
(`spec.unschedulable`) -> `node.kubernetes.io/unschedulable:NoSchedule`, and Memory/Disk/PID
pressure or NetworkUnavailable True -> `node.kubernetes.io/<memory|disk|pid>-pressure` or
`network-unavailable` NoSchedule. A node that heartbeats
again is set Ready by its kubelet, and the taints go.

Sandbox differences: the heartbeat is compared with the controller's clock directly (one machine,
no clock skew), where kube-controller-manager starts the grace period when it first observes a
heartbeat; so a node whose last heartbeat is already older than the grace period is marked at once.
And since the kubelets run in this controller's process, a monitor pass that comes late (the
machine slept, the process stalled) restarts the grace period instead of blaming every node.
The periods are Kubernetes' defaults (5 s monitor period, 40 s grace period).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
import time

from sandbox.client import (
    LEASES,
    NODES,
    PODS,
    STRATEGIC_MERGE_PATCH,
    ApiClient,
    ApiError,
    InformerFactory,
    Obj,
)
from sandbox.meta import now_iso, parse_time
from sandbox.record import NORMAL, WARNING, EventRecorder

log = logging.getLogger(__name__)

NODE_MONITOR_PERIOD = 5.0
NODE_MONITOR_GRACE_PERIOD = 40.0
LEASE_NAMESPACE = "kube-node-lease"
NOT_READY = "node.kubernetes.io/not-ready"
UNREACHABLE = "node.kubernetes.io/unreachable"
UNSCHEDULABLE = "node.kubernetes.io/unschedulable"
# `nodeConditionToTaintKeyStatusMap`: a condition in this status taints the node NoSchedule.
CONDITION_TAINTS = {("MemoryPressure", "True"): "node.kubernetes.io/memory-pressure",
                    ("DiskPressure", "True"): "node.kubernetes.io/disk-pressure",
                    ("PIDPressure", "True"): "node.kubernetes.io/pid-pressure",
                    ("NetworkUnavailable", "True"): "node.kubernetes.io/network-unavailable"}
MANAGED_TAINTS = {(NOT_READY, "NoSchedule"), (NOT_READY, "NoExecute"), (UNREACHABLE, "NoSchedule"),
                  (UNREACHABLE, "NoExecute"), (UNSCHEDULABLE, "NoSchedule"),
                  *((key, "NoSchedule") for key in CONDITION_TAINTS.values())}
NODE_CONDITIONS = ("Ready", "MemoryPressure", "DiskPressure", "PIDPressure")
STOPPED = "Kubelet stopped posting node status."
NEVER = "Kubelet never posted node status."


def last_heartbeat(node: Obj, lease: Obj | None) -> float | None:
    """The newest of the Lease's renewTime and the Ready condition's lastHeartbeatTime."""
    stamps = [parse_time((lease or {}).get("spec", {}).get("renewTime"))]
    for cond in (node.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Ready":
            stamps.append(parse_time(cond.get("lastHeartbeatTime")))
    known = [s for s in stamps if s is not None]
    return max(known) if known else None


def unknown_conditions(node: Obj, now: str) -> list[Obj] | None:
    """`tryUpdateNodeHealth` for a silent node: its conditions set to Unknown (None when they
    already are)."""
    conditions = [dict(c) for c in (node.get("status") or {}).get("conditions") or []]
    by_type = {c.get("type"): c for c in conditions}
    changed = False
    for type_ in NODE_CONDITIONS:
        cond = by_type.get(type_)
        if cond is None:
            created = node["metadata"].get("creationTimestamp") or now
            conditions.append({"type": type_, "status": "Unknown", "reason": "NodeStatusNeverUpdated",
                               "message": NEVER, "lastHeartbeatTime": created, "lastTransitionTime": now})
            changed = True
        elif cond.get("status") != "Unknown":
            cond.update(status="Unknown", reason="NodeStatusUnknown", message=STOPPED, lastTransitionTime=now)
            changed = True
    return conditions if changed else None


def wanted_taints(node: Obj) -> set[tuple[str, str]]:
    """The (key, effect) condition taints the node should carry."""
    conditions = (node.get("status") or {}).get("conditions") or []
    status = next((c.get("status") for c in conditions if c.get("type") == "Ready"), None)
    wanted: set[tuple[str, str]] = set()
    if status == "False":
        wanted |= {(NOT_READY, "NoSchedule"), (NOT_READY, "NoExecute")}
    elif status == "Unknown":
        wanted |= {(UNREACHABLE, "NoSchedule"), (UNREACHABLE, "NoExecute")}
    if (node.get("spec") or {}).get("unschedulable"):
        wanted.add((UNSCHEDULABLE, "NoSchedule"))
    for cond in conditions:
        key = CONDITION_TAINTS.get((cond.get("type"), cond.get("status")))
        if key is not None:
            wanted.add((key, "NoSchedule"))
    return wanted


def reconcile_taints(node: Obj, now: str) -> list[Obj] | None:
    """The node's taints with the managed ones brought in step (None when already right); other
    taints are kept as they are."""
    taints = [t for t in (node.get("spec") or {}).get("taints") or [] if isinstance(t, dict)]
    have = {(t.get("key"), t.get("effect")) for t in taints} & MANAGED_TAINTS
    wanted = wanted_taints(node)
    if have == wanted:
        return None
    kept = [t for t in taints if (t.get("key"), t.get("effect")) not in MANAGED_TAINTS
            or (t.get("key"), t.get("effect")) in wanted]
    for key, effect in sorted(wanted - have):
        taint: Obj = {"key": key, "effect": effect}
        if effect == "NoExecute":
            taint["timeAdded"] = now
        kept.append(taint)
    return kept


class NodeLifecycleController:
    """Marks silent nodes Unknown and keeps the node condition taints."""

    def __init__(self, client: ApiClient, informers: InformerFactory, *,
                 grace_period: float = NODE_MONITOR_GRACE_PERIOD) -> None:
        self.client = client
        self.nodes = informers.informer(NODES)
        self.leases = informers.informer(LEASES)
        self.pods = informers.informer(PODS)
        self.grace_period = grace_period
        self.recorder = EventRecorder(client, component="node-controller")
        self.nodes.add_handler(lambda kind, old, new: self._wake.set())
        self._wake = asyncio.Event()

    async def run(self) -> None:
        """Monitor node health every NODE_MONITOR_PERIOD (sooner when a node changes, for taints).

        A pass that comes much later than it should (the machine slept, or this process — which
        also runs the kubelets — stalled) judges no node: the kubelets were stalled too and get
        one grace period from now to renew their leases."""
        last_pass = time.monotonic()
        watching_since = 0.0
        while True:
            if time.monotonic() - last_pass > self.grace_period / 2:
                watching_since = time.time()
            last_pass = time.monotonic()
            for node in list(self.nodes.items()):
                try:
                    await self.monitor(node, watching_since=watching_since)
                except (ApiError, OSError, TimeoutError) as exc:
                    log.info("node %s: %s", node["metadata"]["name"], exc)
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), NODE_MONITOR_PERIOD)

    async def monitor(self, node: Obj, *, watching_since: float = 0.0) -> None:
        """One node: its health (silent for a grace period that this controller watched), then
        its taints."""
        name = node["metadata"]["name"]
        heartbeat = last_heartbeat(node, self.leases.get(f"{LEASE_NAMESPACE}/{name}"))
        stamp = now_iso()
        silent_since = max(heartbeat or 0.0, watching_since)
        if time.time() - silent_since > self.grace_period:
            conditions = unknown_conditions(node, stamp)
            if conditions is not None:
                node = await self.client.patch(NODES, name, {"status": {"conditions": conditions}},
                                               subresource="status", content_type=STRATEGIC_MERGE_PATCH)
                self.recorder.event(node, NORMAL, "NodeNotReady", f"Node {name} status is now: NodeNotReady")
                await self._mark_pods_not_ready(name)
        taints = reconcile_taints(node, stamp)
        if taints is not None:
            new = copy.deepcopy(node)
            new.setdefault("spec", {})["taints"] = taints
            if not taints:
                del new["spec"]["taints"]
            try:
                await self.client.replace(NODES, new)
            except ApiError as exc:
                if not (exc.conflict or exc.not_found):
                    raise
                self._wake.set()

    async def _mark_pods_not_ready(self, node_name: str) -> None:
        """`MarkPodsNotReady`: the node's pods' Ready condition False."""
        for pod in list(self.pods.items()):
            if (pod.get("spec") or {}).get("nodeName") != node_name:
                continue
            conditions = (pod.get("status") or {}).get("conditions") or []
            ready = next((c for c in conditions if c.get("type") == "Ready"), None)
            if ready is None or ready.get("status") == "False":
                continue
            not_ready = {**ready, "status": "False", "lastTransitionTime": now_iso()}
            meta = pod["metadata"]
            try:
                await self.client.patch(PODS, meta["name"], {"status": {"conditions": [not_ready]}},
                                        namespace=meta["namespace"], subresource="status",
                                        content_type=STRATEGIC_MERGE_PATCH)
            except ApiError:
                continue
            self.recorder.event(pod, WARNING, "NodeNotReady", "Node is not ready")
