"""One container of a pod: pull, start, probe, restart, stop (pkg/kubelet/kuberuntime's part).

A `ContainerRunner` pulls the image (`sandbox.kubelet.images`), starts the process through the
runtime (`sandbox.kubelet.runtime`) with the environment of `sandbox.kubelet.envvars`, runs
the probes (startupProbe gates the others; readiness decides ``ready``; a liveness failure
kills and restarts, ``Killing``; every failed probe is an ``Unhealthy`` event), notices an
exit at once and restarts per restartPolicy with back-off (immediately, then 10 s doubling to
5 min: CrashLoopBackOff), and stops the process on deletion (preStop exec / httpGet / sleep,
SIGTERM, the grace period, SIGKILL). Its ``status()`` is its ``containerStatuses`` entry.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sandbox import statedir
from sandbox.images import Image
from sandbox.kubelet.envvars import EnvError, container_env, expand
from sandbox.kubelet.images import backoff_delay, ensure_image, normalize_safe
from sandbox.kubelet.isolation import (
    ConfigError,
    Identity,
    command_missing,
    home_of,
    host_is_root,
    resolve_identity,
    sandbox_argv,
)
from sandbox.kubelet.probes import http_probe, resolve_probe_port, run_probe
from sandbox.kubelet.runtime import Container, StartError, start_container
from sandbox.meta import now_iso
from sandbox.record import NORMAL, WARNING

if TYPE_CHECKING:
    from sandbox.kubelet.kubelet import Kubelet, PodWorker

Obj = dict[str, Any]

REPO = Path(__file__).resolve().parent.parent.parent
CRASH_BACKOFF = (10.0, 300.0)
# A missing ConfigMap/Secret is retried on the pod worker's back-off (the kubelet's sync loop).
CONFIG_BACKOFF = (2.0, 60.0)
BACKOFF_RESET = 600.0


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
        self.identity: Identity | None = None
        self.definition_changed = False
        self.workdir = "/"
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
            if self.definition_changed:
                # The pod's image changed (kubectl set image): restart at once with the new one.
                self.definition_changed = False
                self.restart_count += 1
                continue
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

    def spec_updated(self, spec: Obj) -> None:
        """A new version of this container's spec: a changed image restarts the container
        (``Container x definition changed, will be restarted``), as the kubelet does."""
        if spec.get("image") == self.spec.get("image"):
            return
        self.spec = spec
        if self.container is not None and self.container.running and not self.stopping:
            self.definition_changed = True
            self.event(NORMAL, "Killing", f"Container {self.name} definition changed, will be restarted")
            asyncio.get_running_loop().create_task(self.stop_process())

    def current_spec(self) -> Obj:
        """This container's spec in the newest version of the pod (a pod's image may change)."""
        for spec in self.worker.pod["spec"].get("containers") or []:
            if spec.get("name") == self.name:
                self.spec = spec
        return self.spec

    async def pull(self) -> Image | None:
        """Make sure the image is on the node (the image manager's EnsureImageExists)."""
        return await ensure_image(self)

    def build_env(self, image: Image) -> dict[str, str]:
        """The container's environment (see `sandbox.kubelet.envvars`)."""
        w = self.worker
        return container_env(
            w.pod, self.spec, image_env=image.env, pod_ip=w.pod_ip, host_ip=w.kubelet.host_ip,
            node=w.kubelet.node_name, services=list(w.kubelet.service_informer.items()),
            lookup=w.kubelet.lookup,
        )

    def container_command(self, image: Image) -> list[str]:
        """Kubernetes' rule: ``command`` replaces the image's ENTRYPOINT (and drops its CMD),
        ``args`` replaces CMD; ``$(VAR)`` references are expanded."""
        command = [expand(a, self.env) for a in self.spec.get("command") or []]
        args = [expand(a, self.env) for a in self.spec.get("args") or []]
        if command:
            return command + args
        return list(image.entrypoint) + (args if "args" in self.spec else list(image.cmd))

    def _start_failed(self, message: str) -> tuple[int, bool]:
        """The runtime could not start the process: StartError, as containerd reports it."""
        self.event(WARNING, "Failed", f"Error: {message}")
        stamp = now_iso()
        self.set_state({"terminated": {"exitCode": 128, "reason": "StartError", "message": message,
                                       "startedAt": stamp, "finishedAt": stamp}})
        self.last_state = {"terminated": self.state["terminated"]}
        return 128, False

    def _config_error(self, message: str) -> None:
        """CreateContainerConfigError: the container cannot be configured (retried with back-off)."""
        self.event(WARNING, "Failed", f"Error: {message}")
        self.set_state({"waiting": {"reason": "CreateContainerConfigError", "message": message}})

    async def run_once(self) -> tuple[int, bool]:
        """Start the container, probe it, wait until it exits; return (exit code, killed by liveness)."""
        assert self.image is not None
        w = self.worker
        image = self.image
        failures = 0
        while True:
            try:
                identity = resolve_identity(w.pod, self.spec, image)
                self.env = self.build_env(image)
                break
            except (ConfigError, EnvError) as exc:
                self._config_error(str(exc))
                failures += 1
                await w.sleep(backoff_delay(failures, CONFIG_BACKOFF))
                if self.stopping:
                    return 0, False
                self.current_spec()
        self.identity = identity
        self.env["HOME"] = image.env.get("HOME") or home_of(identity)
        for item in self.spec.get("env") or []:
            if item.get("name") == "HOME" and "value" in item:
                self.env["HOME"] = expand(str(item.get("value") or ""), self.env)
        argv = self.container_command(image)
        workdir = self.spec.get("workingDir") or image.working_dir or "/"
        self.workdir = workdir
        log_path = statedir.container_log_path(
            self.kubelet.state_dir,
            namespace=w.namespace,
            pod=w.name,
            uid=w.uid,
            container=self.name,
            restart_count=self.restart_count,
        )
        self._started_at = time.time()
        if not argv:
            return self._start_failed("failed to create containerd task: failed to create shim task: OCI "
                                      "runtime create failed: no command specified: unknown")
        mounts = w.pod_mounts(image, self.spec)
        missing = command_missing(argv[0], image, self.env.get("PATH", ""), mounts)
        if missing:
            return self._start_failed(
                "failed to create containerd task: failed to create shim task: OCI runtime create failed: "
                "runc create failed: unable to start container process: error during container init: "
                f"exec: {missing}: unknown")
        self._check_privileged_ports(identity)

        def bwrap(info_fd: int) -> list[str]:
            return sandbox_argv(image=image, hostname=w.hostname, identity=identity, workdir=workdir,
                                mounts=mounts, info_fd=info_fd, command=argv)

        try:
            self.container = await start_container(bwrap, env=self.env, log_path=log_path, identity=identity,
                                                   workdir=workdir)
        except (OSError, StartError) as exc:
            detail = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            return self._start_failed(f"failed to create containerd task: {detail}")
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
        tasks: list[Coroutine[Any, Any, object]] = []
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
            ok, message = await run_probe(probe, pod_ip=w.pod_ip, containers=containers, exec_in=self.exec_in)
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

    async def exec_in(self, command: list[str], timeout: float) -> tuple[int, str]:
        """Run a command inside the running container with its environment."""
        if self.container is None or not self.container.running:
            return 1, "container is not running"
        return await self.container.exec(command, env=self.env, timeout=timeout)

    def _check_privileged_ports(self, identity: Identity) -> None:
        """Ports below 1024 need CAP_NET_BIND_SERVICE on the host's network: only a sandbox
        running as root can grant it. Say so once instead of letting the bind fail silently."""
        if host_is_root():
            return
        declared = [int(p.get("containerPort") or 0) for p in self.spec.get("ports") or []]
        exposed = list(self.image.exposed) if self.image and not declared else []
        low = [port for port in declared + exposed if 0 < port < 1024]
        if low:
            self.event(WARNING, "PrivilegedPort",
                       f"port {low[0]} is below 1024: pods share this machine's network and the sandbox runs "
                       "as an ordinary user, so the container cannot bind it. Use a port of 1024 or more, or "
                       "run the sandbox as root")

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
                code, output = await self.exec_in(argv, float(w.grace_period() or 1))
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
