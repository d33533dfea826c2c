"""Simulated nodes (like kwok): Node objects whose "kubelet" runs no processes.

``python -m sandbox up --simulated-nodes N`` adds nodes ``sandbox-sim-1`` … ``sandbox-sim-N``
next to the real ones, so a learner can watch a Deployment of 1,000 pods over 100 nodes
scale and heal on a laptop. A pod bound to a simulated node goes through the phases a real
kubelet reports, on a timer instead of a process:

1. ``Pending`` (bound, no sandbox yet) for ``SimDelays.pending`` seconds;
2. ``ContainerCreating`` (the pod IP is assigned, PodReadyToStartContainers True) for
   ``SimDelays.creating`` seconds;
3. ``Running``: every container started; a container without a readinessProbe is ready at
   once, one with a readinessProbe after ``SimDelays.ready`` seconds more;
4. Ready by the one rule of `sandbox.kubelet.status` (ContainersReady AND every readiness
   gate's condition True) — the status is computed by ``generate_pod_status``, the same pure
   function the real kubelet uses, and recomputed when a readiness gate's condition changes.

A deletion is graceful but quick: the pod's grace period, capped at ``SimDelays.grace``
seconds, then its containers are reported terminated (exit 0, not ready) and the pod object
is deleted with gracePeriodSeconds=0, as a real kubelet confirms a deletion.

Simulated pods serve no traffic. Their IPs come from ``127.<S>.<node>.<2..254>`` where ``S`` is
the sandbox's pod-network octet minus 127 (1..127): loopback addresses on which nothing ever
listens (real pods and nodes use octets 128..254), so a connection to one is refused at once.
The Node objects say they are simulated, for people and for the dashboard:

- label ``lb-demo.dev/simulated=true``;
- taint ``lb-demo.dev/simulated=true:NoSchedule`` (kwok's convention, ``kwok.x-k8s.io/node=fake``):
  only pods that tolerate it land there, so the sample app keeps running on the real nodes and
  a crowd Deployment opts in with a toleration (see ``docs/examples/crowd.yaml``);
- ``status.nodeInfo.containerRuntimeVersion`` ``simulated://0.1.0``.

The simulated kubelets run in the node-agents process (`sandbox/cluster.py`) and share its
informers; status writes are bounded (``MAX_WRITES`` in flight) so that scaling to 10,000 pods
does not open 10,000 requests at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from dataclasses import dataclass

from sandbox.client import (
    NODES,
    PODS,
    STRATEGIC_MERGE_PATCH,
    ApiClient,
    ApiError,
    InformerFactory,
    Obj,
    key_of,
)
from sandbox.kubelet.nodestatus import LEASE_PERIOD, NodeAgent, node_object
from sandbox.kubelet.status import KUBELET_CONDITIONS, ContainerFacts, generate_pod_status
from sandbox.meta import now_iso

log = logging.getLogger(__name__)

SIMULATED_LABEL = "lb-demo.dev/simulated"
SIMULATED_TAINT = {"key": SIMULATED_LABEL, "value": "true", "effect": "NoSchedule"}
SIMULATED_RUNTIME = "simulated://0.1.0"
SIM_NODE_PREFIX = "sandbox-sim-"
MAX_SIMULATED_NODES = 250
MAX_WRITES = 16
# How often the simulated nodes renew their Leases (all of them in one loop).
SIM_LEASE_PERIOD = LEASE_PERIOD


@dataclass(frozen=True)
class SimDelays:
    """Seconds a simulated pod spends in each phase (see the module docstring)."""

    pending: float = 0.5
    creating: float = 1.0
    ready: float = 1.0
    grace: float = 1.0


def sim_node_name(index: int) -> str:
    """Simulated node names: sandbox-sim-1, sandbox-sim-2, ..."""
    return f"{SIM_NODE_PREFIX}{index}"


def sim_octet(network_octet: int) -> int:
    """The second octet of the simulated pods' addresses: never a real pod network (128..254)."""
    return max(1, network_octet - 127)


def is_simulated_node(node: Obj) -> bool:
    """The Node is a simulated one (its label says so)."""
    return ((node.get("metadata") or {}).get("labels") or {}).get(SIMULATED_LABEL) == "true"


def simulated_node_object(node: Obj) -> Obj:
    """A real node's Node object turned into a simulated node's: label, taint, runtime."""
    node["metadata"]["labels"][SIMULATED_LABEL] = "true"
    node["spec"]["taints"] = [dict(SIMULATED_TAINT)]
    node["status"]["nodeInfo"]["containerRuntimeVersion"] = SIMULATED_RUNTIME
    node["status"]["nodeInfo"]["osImage"] = "lb-demo simulated node (runs no processes)"
    return node


def _image(container: Obj) -> str:
    ref = str(container.get("image") or "")
    return ref if "/" in ref else f"docker.io/library/{ref}"


class SimulatedPod:
    """One pod on a simulated node: a timer through the phases, then a quick deletion."""

    def __init__(self, node: SimulatedNode, pod: Obj) -> None:
        self.node = node
        self.pod = pod
        self.name: str = pod["metadata"]["name"]
        self.namespace: str = pod["metadata"]["namespace"]
        self.uid: str = pod["metadata"]["uid"]
        self.key = key_of(pod)
        self.stage = "pending"  # pending → creating → running → (terminated)
        self.pod_ip = ""
        self.start_time = (pod.get("status") or {}).get("startTime")
        self.started_at = 0.0
        self.terminating = False
        self.gone = False
        self._wake = asyncio.Event()
        self._last_status: Obj | None = None
        self._conditions: list[Obj] = [
            c for c in (pod.get("status") or {}).get("conditions") or []
            if c.get("type") in KUBELET_CONDITIONS
        ]
        self.task: asyncio.Task | None = None

    def update(self, pod: Obj) -> None:
        """A newer version from the informer: a readiness gate change rewrites the status."""
        before = self._foreign()
        self.pod = pod
        if pod["metadata"].get("deletionTimestamp") and not self.terminating:
            self.terminating = True
            self._wake.set()
        elif self._foreign() != before and self.stage != "pending":
            self._wake.set()

    def _foreign(self) -> list[tuple[str, str]]:
        return sorted((str(c.get("type")), str(c.get("status")))
                      for c in (self.pod.get("status") or {}).get("conditions") or []
                      if isinstance(c, dict) and c.get("type") not in KUBELET_CONDITIONS)

    async def _sleep(self, seconds: float) -> None:
        """Sleep, waking early on deletion."""
        if seconds <= 0 or self.terminating:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout=seconds)

    def container_facts(self) -> list[ContainerFacts]:
        """The containers as a runtime would report them at this stage."""
        delays = self.node.delays
        facts = []
        for container in self.pod["spec"].get("containers") or []:
            status: Obj = {"name": container.get("name", ""), "lastState": {}, "ready": False,
                           "restartCount": 0, "image": _image(container), "imageID": "", "started": False}
            if self.stage == "creating":
                status["state"] = {"waiting": {"reason": "ContainerCreating"}}
            elif self.stage == "running":
                status["state"] = {"running": {"startedAt": self.start_time}}
                status["started"] = True
                probe_wait = delays.ready if container.get("readinessProbe") else 0.0
                status["ready"] = time.monotonic() - self.started_at >= probe_wait
                status["containerID"] = f"simulated://{self.uid[:12]}-{status['name']}"
            elif self.stage == "terminated":
                status["state"] = {"terminated": {"exitCode": 0, "reason": "Completed",
                                                  "startedAt": self.start_time, "finishedAt": now_iso()}}
                status["containerID"] = f"simulated://{self.uid[:12]}-{status['name']}"
            else:
                status["state"] = {"waiting": {"reason": "ContainerCreating"}}
            facts.append(ContainerFacts(status, self.stage == "terminated"))
        return facts

    def compute_status(self) -> Obj:
        """The status by the real kubelet's pure function (`sandbox.kubelet.status`)."""
        status = generate_pod_status(
            self.pod, self.container_facts(), pod_ip=self.pod_ip, host_ip=self.node.host_ip,
            start_time=self.start_time, previous=self._conditions, now=now_iso(),
        )
        if self.stage == "terminated":
            # The pod is being deleted: its phase stays Running (like a killed container of a
            # restartPolicy Always pod), only readiness goes.
            status["phase"] = (self.pod.get("status") or {}).get("phase") or "Pending"
        self._conditions = status["conditions"]
        return status

    async def write_status(self) -> None:
        """Patch ``pods/<name>/status`` when it changed (bounded concurrency, retried)."""
        for attempt in range(5):
            if self.gone:
                return
            status = self.compute_status()
            if status == self._last_status:
                return
            try:
                async with self.node.writes:
                    await self.node.client.patch(PODS, self.name, {"status": status},
                                                 namespace=self.namespace, subresource="status",
                                                 content_type=STRATEGIC_MERGE_PATCH)
                self._last_status = status
                return
            except ApiError as exc:
                if exc.not_found:
                    self.gone = True
                    return
                log.info("status of simulated pod %s not written (%s); retrying", self.key, exc)
            except (OSError, TimeoutError) as exc:
                log.info("status of simulated pod %s not written (%s); retrying", self.key, exc)
            await asyncio.sleep(0.2 * (attempt + 1))

    async def run(self) -> None:
        """Pending → ContainerCreating → Running → Ready, then wait for the deletion."""
        delays = self.node.delays
        try:
            await self._sleep(delays.pending)
            if not self.terminating:
                self.pod_ip = self.node.allocate_ip(self.uid)
                self.start_time = self.start_time or now_iso()
                self.stage = "creating"
                if delays.creating > 0:
                    await self.write_status()
                await self._sleep(delays.creating)
            if not self.terminating:
                self.stage = "running"
                self.started_at = time.monotonic()
                await self.write_status()
                probed = any(c.get("readinessProbe") for c in self.pod["spec"].get("containers") or [])
                if probed:
                    await self._sleep(delays.ready)
                    if not self.terminating:
                        await self.write_status()
            while not self.terminating:
                self._wake.clear()
                await self._wake.wait()
                if not self.terminating:
                    await self.write_status()  # a readiness gate changed
            await self._terminate()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("simulated pod %s failed", self.key)
        finally:
            self.node.release_ip(self.uid)

    def grace_period(self) -> float:
        """The deletion's grace period, capped at the simulated nodes' grace."""
        meta, spec = self.pod["metadata"], self.pod["spec"]
        value = meta.get("deletionGracePeriodSeconds")
        if value is None:
            value = spec.get("terminationGracePeriodSeconds", 30)
        return min(float(value), self.node.delays.grace)

    async def _terminate(self) -> None:
        if self.gone:
            return
        await asyncio.sleep(self.grace_period())
        if self.stage != "pending":
            self.stage = "terminated"
            await self.write_status()
        if self.gone:
            return
        for attempt in range(5):
            try:
                async with self.node.writes:
                    await self.node.client.delete(PODS, self.name, namespace=self.namespace, grace_period=0,
                                                  uid=self.uid)
                return
            except ApiError as exc:
                if exc.not_found or exc.conflict:
                    return
                log.warning("could not delete simulated pod %s: %s", self.key, exc)
            except (OSError, TimeoutError) as exc:
                log.info("could not delete simulated pod %s (%s); retrying", self.key, exc)
            await asyncio.sleep(0.2 * (attempt + 1))


class SimulatedNode:
    """The "kubelet" of one simulated node: a Node object and timers for its pods."""

    def __init__(self, client: ApiClient, informers: InformerFactory, *, index: int, network_octet: int,
                 delays: SimDelays, writes: asyncio.Semaphore) -> None:
        self.client = client
        self.index = index
        self.node_name = sim_node_name(index)
        self.octet = sim_octet(network_octet)
        self.host_ip = f"127.{self.octet}.0.{index}"
        self.delays = delays
        self.writes = writes
        self.agent = NodeAgent(client, name=self.node_name, index=index, host_ip=self.host_ip,
                               network_octet=self.octet)
        self.agent.node_object = self.node_object  # type: ignore[method-assign]
        self.pods: dict[str, SimulatedPod] = {}
        self._ips: dict[str, str] = {}
        self._counter = 0
        self.shutting_down = False
        informers.informer(PODS).add_handler(self._on_pod)

    def node_object(self) -> Obj:
        """The Node object: a real node's, marked simulated (label, taint, runtime)."""
        node = node_object(name=self.node_name, index=self.index, host_ip=self.host_ip,
                           network_octet=self.octet, boot_id=self.agent.boot_id)
        node["spec"]["podCIDR"] = node["spec"]["podCIDRs"][0] = f"127.{self.octet}.{self.index}.0/24"
        return simulated_node_object(node)

    async def register(self) -> None:
        """Create or refresh the Node object (status, label and taint included)."""
        await self.agent.register()
        node = self.node_object()
        await self.client.patch(NODES, self.node_name,
                                {"spec": {"taints": node["spec"]["taints"]}})

    def allocate_ip(self, uid: str) -> str:
        """A free address ``127.<S>.<node>.<2..254>`` (nothing listens there)."""
        used = set(self._ips.values())
        for _ in range(253):
            ip = f"127.{self.octet}.{self.index}.{2 + self._counter % 253}"
            self._counter += 1
            if ip not in used:
                self._ips[uid] = ip
                return ip
        raise RuntimeError(f"simulated node {self.node_name} has no free pod IP")

    def release_ip(self, uid: str) -> None:
        """The pod is gone: its address may be handed out again."""
        self._ips.pop(uid, None)

    def _forget(self, uid: str, _task: asyncio.Task[None]) -> None:
        self.pods.pop(uid, None)

    def _on_pod(self, kind: str, old: Obj | None, new: Obj | None) -> None:
        if self.shutting_down:
            return
        pod = new or old
        assert pod is not None
        if (pod.get("spec") or {}).get("nodeName") != self.node_name:
            return
        uid = pod["metadata"]["uid"]
        sim = self.pods.get(uid)
        if kind == "DELETED":
            if sim is not None:
                sim.gone = True
                sim.terminating = True
                sim._wake.set()
            return
        if sim is None:
            if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
                return
            sim = SimulatedPod(self, pod)
            if pod["metadata"].get("deletionTimestamp"):
                sim.terminating = True
            self.pods[uid] = sim
            task = sim.task = asyncio.get_running_loop().create_task(sim.run(), name=f"simpod:{sim.key}")
            task.add_done_callback(functools.partial(self._forget, uid))
        sim.update(pod)

    async def shutdown(self) -> None:
        """The sandbox stops: forget the timers (the pod objects stay; a restart resumes them)."""
        self.shutting_down = True
        for sim in list(self.pods.values()):
            if sim.task is not None:
                sim.task.cancel()


async def heartbeat_all(nodes: list[SimulatedNode]) -> None:
    """Renew every simulated node's Lease in one loop (a few requests every 10 s)."""
    while True:
        await asyncio.sleep(SIM_LEASE_PERIOD)
        for node in nodes:
            with contextlib.suppress(ApiError, OSError, TimeoutError):
                await node.agent.renew_lease()

