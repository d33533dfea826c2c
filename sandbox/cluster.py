"""Starts the sandbox's cluster components next to the API server, as separate processes.

`sandbox up` calls `start_components()` once its API server listens. Three child processes
are started, each an ordinary API client (they learn everything through watches and write
through HTTP, like Kubernetes' components):

- the *node agents* process (``python -m sandbox.cluster``): the controller-manager
  (Deployment, ReplicaSet, Endpoints/EndpointSlice, ServiceAccount and root-CA publisher
  controllers, and the serving-gate add-on of k8s/backend.yaml's readiness gate), the
  scheduler, one kubelet per node and one simulated kubelet per simulated node
  (`sandbox.kubelet.simulated`), sharing informers;
- the *proxy* process (``python -m sandbox.proxy``), so Service traffic gets a core of its own;
- the *ingress controller* (``python -m sandbox.ingress``), the L7 proxy serving Ingresses.

All die with `sandbox up` even when it is SIGKILLed (``PR_SET_PDEATHSIG``), and so do the
pod processes they start. A graceful stop (SIGTERM) lets the kubelets stop their containers
first, honouring preStop hooks and grace periods (see `Kubelet.shutdown`). The first boot
also loads the default images into the node's image store.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Protocol

from sandbox import statedir
from sandbox.client import NODES, PODS, ApiClient, ApiError, InformerFactory, TaskGroup
from sandbox.controllers.clusterroleaggregation import ClusterRoleAggregationController
from sandbox.controllers.cronjob import CronJobController
from sandbox.controllers.daemonset import DaemonSetController
from sandbox.controllers.deployment import DeploymentController
from sandbox.controllers.disruption import DisruptionController
from sandbox.controllers.endpoints import EndpointsController
from sandbox.controllers.hpa import HorizontalPodAutoscalerController
from sandbox.controllers.job import JobController, TTLAfterFinishedController
from sandbox.controllers.nodelifecycle import NodeLifecycleController
from sandbox.controllers.replicaset import ReplicaSetController
from sandbox.controllers.rootca import RootCAPublisher
from sandbox.controllers.serviceaccounts import ServiceAccountsController
from sandbox.controllers.servinggate import ServingGateController
from sandbox.controllers.statefulset import StatefulSetController
from sandbox.controllers.taintmanager import TaintEvictionController
from sandbox.images import ImageStore
from sandbox.kubelet import dns
from sandbox.kubelet.kubelet import Kubelet, node_name
from sandbox.kubelet.network import pod_network_octet
from sandbox.kubelet.simulated import SIM_NODE_PREFIX, SimDelays, SimulatedNode, heartbeat_all, sim_node_name
from sandbox.leaderelection import CONTROLLER_MANAGER_LEASE, SCHEDULER_LEASE, LeaseHolder
from sandbox.procutil import die_with_parent, run_main
from sandbox.scheduler import Scheduler

log = logging.getLogger("sandbox.cluster")

REPO = Path(__file__).resolve().parent.parent
# Above the kubelets' NODE_SHUTDOWN_GRACE plus their final status writes, well below the
# 30 s the lab launcher gives the whole sandbox before SIGKILL.
STOP_TIMEOUT = 18.0

async def start_components(
    *, api_url: str, token: str, state_dir: Path, nodes: int, proxy_mode: str = "random",
    ingress_port: int = 8080, simulated_nodes: int = 0, simulated_delays: SimDelays | None = None,
) -> Callable[[], Awaitable[None]]:
    """Start the node agents, the proxy and the ingress controller; return the coroutine
    function that stops them."""
    state_dir = Path(state_dir)
    ImageStore(state_dir).register_nodes([node_name(i) for i in range(1, nodes + 1)])
    env = {**os.environ, "SANDBOX_API_TOKEN": token, "PYTHONPATH": str(REPO)}
    common = ["--api-url", api_url, "--state-dir", str(state_dir)]

    async def spawn(module: str, *args: str) -> asyncio.subprocess.Process:
        """``python -m module --api-url … --state-dir … args``, dying with this process."""
        return await asyncio.create_subprocess_exec(sys.executable, "-m", module, *common, *args, env=env,
                                                    cwd=str(REPO), preexec_fn=die_with_parent)

    procs = [
        await spawn("sandbox.cluster", "--nodes", str(nodes),
                    *simulated_args(simulated_nodes, simulated_delays or SimDelays())),
        await spawn("sandbox.proxy", "--mode", proxy_mode),
        await spawn("sandbox.ingress", "--port", str(ingress_port)),
    ]

    async def stop() -> None:
        """SIGTERM them all (the kubelets stop their pods), SIGKILL what is left after a timeout."""
        for proc in procs:
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                await asyncio.wait_for(proc.wait(), timeout=STOP_TIMEOUT)
            except TimeoutError:
                log.warning("component pid %d did not stop within %.0f s: killed", proc.pid, STOP_TIMEOUT)
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()

    return stop


def simulated_args(count: int, delays: SimDelays) -> list[str]:
    """The node-agents arguments for ``count`` simulated nodes (`sandbox.kubelet.simulated`)."""
    return ["--simulated-nodes", str(count), "--sim-pending", str(delays.pending), "--sim-creating",
            str(delays.creating), "--sim-ready", str(delays.ready), "--sim-grace", str(delays.grace)]


class Controller(Protocol):
    """What the node-agents process runs: a control loop until cancelled."""

    async def run(self) -> None:
        """Reconcile until cancelled."""


async def run_node_agents(*, api_url: str, token: str, state_dir: Path, nodes: int, simulated_nodes: int = 0,
                          simulated_delays: SimDelays | None = None) -> None:
    """The node-agents process: controllers, scheduler and kubelets until SIGTERM/SIGINT."""
    ca_file = statedir.ca_cert(state_dir)
    client = ApiClient(base_url=api_url, token=token, ca_file=ca_file if ca_file.exists() else None)
    informers = InformerFactory(client)
    images = ImageStore(state_dir)
    # One process plays three components; each writes under its own name (managedFields managers).
    kubelet_client = client.for_component("kubelet")
    manager = client.for_component("kube-controller-manager")
    kubelets = [
        Kubelet(kubelet_client, informers, index=i, state_dir=state_dir, images=images)
        for i in range(1, nodes + 1)
    ]
    writes = asyncio.Semaphore(16)
    simulated = [
        SimulatedNode(kubelet_client, informers, index=i, network_octet=pod_network_octet(state_dir),
                      delays=simulated_delays or SimDelays(), writes=writes)
        for i in range(1, simulated_nodes + 1)
    ]
    controllers: list[Controller] = [
        ReplicaSetController(manager, informers),
        DeploymentController(manager, informers),
        StatefulSetController(manager, informers),
        DaemonSetController(manager, informers),
        EndpointsController(manager, informers),
        HorizontalPodAutoscalerController(manager, informers),
        ServingGateController(client.for_component("lb-demo-serving-gate"), informers),
        JobController(manager, informers),
        TTLAfterFinishedController(manager, informers),
        CronJobController(manager, informers),
        ServiceAccountsController(manager, informers),
        *([RootCAPublisher(manager, informers, ca_file.read_bytes())] if ca_file.exists() else []),
        DisruptionController(manager, informers),
        ClusterRoleAggregationController(manager, informers),
        NodeLifecycleController(manager, informers),
        TaintEvictionController(manager, informers),
        Scheduler(client.for_component("kube-scheduler"), informers),
        LeaseHolder(client.for_component("kube-scheduler"), SCHEDULER_LEASE),
        LeaseHolder(manager, CONTROLLER_MANAGER_LEASE),
    ]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    tasks = TaskGroup()
    try:
        for kubelet in kubelets:
            await _retry(kubelet.register)
        for sim in simulated:
            await _retry(sim.register)
        await _retry(lambda: _forget_removed_nodes(client, nodes, simulated_nodes))
        dns_transport = await dns.serve(kubelets[0].host_ip, lambda: kubelets[0].service_informer.items(),
                                        lambda: kubelets[0].pod_informer.items())
        if dns_transport is not None:
            for kubelet in kubelets:
                kubelet.cluster_dns = kubelets[0].host_ip
        informers.start(tasks)
        await informers.wait_synced()
        for kubelet in kubelets:
            tasks.spawn(kubelet.heartbeat(), name=f"heartbeat:{kubelet.node_name}")
            tasks.spawn(kubelet.metrics.run(), name=f"metrics:{kubelet.node_name}")
        if simulated:
            tasks.spawn(heartbeat_all(simulated), name="heartbeat:simulated")
        for controller in controllers:
            tasks.spawn(controller.run(), name=f"controller:{type(controller).__name__}")
        log.info("%d node(s), %d simulated node(s), controllers and scheduler running", nodes,
                 simulated_nodes)
        await stop.wait()
    finally:
        await asyncio.gather(*(k.shutdown() for k in kubelets), *(s.shutdown() for s in simulated),
                             return_exceptions=True)
        await tasks.cancel_all()
        await client.close()


async def _retry(action: Callable[[], Awaitable[object]], *, attempts: int = 50) -> None:
    """Retry a start-up call while the API server is still coming up."""
    for attempt in range(attempts):
        try:
            await action()
            return
        except (TimeoutError, OSError, ApiError) as exc:
            if attempt == attempts - 1:
                raise
            log.info("waiting for the API server: %s", exc)
            await asyncio.sleep(0.2)


async def _forget_removed_nodes(client: ApiClient, nodes: int, simulated_nodes: int = 0) -> None:
    """After a restart with fewer ``--nodes`` (or ``--simulated-nodes``): delete the extra Nodes
    and force-delete their pods."""
    wanted = {node_name(i) for i in range(1, nodes + 1)}
    wanted |= {sim_node_name(i) for i in range(1, simulated_nodes + 1)}
    listed = await client.list(NODES)
    for node in listed.get("items") or []:
        name = node["metadata"]["name"]
        if name.startswith(("sandbox-node-", SIM_NODE_PREFIX)) and name not in wanted:
            pods = await client.list(PODS, field_selector=f"spec.nodeName={name}")
            for pod in pods.get("items") or []:
                with contextlib.suppress(ApiError):
                    await client.delete(
                        PODS, pod["metadata"]["name"], namespace=pod["metadata"]["namespace"], grace_period=0
                    )
            with contextlib.suppress(ApiError):
                await client.delete(NODES, name)


def main() -> None:
    """``python -m sandbox.cluster --api-url URL --state-dir D --nodes N`` (token in $SANDBOX_API_TOKEN)."""
    parser = argparse.ArgumentParser(prog="python -m sandbox.cluster", description=__doc__.splitlines()[0])
    parser.add_argument("--api-url", required=True)
    parser.add_argument("--state-dir", type=Path, required=True)
    parser.add_argument("--nodes", type=int, default=3)
    parser.add_argument("--simulated-nodes", type=int, default=0)
    defaults = SimDelays()
    for name in ("pending", "creating", "ready", "grace"):
        parser.add_argument(f"--sim-{name}", type=float, default=getattr(defaults, name))
    args = parser.parse_args()
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s node-agents %(levelname)s %(name)s: %(message)s"
    )
    token = os.environ.get("SANDBOX_API_TOKEN", "")
    run_main(
        run_node_agents(
            api_url=args.api_url, token=token, state_dir=args.state_dir.resolve(), nodes=args.nodes,
            simulated_nodes=args.simulated_nodes,
            simulated_delays=SimDelays(pending=args.sim_pending, creating=args.sim_creating,
                                       ready=args.sim_ready, grace=args.sim_grace),
        )
    )


if __name__ == "__main__":
    main()
