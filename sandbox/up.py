"""`python -m sandbox up`: run the sandbox cluster in the foreground.

Order of start-up:
1. open the state directory (default `.sandbox`): SQLite store, a bearer token kept across
   restarts (`DIR/token`);
2. start the API server on 127.0.0.1:PORT;
3. on the first boot only (until `DIR/bootstrapped` exists), create the sample manifests
   `k8s/backend.yaml`, `k8s/frontend.yaml` and `k8s/ingress.yaml` through the same registry
   path as an API create (with the `last-applied-configuration` annotation `kubectl apply`
   would add);
4. write `DIR/kubeconfig` (cluster/context `lb-demo-sandbox`, user `lb-demo-admin`, server
   `https://127.0.0.1:PORT` with the cluster CA: kubectl sends tokens only over TLS; the CA
   is also `DIR/ca.crt`, see `apiserver/certs.py`);
5. start the cluster components — THE one place they start: `start_components()` from
   `sandbox/cluster.py` when that module exists, called as
   `await start_components(api_url=..., token=..., state_dir=..., nodes=..., proxy_mode=...)` (api_url is
   https; verify with `state_dir / "ca.crt"`, or read `DIR/kubeconfig`); it may return
   an async callable that stops them, which is awaited on shutdown before the API server stops.
SIGTERM or SIGINT stops everything cleanly. The event loop is uvloop (measurably lower watch
fan-out latency than the default loop; see bench/apiserver.py).
"""

from __future__ import annotations

import asyncio
import base64
import fcntl
import importlib
import importlib.util
import json
import logging
import os
import secrets
import signal
from collections.abc import Awaitable, Callable
from pathlib import Path

import uvloop
import yaml

from . import statedir
from .apiserver.certs import ensure_certificates
from .apiserver.errors import ApiError
from .apiserver.resources import by_kind
from .apiserver.server import ApiServer
from .kubelet.simulated import SimDelays

log = logging.getLogger("sandbox")

REPO = Path(__file__).resolve().parent.parent
SAMPLE_MANIFESTS = tuple(REPO / "k8s" / name for name in ("backend.yaml", "frontend.yaml", "ingress.yaml"))
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
CLUSTER_NAME = "lb-demo-sandbox"
USER_NAME = "lb-demo-admin"


def load_token(state_dir: Path) -> str:
    """The cluster's bearer token: created once, kept across restarts (mode 0600)."""
    path = statedir.token(state_dir)
    if path.exists():
        token = path.read_text().strip()
        if token:
            return token
    token = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(token + "\n")
    return token


def write_kubeconfig(state_dir: Path, *, server: str, token: str, ca_file: Path) -> Path:
    """Write `DIR/kubeconfig` atomically (readers never see a half-written file)."""
    ca_data = base64.b64encode(ca_file.read_bytes()).decode()
    config = {
        "apiVersion": "v1", "kind": "Config", "preferences": {},
        "clusters": [{"name": CLUSTER_NAME,
                      "cluster": {"server": server, "certificate-authority-data": ca_data}}],
        "users": [{"name": USER_NAME, "user": {"token": token}}],
        "contexts": [{"name": CLUSTER_NAME,
                      "context": {"cluster": CLUSTER_NAME, "user": USER_NAME, "namespace": "default"}}],
        "current-context": CLUSTER_NAME,
    }
    path = statedir.kubeconfig(state_dir)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        yaml.safe_dump(config, handle, sort_keys=False)
    os.replace(tmp, path)
    return path


def last_applied(doc: dict, *, namespace: str) -> str:
    """The annotation value `kubectl apply` stores: the manifest (with its namespace) as compact,
    key-sorted JSON."""
    manifest = json.loads(json.dumps(doc))
    manifest.setdefault("metadata", {}).setdefault("annotations", {})
    if namespace:
        manifest["metadata"]["namespace"] = namespace
    return json.dumps(manifest, sort_keys=True, separators=(",", ":")) + "\n"


async def apply_samples(server: ApiServer, manifests: tuple[Path, ...] = SAMPLE_MANIFESTS) -> None:
    """Create every object of the sample manifests (first boot only)."""
    for path in manifests:
        if not path.exists():
            log.warning("sample manifest %s is missing; skipped", path)
            continue
        for doc in yaml.safe_load_all(path.read_text()):
            if not doc:
                continue
            res = by_kind(doc.get("apiVersion", ""), doc.get("kind", ""))
            if res is None:
                log.warning("%s: %s/%s is not served by the sandbox; skipped", path.name,
                            doc.get("apiVersion"), doc.get("kind"))
                continue
            body = json.loads(json.dumps(doc))
            namespace = body.setdefault("metadata", {}).get("namespace", "default") if res.namespaced else ""
            annotations = body["metadata"].setdefault("annotations", {})
            annotations[LAST_APPLIED] = last_applied(doc, namespace=namespace)
            try:
                await server.registry.create(res, namespace, body)
            except ApiError as exc:
                if exc.reason != "AlreadyExists":
                    raise
                continue
            log.info("created %s %s from %s", res.kind, body["metadata"]["name"], path.name)


ComponentsStop = Callable[[], Awaitable[None]] | None


async def start_cluster_components(*, api_url: str, token: str, state_dir: Path, nodes: int,
                                   proxy_mode: str, ingress_port: int = 8080, simulated_nodes: int = 0,
                                   simulated_delays: SimDelays | None = None) -> ComponentsStop:
    """Start controllers, scheduler, kubelets and proxy from `sandbox.cluster`, if it exists."""
    if importlib.util.find_spec("sandbox.cluster") is None:
        log.info("sandbox.cluster is not present: running the API server only")
        return None
    cluster = importlib.import_module("sandbox.cluster")
    return await cluster.start_components(api_url=api_url, token=token, state_dir=state_dir, nodes=nodes,
                                          proxy_mode=proxy_mode, ingress_port=ingress_port,
                                          simulated_nodes=simulated_nodes, simulated_delays=simulated_delays)


async def run(*, state_dir: Path, api_port: int, nodes: int, stop: asyncio.Event,
              proxy_mode: str = "random", ingress_port: int = 8080, simulated_nodes: int = 0,
              simulated_delays: SimDelays | None = None) -> None:
    """Run the whole sandbox until `stop` is set."""
    statedir.secure(state_dir)
    bootstrapped = statedir.path(state_dir, statedir.BOOTSTRAPPED)
    token = load_token(state_dir)
    server = ApiServer(state_dir=state_dir, token=token)
    await server.start(host="127.0.0.1", port=api_port)
    api_url = f"https://127.0.0.1:{api_port}"
    stop_components: ComponentsStop = None
    try:
        if not bootstrapped.exists():
            await apply_samples(server)
            bootstrapped.touch()
        kubeconfig = write_kubeconfig(state_dir, server=api_url, token=token,
                                      ca_file=ensure_certificates(state_dir)[0])
        log.info("API server listening on %s; KUBECONFIG=%s", api_url, kubeconfig)
        stop_components = await start_cluster_components(api_url=api_url, token=token, state_dir=state_dir,
                                                         nodes=nodes, proxy_mode=proxy_mode,
                                                         ingress_port=ingress_port,
                                                         simulated_nodes=simulated_nodes,
                                                         simulated_delays=simulated_delays)
        await stop.wait()
    finally:
        log.info("stopping the sandbox")
        if stop_components is not None:
            await stop_components()
        await server.stop()


class StateDirInUse(RuntimeError):
    """Another sandbox already runs on this state directory."""


def lock_state_dir(state_dir: Path) -> int:
    """Hold `DIR/lock` for the life of the process so that two sandboxes never share one store.

    The lock is an flock, released by the kernel when the process dies however it dies; the
    file records the holder's pid for the error message."""
    statedir.secure(state_dir)
    fd = os.open(statedir.path(state_dir, statedir.LOCK), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.read(fd, 32).decode(errors="replace").strip() or "unknown"
        os.close(fd)
        raise StateDirInUse(f"the state directory {state_dir} is in use by another sandbox (pid {holder}); "
                            "stop it first or choose another --state-dir") from None
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    return fd


def up(*, state_dir: Path, api_port: int, nodes: int, proxy_mode: str = "random",
       ingress_port: int = 8080, simulated_nodes: int = 0, simulated_delays: SimDelays | None = None) -> int:
    """Foreground entry point of `python -m sandbox up`; returns the exit code."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # Everything the sandbox and its components create is owner-only (store, logs, keys);
    # containers get the usual 022 back (see sandbox/kubelet/runtime.py).
    os.umask(0o077)
    from .kubelet.isolation import unavailable

    problem = unavailable()
    if problem:
        log.error("cannot start the sandbox: containers could not be isolated: %s", problem)
        return 1
    try:
        lock_fd = lock_state_dir(state_dir.resolve())
    except StateDirInUse as exc:
        log.error("cannot start the sandbox: %s", exc)
        return 1

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        await run(state_dir=state_dir.resolve(), api_port=api_port, nodes=nodes, stop=stop,
                  proxy_mode=proxy_mode, ingress_port=ingress_port, simulated_nodes=simulated_nodes,
                  simulated_delays=simulated_delays)

    try:
        uvloop.run(main())
    except OSError as exc:
        log.error("cannot start the sandbox: %s", exc)
        return 1
    finally:
        os.close(lock_fd)
    return 0
