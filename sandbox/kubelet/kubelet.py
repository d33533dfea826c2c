"""The kubelet of one sandbox node: runs the pods bound to it as real processes.

For every pod the scheduler bound to its node it runs a `PodWorker`:

1. "sandbox": a fresh loopback pod IP (`sandbox.kubelet.network`), PodReadyToStartContainers,
   ContainerCreating; the pod's /etc/hosts (its name, hostAliases, every Service's names, kept
   live), /etc/hostname and resolv.conf, and its volumes (`sandbox.kubelet.volumes`);
2. one `ContainerRunner` per container (`sandbox.kubelet.container`): image, start under
   bubblewrap (`sandbox.kubelet.isolation`), probes, restarts with back-off;
3. on graceful deletion: Killing, preStop, SIGTERM, up to the grace period, SIGKILL, then the
   pod object is deleted with gracePeriodSeconds=0, and its logs and runtime files removed.

Status is computed by the pure `sandbox.kubelet.status.generate_pod_status` and written as a
strategic merge patch on ``pods/<name>/status`` holding only the kubelet's own conditions (so
PodScheduled and readiness-gate conditions set by others stay), coalesced: at most one write
in flight per pod, nothing written when nothing changed; a change of a readiness gate's
condition makes the worker recompute Ready. The Node object and its Lease are
`sandbox.kubelet.nodestatus`.

When the sandbox stops, the kubelet does a graceful node shutdown: it starts, pulls and
restarts nothing more, stops every container in parallel (Killing, preStop, SIGTERM, the pod's
grace period capped at NODE_SHUTDOWN_GRACE, SIGKILL) and writes their terminated state.
After a restart of the sandbox, pods bound to this node whose processes are gone are started
again (new IP, restartCount + 1, lastState the recorded exit, or Unknown after a crash), which
brings the cluster back to its desired state.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import shutil
import signal
from pathlib import Path

from sandbox import statedir
from sandbox.client import (
    CONFIGMAPS,
    PODS,
    SECRETS,
    SERVICEACCOUNTS,
    SERVICES,
    STRATEGIC_MERGE_PATCH,
    ApiClient,
    ApiError,
    Informer,
    InformerFactory,
    Obj,
    key_of,
)
from sandbox.images import Image, ImageStore
from sandbox.kubelet.container import ContainerRunner
from sandbox.kubelet.isolation import Mount
from sandbox.kubelet.metrics import ContainerRef, MetricsCollector
from sandbox.kubelet.network import IpAllocator, node_ip, node_name
from sandbox.kubelet.nodestatus import NodeAgent, node_images
from sandbox.kubelet.status import KUBELET_CONDITIONS, ContainerFacts, generate_pod_status
from sandbox.kubelet.volumes import MountError, PodVolumes
from sandbox.meta import now_iso
from sandbox.record import NORMAL, WARNING, EventRecorder

log = logging.getLogger(__name__)

__all__ = ["Kubelet", "PodWorker", "node_name"]

# Graceful node shutdown (the kubelet's shutdownGracePeriod): the longest a pod may take to stop
# when the sandbox stops; the sample backend needs 2 s of preStop plus 5 s of draining.
NODE_SHUTDOWN_GRACE = 10.0
RUNNER_EXIT_WAIT = 1.0
STATUS_FLUSH_WAIT = 2.0
CLUSTER_DOMAIN = "cluster.local"


def _foreign_conditions(pod: Obj) -> list[tuple[str, str]]:
    """(type, status) of the pod conditions the kubelet does not own (readiness gates …)."""
    return sorted(
        (str(c.get("type")), str(c.get("status")))
        for c in (pod.get("status") or {}).get("conditions") or []
        if isinstance(c, dict) and c.get("type") not in KUBELET_CONDITIONS
    )


def _ready_of(status: Obj | None) -> str | None:
    """The status of a pod status's Ready condition."""
    return next((c.get("status") for c in (status or {}).get("conditions") or [] if c.get("type") == "Ready"),
                None)


class PodWorker:
    """Everything the kubelet does for one pod."""

    def __init__(self, kubelet: Kubelet, pod: Obj) -> None:
        self.kubelet = kubelet
        self.pod = pod
        self.name: str = pod["metadata"]["name"]
        self.namespace: str = pod["metadata"]["namespace"]
        self.uid: str = pod["metadata"]["uid"]
        self.key = key_of(pod)
        self.pod_ip = ""
        self.start_time = (pod.get("status") or {}).get("startTime")
        self.terminating = False
        self.gone = False
        self.runners = [ContainerRunner(self, c) for c in pod["spec"].get("containers") or []]
        previous = {c.get("name"): c for c in (pod.get("status") or {}).get("containerStatuses") or []}
        for runner in self.runners:
            if runner.name in previous:
                runner.restore(previous[runner.name])
        self._wake = asyncio.Event()
        self._dirty = asyncio.Event()
        self._last_status: Obj | None = None
        self._conditions: dict[str, Obj] = {
            c["type"]: c
            for c in (pod.get("status") or {}).get("conditions") or []
            if c.get("type") in KUBELET_CONDITIONS
        }
        self.task: asyncio.Task | None = None
        self.volumes = PodVolumes(self.runtime_dir)
        self.runner_tasks: list[asyncio.Task] = []
        self._writer: asyncio.Task | None = None

    @property
    def hostname(self) -> str:
        """The pod's hostname: ``spec.hostname``, else its name."""
        return str(self.pod["spec"].get("hostname") or self.name)

    @property
    def runtime_dir(self) -> Path:
        """This pod's files on the node (its /etc files, later its volumes); removed with the pod."""
        return statedir.pod_dir(self.kubelet.state_dir, namespace=self.namespace, pod=self.name, uid=self.uid)

    def _own_hosts_line(self) -> str:
        """The pod's own entry; with ``spec.subdomain`` (StatefulSet pods) its FQDN first, as the
        kubelet writes it (``<hostname>.<subdomain>.<namespace>.svc.cluster.local``)."""
        subdomain = self.pod["spec"].get("subdomain")
        if subdomain:
            fqdn = f"{self.hostname}.{subdomain}.{self.namespace}.svc.cluster.local"
            return f"{self.pod_ip}\t{fqdn}\t{self.hostname}"
        return f"{self.pod_ip}\t{self.hostname}"

    def hosts_file(self) -> str:
        """The kubelet-managed /etc/hosts: the pod's own name, its hostAliases, and — standing in
        for cluster DNS — every Service's ClusterIP under ``name`` (the pod's namespace only),
        ``name.namespace``, ``name.namespace.svc`` and ``name.namespace.svc.cluster.local``."""
        hosts = [
            "# Kubernetes-managed hosts file.",
            "127.0.0.1\tlocalhost",
            "::1\tlocalhost ip6-localhost ip6-loopback",
            "fe00::0\tip6-localnet",
            "fe00::0\tip6-mcastprefix",
            "fe00::1\tip6-allnodes",
            "fe00::2\tip6-allrouters",
            self._own_hosts_line(),
        ]
        aliases = self.pod["spec"].get("hostAliases") or []
        if aliases:
            hosts += ["", "# Entries added by HostAliases."]
            hosts += ["\t".join([str(a["ip"]), *(a.get("hostnames") or [])]) for a in aliases if a.get("ip")]
        services = []
        for service in sorted(self.kubelet.service_informer.items(), key=lambda s: key_of(s)):
            ip = (service.get("spec") or {}).get("clusterIP")
            if not ip or ip == "None":
                continue
            name, ns = service["metadata"]["name"], service["metadata"]["namespace"]
            names = [name] if ns == self.namespace else []
            names += [f"{name}.{ns}", f"{name}.{ns}.svc", f"{name}.{ns}.svc.{CLUSTER_DOMAIN}"]
            services.append("\t".join([ip, *names]))
        if services:
            hosts += ["", "# Services (the sandbox's stand-in for cluster DNS).", *services]
        return "\n".join(hosts) + "\n"

    def resolv_conf(self) -> str:
        """resolv.conf per ``dnsPolicy`` (ClusterFirst: the cluster search path; Default: the
        node's) plus ``dnsConfig``; the nameservers are the machine's (there is no cluster DNS)."""
        try:
            host = Path("/etc/resolv.conf").read_text().splitlines()
        except OSError:
            host = []
        spec = self.pod["spec"]
        policy = spec.get("dnsPolicy") or "ClusterFirst"
        config = spec.get("dnsConfig") or {}
        servers = [line for line in host if line.startswith("nameserver")]
        searches: list[str] = []
        options: list[str] = []
        if policy in ("ClusterFirst", "ClusterFirstWithHostNet"):
            searches = [f"{self.namespace}.svc.{CLUSTER_DOMAIN}", f"svc.{CLUSTER_DOMAIN}", CLUSTER_DOMAIN]
            if self.kubelet.cluster_dns:
                servers, options = [f"nameserver {self.kubelet.cluster_dns}"], ["ndots:5"]
        elif policy == "Default":
            searches = [w for line in host if line.startswith("search") for w in line.split()[1:]]
        if policy == "None":
            servers = []
        servers += [f"nameserver {ip}" for ip in config.get("nameservers") or []]
        searches += list(config.get("searches") or [])
        options += [o.get("name", "") + (f":{o['value']}" if o.get("value") else "")
                    for o in config.get("options") or [] if o.get("name")]
        lines = [*([f"search {' '.join(searches)}"] if searches else []), *servers,
                 *([f"options {' '.join(options)}"] if options else [])]
        return "\n".join(lines) + "\n"

    def write_pod_files(self) -> None:
        """The kubelet-managed /etc/hosts, /etc/hostname and /etc/resolv.conf of the pod (and a
        passwd/group for images without /etc of their own)."""
        etc = self.runtime_dir / "etc"
        etc.mkdir(parents=True, exist_ok=True)
        files = {
            "hosts": self.hosts_file(),
            "hostname": self.hostname + "\n",
            "resolv.conf": self.resolv_conf(),
            "passwd": "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\n",
            "group": "root:x:0:\nnogroup:x:65534:\n",
        }
        for name, text in files.items():
            tmp = etc / f".{name}.tmp"
            tmp.write_text(text)
            os.chmod(tmp, 0o644)
            os.replace(tmp, etc / name)

    def refresh_hosts(self) -> None:
        """Services changed: rewrite /etc/hosts in place (the containers bind-mount this inode)."""
        path = self.runtime_dir / "etc" / "hosts"
        if not self.pod_ip or not path.exists():
            return
        text = self.hosts_file()
        with contextlib.suppress(OSError), open(path, "r+") as handle:
            if handle.read() != text:
                handle.seek(0)
                handle.write(text)
                handle.truncate()

    def pod_mounts(self, image: Image, container: Obj) -> list[Mount]:
        """What the kubelet mounts into a container: its /etc files, then its volumeMounts."""
        etc = self.runtime_dir / "etc"
        names = ["hosts", "hostname", "resolv.conf"]
        if image.base == "scratch":
            names += ["passwd", "group"]
        own = [Mount(str(etc / name), f"/etc/{name}") for name in names]
        return own + self.volumes.mounts(self.pod, container)

    async def set_up_volumes(self) -> bool:
        """Set up the pod's volumes before any container starts, retrying while one cannot be
        (FailedMount, the pod stays ContainerCreating); False when the pod stopped first."""
        failures = 0
        while not (self.terminating or self.kubelet.shutting_down):
            try:
                await self._request_tokens()
                self.volumes.set_up(
                    self.pod, self.kubelet.lookup, pod_ip=self.pod_ip, host_ip=self.kubelet.host_ip
                )
                return True
            except MountError as exc:
                self.kubelet.recorder.event(self.pod, WARNING, "FailedMount", str(exc))
            except OSError as exc:
                message = f"MountVolume.SetUp failed: {exc}"
                self.kubelet.recorder.event(self.pod, WARNING, "FailedMount", message)
            failures += 1
            await self.sleep(min(2.0 * 2 ** (failures - 1), 60.0))
        return False

    async def _request_tokens(self) -> None:
        """TokenRequests for the pod's projected serviceAccountToken sources, bound to the pod
        (``POST serviceaccounts/<name>/token``, as the kubelet's token manager does)."""
        account = self.pod["spec"].get("serviceAccountName") or "default"
        for volume, path, source in self.volumes.token_requests(self.pod):
            if (volume, path) in self.volumes.tokens:
                continue
            spec: Obj = {
                "expirationSeconds": int(source.get("expirationSeconds") or 3607),
                "boundObjectRef": {"apiVersion": "v1", "kind": "Pod", "name": self.name, "uid": self.uid},
            }
            if source.get("audience"):
                spec["audiences"] = [source["audience"]]
            body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec}
            try:
                answer = await self.kubelet.client.request(
                    "POST", SERVICEACCOUNTS.path(namespace=self.namespace, name=account, subresource="token"),
                    body=body,
                )
            except ApiError as exc:
                raise MountError(f'MountVolume.SetUp failed for volume "{volume}" : failed to fetch token: '
                                 f"{exc}") from exc
            self.volumes.tokens[(volume, path)] = str((answer.get("status") or {}).get("token") or "")

    def refresh_volumes(self) -> None:
        """A ConfigMap or Secret changed: the pod's mounted copies follow (the kubelet's sync)."""
        if self.pod_ip and self.volumes.root.exists():
            self.volumes.refresh(
                self.pod, self.kubelet.lookup, pod_ip=self.pod_ip, host_ip=self.kubelet.host_ip
            )

    def update(self, pod: Obj) -> None:
        """A newer version of the pod arrived from the informer; a change of the conditions
        others own (a readiness gate) changes the Ready the kubelet reports."""
        before = _foreign_conditions(self.pod)
        self.pod = pod
        if _foreign_conditions(pod) != before:
            self.changed()
        elif self._last_status is not None and _ready_of(pod.get("status")) != _ready_of(self._last_status):
            # The status manager's reconcile: someone else rewrote our Ready (the node lifecycle
            # controller marks the pods of a silent node not ready); report ours again.
            self._last_status = None
            self.changed()
        specs = {c.get("name"): c for c in pod["spec"].get("containers") or []}
        for runner in self.runners:
            if runner.name in specs:
                runner.spec_updated(specs[runner.name])
        if pod["metadata"].get("deletionTimestamp") and not self.terminating:
            self.terminating = True
            self._wake.set()

    def changed(self) -> None:
        """Our state changed: write the status soon."""
        self._dirty.set()

    def grace_period(self) -> int:
        """The grace period of this deletion (or the pod's default)."""
        meta, spec = self.pod["metadata"], self.pod["spec"]
        value = meta.get("deletionGracePeriodSeconds")
        if value is None:
            value = spec.get("terminationGracePeriodSeconds", 30)
        return int(value)

    async def sleep(self, seconds: float) -> None:
        """Sleep, but wake up at once when the pod starts terminating or the node shuts down."""
        if self.terminating or self.kubelet.shutting_down:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout=seconds)

    def start(self) -> asyncio.Task[None]:
        """Start the worker and its status writer; return the worker's task."""
        loop = asyncio.get_running_loop()
        task = self.task = loop.create_task(self.run(), name=f"pod:{self.key}")
        self._writer = loop.create_task(self._write_status_loop(), name=f"status:{self.key}")
        return task

    async def run(self) -> None:
        """Run the pod from sandbox creation to deletion."""
        try:
            self.pod_ip = self.kubelet.ipam.allocate()
            self.write_pod_files()
            self.start_time = self.start_time or now_iso()
            self.changed()
            if not await self.set_up_volumes():
                await self._wake.wait()
                await self._terminate([])
                return
            runners = [asyncio.get_running_loop().create_task(r.run()) for r in self.runners]
            self.runner_tasks = runners
            terminate = asyncio.ensure_future(self._wake.wait())
            while not self.terminating and not all(r.done() for r in runners):
                await asyncio.wait(
                    {terminate, *[r for r in runners if not r.done()]}, return_when=asyncio.FIRST_COMPLETED
                )
            if not self.terminating:
                self.changed()
                await self._wake.wait()
            await self._terminate(runners)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("pod worker %s failed", self.key)

    async def _terminate(self, runners: list[asyncio.Task]) -> None:
        """Stop every container (preStop, SIGTERM, grace, SIGKILL) and confirm the deletion."""
        for runner in self.runners:
            runner.stopping = True
            if runner.container is not None and runner.container.running and not self.gone:
                runner.event(NORMAL, "Killing", f"Stopping container {runner.name}")
        grace = self.grace_period() if not self.gone else min(self.grace_period(), 2)
        await asyncio.gather(*(r.stop_process(grace=grace) for r in self.runners))
        for task in runners:
            task.cancel()
        for runner in self.runners:
            if runner.container is not None and "running" in runner.state:
                runner._record_exit(await runner.container.wait())
            runner.ready = False
            runner.done = True  # the pod is terminal: Succeeded or Failed by the exit codes (`getPhase`)
        self.changed()
        if self.gone:
            return
        await self._flush_status()
        try:
            await self.kubelet.client.delete(
                PODS, self.name, namespace=self.namespace, grace_period=0, uid=self.uid
            )
        except ApiError as exc:
            if not (exc.not_found or exc.conflict):
                log.warning("could not delete pod %s: %s", self.key, exc)

    async def shutdown(self, *, grace_cap: float) -> None:
        """The node is going down: stop the containers like a deletion would (preStop, SIGTERM,
        the pod's grace period capped at ``grace_cap``, SIGKILL), start nothing new, and report
        them terminated and not Ready. The pod object stays; the next start of the sandbox runs
        its containers again (one restart, as after a node reboot)."""
        for runner in self.runners:
            runner.stopping = True
        if self.task is not None:
            self.task.cancel()
        if self._writer is not None:
            self._writer.cancel()
        self._wake.set()
        running = [r for r in self.runners if r.container is not None and r.container.running]
        if not self.gone:
            for runner in running:
                runner.event(NORMAL, "Killing", f"Stopping container {runner.name}")
        grace = min(float(self.grace_period()), grace_cap)
        await asyncio.gather(*(r.stop_process(grace=grace) for r in running), return_exceptions=True)
        if self.runner_tasks:
            _, pending = await asyncio.wait(self.runner_tasks, timeout=RUNNER_EXIT_WAIT)
            for task in pending:
                task.cancel()
        for runner in self.runners:
            if runner.container is not None and "running" in runner.state:
                runner._record_exit(await runner.container.wait())
        if running and not self.gone and not self.terminating:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(STATUS_FLUSH_WAIT):
                    await self._flush_status()

    def compute_status(self) -> Obj:
        """The pod status as the kubelet reports it (`sandbox.kubelet.status`)."""
        status = generate_pod_status(
            self.pod,
            [ContainerFacts(r.status(), r.done) for r in self.runners],
            pod_ip=self.pod_ip,
            host_ip=self.kubelet.host_ip,
            start_time=self.start_time,
            previous=list(self._conditions.values()),
            now=now_iso(),
        )
        self._conditions = {c["type"]: c for c in status["conditions"]}
        return status

    async def _write_status_loop(self) -> None:
        """Write the status whenever it changed, one write at a time (coalescing bursts)."""
        while True:
            await self._dirty.wait()
            await asyncio.sleep(0.02)
            await self._flush_status()

    async def _flush_status(self) -> None:
        self._dirty.clear()
        if self.gone:
            return
        status = self.compute_status()
        if status == self._last_status:
            return
        try:
            await self.kubelet.client.patch(
                PODS,
                self.name,
                {"status": status},
                namespace=self.namespace,
                subresource="status",
                content_type=STRATEGIC_MERGE_PATCH,
            )
            self._last_status = status
        except ApiError as exc:
            if exc.not_found:
                return
            log.info("status of %s not written (%s); retrying", self.key, exc)
            await asyncio.sleep(0.5)
            self._dirty.set()
        except Exception as exc:
            log.info("status of %s not written (%s); retrying", self.key, exc)
            await asyncio.sleep(0.5)
            self._dirty.set()


class Kubelet:
    """The node agent of one sandbox node."""

    def __init__(
        self,
        client: ApiClient,
        informers: InformerFactory,
        *,
        index: int,
        state_dir: Path,
        images: ImageStore,
    ) -> None:
        self.client = client
        self.index = index
        self.node_name = node_name(index)
        self.ipam = IpAllocator(state_dir, index)
        self.host_ip = node_ip(index, self.ipam.base)
        self.state_dir = Path(state_dir)
        self.images = images
        self.recorder = EventRecorder(client, component="kubelet", host=self.node_name)
        self.node = NodeAgent(
            client,
            name=self.node_name,
            index=index,
            host_ip=self.host_ip,
            network_octet=self.ipam.base,
            images=self.node_images,
        )
        self.pod_informer: Informer = informers.informer(PODS)
        self.service_informer: Informer = informers.informer(SERVICES)
        self.configmap_informer: Informer = informers.informer(CONFIGMAPS)
        self.secret_informer: Informer = informers.informer(SECRETS)
        self.configmap_informer.add_handler(self._on_config)
        self.secret_informer.add_handler(self._on_config)
        self._volume_refresh: asyncio.TimerHandle | None = None
        self.workers: dict[str, PodWorker] = {}
        self.pod_informer.add_handler(self._on_pod)
        self.service_informer.add_handler(self._on_service)
        self._hosts_refresh: asyncio.TimerHandle | None = None
        self.shutting_down = False
        self.cluster_dns = ""  # the cluster DNS server's address, when it runs (sandbox.kubelet.dns)
        self.metrics = MetricsCollector(node=self.node_name, state_dir=self.state_dir,
                                        containers=self.running_containers)

    def running_containers(self) -> list[ContainerRef]:
        """The containers running now, for the resource metrics (`sandbox.kubelet.metrics`)."""
        return [ContainerRef(w.namespace, w.name, w.uid, r.name, r.container.pid)
                for w in list(self.workers.values()) for r in w.runners
                if r.container is not None and r.container.running]

    def _on_pod(self, kind: str, old: Obj | None, new: Obj | None) -> None:
        if self.shutting_down:
            return
        pod = new or old
        assert pod is not None
        if pod.get("spec", {}).get("nodeName") != self.node_name:
            return
        uid = pod["metadata"]["uid"]
        worker = self.workers.get(uid)
        if kind == "DELETED":
            if worker is not None:
                worker.gone = True
                worker.update({**pod, "metadata": {**pod["metadata"], "deletionTimestamp": now_iso()}})
            return
        if worker is None:
            if pod["metadata"].get("deletionTimestamp"):
                asyncio.get_running_loop().create_task(self._confirm_deletion(pod))
                return
            if pod.get("status", {}).get("phase") in ("Succeeded", "Failed"):
                return
            worker = PodWorker(self, pod)
            self.workers[uid] = worker
            worker.start().add_done_callback(functools.partial(self._forget_task, uid))
        worker.update(pod)

    def _forget_task(self, uid: str, _task: asyncio.Task[None]) -> None:
        """A pod worker's task ended: forget the worker."""
        self._forget(uid)

    def lookup(self, kind: str, namespace: str, name: str) -> Obj | None:
        """A ConfigMap or Secret the pod refers to, from the informer caches."""
        informer = self.configmap_informer if kind == "ConfigMap" else self.secret_informer
        return informer.get(f"{namespace}/{name}")

    def _on_config(self, kind: str, old: Obj | None, new: Obj | None) -> None:
        """A ConfigMap or Secret changed: mounted volumes follow within a second (coalesced)."""
        if self._volume_refresh is None:
            self._volume_refresh = asyncio.get_running_loop().call_later(0.5, self._refresh_volumes)

    def _refresh_volumes(self) -> None:
        self._volume_refresh = None
        for worker in list(self.workers.values()):
            if (worker.pod.get("spec") or {}).get("volumes"):
                worker.refresh_volumes()

    def _on_service(self, kind: str, old: Obj | None, new: Obj | None) -> None:
        """A Service came, went or changed: every pod's /etc/hosts follows (coalesced)."""
        if self._hosts_refresh is None:
            self._hosts_refresh = asyncio.get_running_loop().call_later(0.2, self._refresh_hosts)

    def _refresh_hosts(self) -> None:
        self._hosts_refresh = None
        for worker in list(self.workers.values()):
            worker.refresh_hosts()

    def _forget(self, uid: str) -> None:
        """A pod worker finished: the pod is deleted, so drop its status writer and its logs."""
        worker = self.workers.pop(uid, None)
        if worker is None or not (worker.gone or worker.terminating):
            return
        if worker._writer is not None:
            worker._writer.cancel()
        pod_logs = statedir.container_log_dir(
            self.state_dir, namespace=worker.namespace, pod=worker.name, uid=worker.uid, container="_"
        ).parent
        shutil.rmtree(pod_logs, ignore_errors=True)
        shutil.rmtree(
            statedir.pod_dir(self.state_dir, namespace=worker.namespace, pod=worker.name, uid=worker.uid),
            ignore_errors=True,
        )

    async def _confirm_deletion(self, pod: Obj) -> None:
        """A terminating pod with no process here (e.g. after a restart): finish its deletion."""
        try:
            await self.client.delete(
                PODS,
                pod["metadata"]["name"],
                namespace=pod["metadata"]["namespace"],
                grace_period=0,
                uid=pod["metadata"]["uid"],
            )
        except ApiError as exc:
            if not (exc.not_found or exc.conflict):
                log.warning("could not delete pod %s: %s", key_of(pod), exc)

    def node_object(self) -> Obj:
        """The Node object this kubelet registers."""
        return self.node.node_object()

    def node_images(self) -> list[Obj]:
        """``status.images``: the images this node's store holds, named as container statuses
        name them (``docker.io/library/<repo>@<id>`` and the tag)."""
        entries = []
        for name, meta in self.images.list():
            holders = meta.get("nodes")
            if isinstance(holders, list) and holders and self.node_name not in holders:
                continue
            repo = name.split(":")[0]
            names = [f"docker.io/library/{repo}@{meta.get('id', '')}", f"docker.io/library/{name}"]
            size = meta.get("size")
            entries.append((names, size if isinstance(size, int) else 0))
        return node_images(entries)

    async def register(self) -> None:
        """Create or refresh this node's Node object (status included)."""
        await self.node.register()

    async def heartbeat(self) -> None:
        """Renew the node Lease and refresh the node status (see `NodeAgent`)."""
        await self.node.heartbeat()

    async def shutdown(self, *, grace_cap: float = NODE_SHUTDOWN_GRACE) -> None:
        """Graceful node shutdown: from now on nothing is started, pulled or restarted; every
        pod's containers are stopped in parallel, honouring their preStop hooks and grace
        periods (capped at ``grace_cap`` seconds); their final state is written and the Events
        are flushed. The pod objects stay: a restart resumes them."""
        self.shutting_down = True
        workers = list(self.workers.values())
        await asyncio.gather(*(w.shutdown(grace_cap=grace_cap) for w in workers), return_exceptions=True)
        for container in [r.container for w in workers for r in w.runners if r.container]:
            container.kill(signal.SIGKILL)
        with contextlib.suppress(TimeoutError):
            await self.recorder.flush(timeout=STATUS_FLUSH_WAIT)
