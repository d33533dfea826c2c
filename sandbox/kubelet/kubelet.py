"""The kubelet of one sandbox node: runs the pods bound to it as real processes.

For every pod the scheduler bound to its node it runs a `PodWorker`:

1. "sandbox": a fresh loopback pod IP (``127.<B>.<node>.<n>``, B drawn per state directory;
   never reused while the state directory lives), PodReadyToStartContainers, ContainerCreating;
2. per container: image "pull" from the node's image store (Pulling/Pulled events, or
   ErrImagePull then ImagePullBackOff with back-off when it is not loaded), then start the
   process (Created/Started), with the image's env, the container's env (fieldRef resolved),
   the downward-API variables, HOSTNAME = pod name, BIND_ADDRESS = pod IP, PORT = containerPort;
3. probes: startupProbe gates the others; readiness decides the container's ``ready``;
   liveness failure kills and restarts (Killing); every failed probe is an ``Unhealthy`` event;
4. a process that exits (or is killed from outside) is noticed at once and restarted per
   restartPolicy with back-off (immediately, then 10 s doubling to 5 min: CrashLoopBackOff);
5. on graceful deletion: Killing, preStop (exec / httpGet / sleep), SIGTERM, up to the grace
   period, SIGKILL, then the pod object is deleted with gracePeriodSeconds=0.

Status is computed from this state and written with a merge patch on ``pods/<name>/status``,
coalesced: at most one write in flight per pod, and nothing written when nothing changed.
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
import json
import logging
import os
import platform
import random
import re
import shutil
import signal
import sys
import time
import uuid
from pathlib import Path

from sandbox.apiserver.logs import container_log_dir, container_log_path
from sandbox.client import LEASES, NODES, PODS, ApiClient, ApiError, Informer, InformerFactory, Obj, key_of
from sandbox.images import Image, ImageStore, normalize
from sandbox.kubelet.probes import http_probe, resolve_probe_port, run_probe
from sandbox.kubelet.runtime import Container, run_exec, start_container
from sandbox.meta import condition, now_iso
from sandbox.record import NORMAL, WARNING, EventRecorder

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parent.parent.parent
KUBELET_VERSION = "v1.37.1"
RUNTIME_VERSION = "sandbox://0.1.0"
PULL_BACKOFF = (5.0, 40.0)
CRASH_BACKOFF = (10.0, 300.0)
BACKOFF_RESET = 600.0
NODE_STATUS_PERIOD = 60.0
# Graceful node shutdown (the kubelet's shutdownGracePeriod): the longest a pod may take to stop
# when the sandbox stops; the sample backend needs 2 s of preStop plus 5 s of draining.
NODE_SHUTDOWN_GRACE = 10.0
RUNNER_EXIT_WAIT = 1.0
STATUS_FLUSH_WAIT = 2.0
LEASE_PERIOD = 10.0
_VAR = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")


def node_name(index: int) -> str:
    """Node names: sandbox-node-1, sandbox-node-2, ..."""
    return f"sandbox-node-{index}"


def node_ip(index: int, network_octet: int) -> str:
    """The InternalIP of node ``index``: ``127.<B>.0.<index>`` in this sandbox's network, so
    NodePorts bound on it never collide with another sandbox's on the same machine."""
    return f"127.{network_octet}.0.{index}"


class IpAllocator:
    """Hands out pod IPs ``127.<B>.<node + 50k>.<2..254>`` from a counter persisted per node.

    ``B`` is drawn once per state directory (128..254, never the Service range), so sandboxes
    running side by side on one machine use different pod networks; an address that has a
    socket bound on it anyway is skipped. An IP is not handed out twice while the state
    directory lives (until 1265 pods per node)."""

    def __init__(self, state_dir: Path, node_index: int) -> None:
        self.path = Path(state_dir) / "ipam" / f"{node_name(node_index)}.json"
        self.node_index = node_index
        self.base = pod_network_octet(Path(state_dir))
        try:
            self.counter = int(json.loads(self.path.read_text())["next"])
        except (OSError, ValueError, KeyError):
            self.counter = 0

    def _next(self) -> str:
        c = self.counter % (5 * 253)
        self.counter += 1
        return f"127.{self.base}.{self.node_index + 50 * (c // 253)}.{2 + c % 253}"

    def allocate(self) -> str:
        """The next pod IP with nothing bound on it."""
        busy = bound_addresses()
        ip = self._next()
        for _ in range(5 * 253):
            if ip not in busy:
                break
            ip = self._next()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"next": self.counter}))
        os.replace(tmp, self.path)
        return ip


def pod_network_octet(state_dir: Path) -> int:
    """The second octet of this sandbox's pod network, chosen at first boot and kept."""
    path = state_dir / "ipam" / "network.json"
    try:
        return int(json.loads(path.read_text())["octet"])
    except (OSError, ValueError, KeyError):
        pass
    taken = {int(ip.split(".")[1]) for ip in bound_addresses() if ip.startswith("127.")}
    choices = [o for o in range(128, 255) if o not in taken] or list(range(128, 255))
    octet = random.choice(choices)
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        with os.fdopen(fd, "w") as handle:
            handle.write(json.dumps({"octet": octet}))
        return octet
    return int(json.loads(path.read_text())["octet"])


def bound_addresses() -> set[str]:
    """Local IPv4 addresses with a listening TCP socket right now (from /proc/net/tcp; cached 1 s)."""
    now = time.monotonic()
    if _bound_cache and now - _bound_cache[0] < 1.0:
        return _bound_cache[1]
    out: set[str] = set()
    try:
        lines = Path("/proc/net/tcp").read_text().splitlines()[1:]
    except OSError:
        return out
    for line in lines:
        parts = line.split(None, 4)
        if len(parts) > 3 and parts[3] == "0A":
            hex_ip = parts[1][:8]
            out.add(".".join(str(int(hex_ip[i : i + 2], 16)) for i in (6, 4, 2, 0)))
    _bound_cache[:] = [now, out]
    return out


_bound_cache: list = []


def expand(value: str, env: dict[str, str]) -> str:
    """Kubernetes' ``$(VAR)`` expansion in env values, command and args."""
    return _VAR.sub(lambda m: env.get(m.group(1), m.group(0)), value)


def field_ref(pod: Obj, path: str, *, pod_ip: str, host_ip: str) -> str:
    """Resolve a downward-API fieldPath."""
    meta = pod["metadata"]
    simple = {
        "metadata.name": meta.get("name"),
        "metadata.namespace": meta.get("namespace"),
        "metadata.uid": meta.get("uid"),
        "spec.nodeName": pod["spec"].get("nodeName"),
        "spec.serviceAccountName": pod["spec"].get("serviceAccountName", "default"),
        "status.podIP": pod_ip,
        "status.podIPs": pod_ip,
        "status.hostIP": host_ip,
        "status.hostIPs": host_ip,
    }
    if path in simple:
        return str(simple[path] or "")
    m = re.fullmatch(r"metadata\.(labels|annotations)\['([^']+)'\]", path)
    if m:
        return str((meta.get(m.group(1)) or {}).get(m.group(2), ""))
    return ""


def backoff_delay(failures: int, base_max: tuple[float, float]) -> float:
    """``base * 2^(failures-1)`` capped: 0 before the first failure."""
    base, cap = base_max
    return 0.0 if failures <= 0 else min(base * 2 ** (failures - 1), cap)


def qos_class(pod: Obj) -> str:
    """Guaranteed / Burstable / BestEffort from the containers' requests and limits."""
    containers = pod["spec"].get("containers") or []
    res = [c.get("resources") or {} for c in containers]
    if not any(r.get("requests") or r.get("limits") for r in res):
        return "BestEffort"
    for r in res:
        limits = r.get("limits") or {}
        requests = r.get("requests") or limits
        if not all(k in limits and requests.get(k) == limits[k] for k in ("cpu", "memory")):
            return "Burstable"
    return "Guaranteed"


class ContainerRunner:
    """One container of a pod: pull, start, probe, restart."""

    def __init__(self, worker: PodWorker, spec: Obj) -> None:
        self.worker = worker
        self.spec = spec
        self.name: str = spec["name"]
        self.field_path = f"spec.containers{{{self.name}}}"
        self.state: Obj = {"waiting": {"reason": "ContainerCreating"}}
        self.last_state: Obj = {}
        self.restart_count = 0
        self.ready = False
        self.started = False
        self.image: Image | None = None
        self.container: Container | None = None
        self.env: dict[str, str] = {}
        self.stopping = False
        self.crashes = 0
        self.done = False

    @property
    def kubelet(self) -> Kubelet:
        return self.worker.kubelet

    def event(self, type_: str, reason: str, message: str) -> None:
        self.kubelet.recorder.event(self.worker.pod, type_, reason, message, field_path=self.field_path)

    def set_state(self, state: Obj) -> None:
        self.state = state
        self.worker.changed()

    def restore(self, previous: Obj) -> None:
        """Carry restartCount and the last run over from a status written before a sandbox restart."""
        self.restart_count = int(previous.get("restartCount") or 0)
        state = previous.get("state") or {}
        if "terminated" in state:
            self.last_state = {"terminated": state["terminated"]}
            self.restart_count += 1
        elif "running" in state:
            self.last_state = {
                "terminated": {
                    "exitCode": 255,
                    "reason": "Unknown",
                    "startedAt": state["running"].get("startedAt"),
                    "finishedAt": now_iso(),
                    **({"containerID": previous["containerID"]} if previous.get("containerID") else {}),
                }
            }
            self.restart_count += 1
        elif previous.get("lastState"):
            self.last_state = previous["lastState"]

    async def run(self) -> None:
        """Pull and run the container until the pod terminates (or restartPolicy says stop)."""
        policy = self.worker.pod["spec"].get("restartPolicy", "Always")
        while not self.stopping:
            self.image = await self.pull()
            if self.image is None:
                return
            code, liveness_failed = await self.run_once()
            if self.stopping:
                return
            if policy == "Never" or (policy == "OnFailure" and code == 0 and not liveness_failed):
                self.done = True
                self.worker.changed()
                return
            ran = time.time() - self._started_at
            self.crashes = 1 if ran > BACKOFF_RESET else self.crashes + 1
            delay = backoff_delay(self.crashes - 1, CRASH_BACKOFF)
            self.restart_count += 1
            if delay > 0:
                message = (
                    f"back-off {int(delay)}s restarting failed container={self.name} "
                    f"pod={self.worker.pod['metadata']['name']}_{self.worker.namespace}({self.worker.uid})"
                )
                self.set_state({"waiting": {"reason": "CrashLoopBackOff", "message": message}})
                self.event(
                    WARNING,
                    "BackOff",
                    f"Back-off restarting failed container {self.name} in pod "
                    f"{self.worker.pod['metadata']['name']}_{self.worker.namespace}({self.worker.uid})",
                )
                await self.worker.sleep(delay)

    async def pull(self) -> Image | None:
        """Find the image in the node's store; back off while it is missing."""
        ref = self.spec.get("image") or ""
        policy = self.spec.get("imagePullPolicy") or (
            "Always" if normalize_safe(ref).endswith(":latest") else "IfNotPresent"
        )
        failures = 0
        while not self.stopping:
            image = self.kubelet.images.lookup(ref)
            if image is not None and policy != "Always":
                self.event(NORMAL, "Pulled", f'Container image "{ref}" already present on machine')
                return image
            if image is None and policy == "Never":
                msg = f'Container image "{ref}" is not present with pull policy of Never'
                self.set_state({"waiting": {"reason": "ErrImageNeverPull", "message": msg}})
                self.event(WARNING, "ErrImageNeverPull", msg)
                await self.worker.sleep(backoff_delay(failures + 1, PULL_BACKOFF))
                failures += 1
                continue
            began = time.perf_counter()
            self.event(NORMAL, "Pulling", f'Pulling image "{ref}"')
            if image is not None:
                took = f"{(time.perf_counter() - began) * 1000:.0f}ms"
                self.event(
                    NORMAL,
                    "Pulled",
                    f'Successfully pulled image "{ref}" in {took} ({took} including '
                    f"waiting). Image size: {image.size} bytes.",
                )
                return image
            failures += 1
            reason = (
                f'failed to pull and unpack image "{ref}": not found in the sandbox node\'s image store; '
                f"load it with `python -m sandbox image load {ref}`"
            )
            self.event(WARNING, "Failed", f'Failed to pull image "{ref}": {reason}')
            self.event(WARNING, "Failed", "Error: ErrImagePull")
            self.set_state({"waiting": {"reason": "ErrImagePull", "message": reason}})
            await self.worker.sleep(1.0)
            if self.stopping:
                return None
            self.set_state(
                {
                    "waiting": {
                        "reason": "ImagePullBackOff",
                        "message": f'Back-off pulling image "{ref}": ErrImagePull: {reason}',
                    }
                }
            )
            self.event(NORMAL, "BackOff", f'Back-off pulling image "{ref}"')
            self.event(WARNING, "Failed", "Error: ImagePullBackOff")
            await self.worker.sleep(max(backoff_delay(failures, PULL_BACKOFF) - 1.0, 0.5))
        return None

    def build_env(self, image: Image) -> dict[str, str]:
        """The container's environment: image defaults, then the pod spec, then what the kubelet injects."""
        w = self.worker
        env = {
            "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
            "HOME": "/root",
            "LANG": os.environ.get("LANG", "C.UTF-8"),
            "PYTHONPATH": str(REPO),
            "PYTHONUNBUFFERED": "1",
            "PYTHONDONTWRITEBYTECODE": "1",
            **image.env,
        }
        env["HOSTNAME"] = w.name
        for item in self.spec.get("env") or []:
            name = item.get("name")
            if not name:
                continue
            if "value" in item:
                env[name] = expand(str(item.get("value") or ""), env)
            elif (item.get("valueFrom") or {}).get("fieldRef"):
                env[name] = field_ref(
                    w.pod,
                    item["valueFrom"]["fieldRef"].get("fieldPath", ""),
                    pod_ip=w.pod_ip,
                    host_ip=w.kubelet.host_ip,
                )
        ports = self.spec.get("ports") or []
        injected = {
            "POD_NAME": w.name,
            "POD_NAMESPACE": w.namespace,
            "POD_IP": w.pod_ip,
            "NODE_NAME": w.kubelet.node_name,
            "BIND_ADDRESS": w.pod_ip,
        }
        if ports:
            injected["PORT"] = str(ports[0]["containerPort"])
        for name, value in injected.items():
            env.setdefault(name, value)
        env["BIND_ADDRESS"] = w.pod_ip
        return env

    async def run_once(self) -> tuple[int, bool]:
        """Start the process, probe it, wait until it exits; return (exit code, killed by liveness)."""
        assert self.image is not None
        w = self.worker
        self.env = self.build_env(self.image)
        args = [expand(a, self.env) for a in self.spec.get("args") or []]
        command = [expand(a, self.env) for a in self.spec.get("command") or []]
        argv = (
            ([sys.executable if a in ("python", "python3") else a for a in command] + args)
            if command
            else self.image.command() + args
        )
        log_path = container_log_path(
            self.kubelet.state_dir,
            namespace=w.namespace,
            pod=w.name,
            uid=w.uid,
            container=self.name,
            restart_count=self.restart_count,
        )
        cwd = Path(self.spec.get("workingDir") or REPO)
        self._started_at = time.time()
        try:
            self.container = await start_container(
                argv, env=self.env, cwd=cwd if cwd.is_dir() else REPO, log_path=log_path
            )
        except OSError as exc:
            message = f"failed to create containerd task: exec: {argv[0]!r}: {exc.strerror or exc}"
            self.event(WARNING, "Failed", f"Error: {message}")
            self.set_state(
                {
                    "terminated": {
                        "exitCode": 128,
                        "reason": "StartError",
                        "message": message,
                        "startedAt": now_iso(),
                        "finishedAt": now_iso(),
                    }
                }
            )
            self.last_state = {"terminated": self.state["terminated"]}
            return 128, False
        if self.stopping:
            # The node began shutting down while the process was being started.
            return await self.container.stop(0), False
        self.event(NORMAL, "Created", f"Created container: {self.name}")
        self.event(NORMAL, "Started", f"Started container {self.name}")
        startup = self.spec.get("startupProbe")
        self.started = startup is None
        self.ready = False
        self.set_state({"running": {"startedAt": now_iso()}})
        self.worker.changed()
        liveness_failed = asyncio.Event()
        probes = [asyncio.get_running_loop().create_task(self._probe_loop(liveness_failed))]
        waiter = asyncio.ensure_future(self.container.wait())
        killer = asyncio.ensure_future(liveness_failed.wait())
        try:
            await asyncio.wait({waiter, killer}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in probes:
                task.cancel()
            killer.cancel()
        killed = liveness_failed.is_set() and not waiter.done()
        if killed and not self.stopping:
            self.event(NORMAL, "Killing", f"Container {self.name} failed liveness probe, will be restarted")
            await self.stop_process()
        code = await self.container.wait()
        if self.stopping:
            return code, False
        self._record_exit(code)
        return code, killed

    def _record_exit(self, code: int) -> None:
        """The process is gone: terminated state, and lastState for the next run."""
        assert self.container is not None
        reason = "Completed" if code == 0 else "Error"
        terminated = {
            "exitCode": code,
            "reason": reason,
            "startedAt": (self.state.get("running") or {}).get("startedAt", now_iso()),
            "finishedAt": now_iso(),
            "containerID": f"sandbox://{self.container.pid}",
        }
        if self.container.signal:
            terminated["signal"] = self.container.signal
        self.ready = False
        self.last_state = {"terminated": terminated}
        self.set_state({"terminated": terminated})

    async def _probe_loop(self, liveness_failed: asyncio.Event) -> None:
        """Startup probe until it succeeds, then readiness and liveness side by side."""
        startup = self.spec.get("startupProbe")
        if startup is not None:
            if not await self._probe("Startup", startup):
                liveness_failed.set()
                return
            self.started = True
            self.worker.changed()
        readiness, liveness = self.spec.get("readinessProbe"), self.spec.get("livenessProbe")
        tasks = []
        if readiness is not None:
            tasks.append(self._probe("Readiness", readiness))
        else:
            self.ready = True
            self.worker.changed()
        if liveness is not None:
            tasks.append(self._liveness(liveness, liveness_failed))
        if tasks:
            await asyncio.gather(*tasks)

    async def _liveness(self, probe: Obj, failed: asyncio.Event) -> None:
        if not await self._probe("Liveness", probe):
            failed.set()

    async def _probe(self, kind: str, probe: Obj) -> bool:
        """Run a probe on its schedule. Readiness runs forever and sets ``ready``; startup returns
        True on success; startup and liveness return False once failureThreshold is reached."""
        w = self.worker
        period = max(float(probe.get("periodSeconds") or 10), 0.1)
        success_needed = int(probe.get("successThreshold") or 1)
        failure_limit = int(probe.get("failureThreshold") or 3)
        await asyncio.sleep(float(probe.get("initialDelaySeconds") or 0))
        successes = failures = 0
        containers = w.pod["spec"].get("containers") or []
        while True:
            began = time.monotonic()
            ok, message = await run_probe(
                probe, pod_ip=w.pod_ip, containers=containers, env=self.env, cwd=REPO
            )
            if self.stopping or w.terminating:
                await asyncio.sleep(period)
                continue
            if ok:
                successes, failures = successes + 1, 0
                if successes >= success_needed:
                    if kind == "Startup":
                        return True
                    if kind == "Readiness" and not self.ready:
                        self.ready = True
                        w.changed()
            else:
                successes, failures = 0, failures + 1
                self.event(WARNING, "Unhealthy", f"{kind} probe failed: {message}")
                if failures >= failure_limit:
                    if kind != "Readiness":
                        return False
                    if self.ready:
                        self.ready = False
                        w.changed()
            await asyncio.sleep(max(period - (time.monotonic() - began), 0.05))

    async def stop_process(self, *, grace: float | None = None) -> None:
        """preStop hook, SIGTERM, wait for the grace period, SIGKILL."""
        if self.container is None or not self.container.running:
            return
        w = self.worker
        grace = float(w.grace_period() if grace is None else grace)
        deadline = time.monotonic() + grace
        pre_stop = (self.spec.get("lifecycle") or {}).get("preStop")
        if pre_stop and grace > 0:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(grace):
                    await self._pre_stop(pre_stop)
        await self.container.stop(max(deadline - time.monotonic(), 2.0 if grace > 0 else 0.0))

    async def _pre_stop(self, hook: Obj) -> None:
        """Run the preStop handler (exec, httpGet or sleep); a failure is a FailedPreStopHook event."""
        w = self.worker
        if "sleep" in hook:
            await asyncio.sleep(float((hook["sleep"] or {}).get("seconds") or 0))
            return
        if "exec" in hook:
            argv = list((hook["exec"] or {}).get("command") or [])
            if argv and argv[0] == "sleep" and len(argv) == 2:
                with contextlib.suppress(ValueError):
                    await asyncio.sleep(float(argv[1]))
                    return
            try:
                code, output = await run_exec(argv, env=self.env, cwd=REPO, timeout=w.grace_period() or 1)
            except (OSError, TimeoutError) as exc:
                code, output = 1, str(exc)
            if code != 0:
                self.event(
                    WARNING,
                    "FailedPreStopHook",
                    f"PreStopHook failed: command {argv!r} exited with {code}: {output.strip()[:200]}",
                )
            return
        if "httpGet" in hook:
            spec = hook["httpGet"]
            port = resolve_probe_port(spec.get("port"), w.pod["spec"].get("containers") or [])
            if port is None:
                return
            ok, message = await http_probe(
                host=spec.get("host") or w.pod_ip,
                port=port,
                path=spec.get("path") or "/",
                scheme=spec.get("scheme") or "HTTP",
                headers=spec.get("httpHeaders") or [],
                timeout=w.grace_period() or 1,
            )
            if not ok:
                self.event(WARNING, "FailedPreStopHook", f"PreStopHook failed: {message}")

    def status(self) -> Obj:
        """This container's entry in ``status.containerStatuses``."""
        ref = self.spec.get("image") or ""
        out: Obj = {
            "name": self.name,
            "state": self.state,
            "lastState": self.last_state,
            "ready": bool(self.ready and "running" in self.state and self.started),
            "restartCount": self.restart_count,
            "image": normalize_safe(ref),
            "imageID": "",
            "started": bool(self.started and "running" in self.state),
        }
        if self.image is not None:
            out["imageID"] = f"docker.io/library/{self.image.name.split(':')[0]}@{self.image.id}"
        if self.container is not None and ("running" in self.state or "terminated" in self.state):
            out["containerID"] = f"sandbox://{self.container.pid}"
        return out


def normalize_safe(ref: str) -> str:
    """``normalize`` that leaves an invalid reference as it is."""
    try:
        return normalize(ref)
    except ValueError:
        return ref


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
            c["type"]: c for c in (pod.get("status") or {}).get("conditions") or []
        }
        self.task: asyncio.Task | None = None
        self.runner_tasks: list[asyncio.Task] = []
        self._writer: asyncio.Task | None = None

    def update(self, pod: Obj) -> None:
        """A newer version of the pod arrived from the informer."""
        self.pod = pod
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

    def start(self) -> None:
        """Start the worker and its status writer."""
        loop = asyncio.get_running_loop()
        self.task = loop.create_task(self.run(), name=f"pod:{self.key}")
        self._writer = loop.create_task(self._write_status_loop(), name=f"status:{self.key}")

    async def run(self) -> None:
        """Run the pod from sandbox creation to deletion."""
        try:
            self.pod_ip = self.kubelet.ipam.allocate()
            self.start_time = self.start_time or now_iso()
            self.changed()
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
        """The pod status as the kubelet reports it."""
        statuses = [r.status() for r in self.runners]
        all_ready = bool(statuses) and all(s["ready"] for s in statuses)
        ever_ran = all(
            "running" in s["state"] or "terminated" in s["state"] or s["lastState"] for s in statuses
        )
        policy = self.pod["spec"].get("restartPolicy", "Always")
        if all(r.done for r in self.runners) and self.runners:
            codes = [(s["state"].get("terminated") or {}).get("exitCode", 1) for s in statuses]
            phase = "Succeeded" if all(c == 0 for c in codes) else "Failed"
        elif not self.pod_ip or not ever_ran:
            phase = "Pending"
        else:
            phase = "Running"
        if policy != "Always" and phase == "Running" and all(r.done for r in self.runners):
            phase = "Failed"
        stamp = now_iso()

        def cond(type_: str, ok: bool, reason: str | None = None) -> Obj:
            value = "True" if ok else "False"
            prev = self._conditions.get(type_)
            if prev and prev.get("status") == value and prev.get("reason") == reason:
                return prev
            new = {"type": type_, "status": value, "lastProbeTime": None, "lastTransitionTime": stamp}
            if reason:
                new["reason"] = reason
            self._conditions[type_] = new
            return new

        not_ready_reason = (
            None
            if all_ready
            else ("PodCompleted" if phase in ("Succeeded", "Failed") else "ContainersNotReady")
        )
        scheduled = condition(self.pod, "PodScheduled") or {
            "type": "PodScheduled",
            "status": "True",
            "lastProbeTime": None,
            "lastTransitionTime": stamp,
        }
        conditions = [
            cond("PodReadyToStartContainers", bool(self.pod_ip)),
            cond("Initialized", True),
            cond("Ready", all_ready, not_ready_reason),
            cond("ContainersReady", all_ready, not_ready_reason),
            scheduled,
        ]
        status: Obj = {
            "phase": phase,
            "conditions": conditions,
            "hostIP": self.kubelet.host_ip,
            "hostIPs": [{"ip": self.kubelet.host_ip}],
            "startTime": self.start_time,
            "containerStatuses": statuses,
            "qosClass": qos_class(self.pod),
        }
        if self.pod_ip:
            status["podIP"] = self.pod_ip
            status["podIPs"] = [{"ip": self.pod_ip}]
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
                PODS, self.name, {"status": status}, namespace=self.namespace, subresource="status"
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
        self.pod_informer: Informer = informers.informer(PODS)
        self.workers: dict[str, PodWorker] = {}
        self.boot_id = str(uuid.uuid4())
        self.pod_informer.add_handler(self._on_pod)
        self._leases = True
        self.shutting_down = False

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
            worker.start()
            worker.task.add_done_callback(lambda _t, uid=uid: self._forget(uid))
        worker.update(pod)

    def _forget(self, uid: str) -> None:
        """A pod worker finished: the pod is deleted, so drop its status writer and its logs."""
        worker = self.workers.pop(uid, None)
        if worker is None or not (worker.gone or worker.terminating):
            return
        if worker._writer is not None:
            worker._writer.cancel()
        pod_dir = container_log_dir(
            self.state_dir, namespace=worker.namespace, pod=worker.name, uid=worker.uid, container="_"
        ).parent
        shutil.rmtree(pod_dir, ignore_errors=True)

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
        uname = platform.uname()
        cpu = str(os.cpu_count() or 1)
        try:
            memory = f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') // 1024}Ki"
        except (ValueError, OSError):
            memory = "4Gi"
        capacity = {"cpu": cpu, "memory": memory, "pods": "110", "ephemeral-storage": "20Gi"}
        stamp = now_iso()
        conditions = [
            {
                "type": t,
                "status": "False",
                "reason": r,
                "message": m,
                "lastHeartbeatTime": stamp,
                "lastTransitionTime": stamp,
            }
            for t, r, m in (
                ("MemoryPressure", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
                ("DiskPressure", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
                ("PIDPressure", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
            )
        ]
        conditions.append(
            {
                "type": "Ready",
                "status": "True",
                "reason": "KubeletReady",
                "message": "kubelet is posting ready status",
                "lastHeartbeatTime": stamp,
                "lastTransitionTime": stamp,
            }
        )
        return {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": self.node_name,
                "labels": {
                    "kubernetes.io/hostname": self.node_name,
                    "kubernetes.io/os": "linux",
                    "kubernetes.io/arch": "amd64",
                    "beta.kubernetes.io/os": "linux",
                    "beta.kubernetes.io/arch": "amd64",
                    "sandbox.lb-demo.dev/node-index": str(self.index),
                },
                "annotations": {"node.alpha.kubernetes.io/ttl": "0"},
            },
            "spec": {
                "podCIDR": f"127.{self.ipam.base}.{self.index}.0/24",
                "podCIDRs": [f"127.{self.ipam.base}.{self.index}.0/24"],
            },
            "status": {
                "capacity": capacity,
                "allocatable": dict(capacity),
                "conditions": conditions,
                "addresses": [
                    {"type": "InternalIP", "address": self.host_ip},
                    {"type": "Hostname", "address": self.node_name},
                ],
                "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
                "nodeInfo": {
                    "machineID": uuid.uuid5(uuid.NAMESPACE_DNS, self.node_name).hex,
                    "systemUUID": str(uuid.uuid5(uuid.NAMESPACE_URL, self.node_name)),
                    "bootID": self.boot_id,
                    "kernelVersion": uname.release,
                    "osImage": f"lb-demo sandbox node ({platform.system()} {uname.machine})",
                    "containerRuntimeVersion": RUNTIME_VERSION,
                    "kubeletVersion": KUBELET_VERSION,
                    "kubeProxyVersion": KUBELET_VERSION,
                    "operatingSystem": "linux",
                    "architecture": "amd64",
                },
            },
        }

    async def register(self) -> None:
        """Create or refresh this node's Node object (status included)."""
        node = self.node_object()
        try:
            await self.client.create(NODES, node)
        except ApiError as exc:
            if not exc.conflict:
                raise
            await self.client.patch(
                NODES, self.node_name, {"metadata": {"labels": node["metadata"]["labels"]}}
            )
        await self.client.patch(NODES, self.node_name, {"status": node["status"]}, subresource="status")

    async def heartbeat(self) -> None:
        """Renew the node Lease every 10 s and refresh the Ready condition every minute."""
        last_status = time.monotonic()
        while True:
            await asyncio.sleep(LEASE_PERIOD)
            with contextlib.suppress(ApiError, OSError, TimeoutError):
                await self._renew_lease()
            if time.monotonic() - last_status >= NODE_STATUS_PERIOD:
                last_status = time.monotonic()
                with contextlib.suppress(ApiError, OSError, TimeoutError):
                    await self.client.patch(
                        NODES, self.node_name, {"status": self.node_object()["status"]}, subresource="status"
                    )

    async def _renew_lease(self) -> None:
        if not self._leases:
            return
        spec = {
            "holderIdentity": self.node_name,
            "leaseDurationSeconds": 40,
            "renewTime": time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime()),
        }
        try:
            await self.client.patch(LEASES, self.node_name, {"spec": spec}, namespace="kube-node-lease")
        except ApiError as exc:
            if not exc.not_found:
                raise
            try:
                await self.client.create(
                    LEASES,
                    {
                        "apiVersion": "coordination.k8s.io/v1",
                        "kind": "Lease",
                        "metadata": {"name": self.node_name, "namespace": "kube-node-lease"},
                        "spec": spec,
                    },
                )
            except ApiError as exc2:
                if exc2.not_found:
                    self._leases = False

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
