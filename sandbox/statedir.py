"""The sandbox's state directory: every file in it, named once.

A sandbox keeps all its state in one directory (``--state-dir``, default ``.sandbox``). Each
component reaches the files of another only through the names below, never by importing that
component's internals:

    token                  the admin bearer token (kept across restarts)          0600
    kubeconfig             kubectl's config for this sandbox                       0600
    ca.crt / ca.key        the cluster CA (ca.key 0600)                       see apiserver/certs.py
    server.crt / server.key  the API server's serving certificate (key 0600)
    store.sqlite3          the API server's object store (plus -wal / -shm)        0600
    bootstrapped           present once the sample manifests were created
    lock                   flock held by the running `sandbox up` (its pid inside)
    images.json            the node's loaded images (images.lock serialises writers)
    ipam/                  pod network: network.json (the 127.<B> octet), one counter per node
    logs/                  container logs, ``<ns>_<pod>_<uid>/<container>/<restart>.log`` (0600)
    pods/                  per pod: volumes that outlive a container restart (emptyDir …)
    proxy-connections.json the Service proxy's connection table (``conntrack -L``)
    metrics/               resource usage per node, ``<node>.json`` (kubelet/metrics.py)

The directory itself is 0700 and secret-bearing files are 0600, like ``~/.kube``: on a shared
machine no other user can read the token, the store or the logs (`secure`).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import BinaryIO

TOKEN = "token"
KUBECONFIG = "kubeconfig"
CA_CERT = "ca.crt"
CA_KEY = "ca.key"
SERVER_CERT = "server.crt"
SERVER_KEY = "server.key"
STORE = "store.sqlite3"
BOOTSTRAPPED = "bootstrapped"
LOCK = "lock"
IMAGES = "images.json"
IPAM = "ipam"
LOGS = "logs"
PODS = "pods"
PROXY_CONNECTIONS = "proxy-connections.json"
METRICS = "metrics"

DIR_MODE = 0o700
PRIVATE_MODE = 0o600
# Files written with owner-only permissions; `secure` also fixes them in a directory made
# before this rule existed.
PRIVATE_FILES = (TOKEN, KUBECONFIG, CA_KEY, SERVER_KEY, STORE, STORE + "-wal", STORE + "-shm")


def path(state_dir: Path, name: str) -> Path:
    """``state_dir / name`` — spelled through this module so the name has one definition."""
    return Path(state_dir) / name


def ca_cert(state_dir: Path) -> Path:
    """The cluster CA certificate components verify the API server with."""
    return path(state_dir, CA_CERT)


def token(state_dir: Path) -> Path:
    """The admin bearer token file."""
    return path(state_dir, TOKEN)


def kubeconfig(state_dir: Path) -> Path:
    """The kubeconfig `sandbox up` writes."""
    return path(state_dir, KUBECONFIG)


def store(state_dir: Path) -> Path:
    """The API server's SQLite store."""
    return path(state_dir, STORE)


def images(state_dir: Path) -> Path:
    """The node image store."""
    return path(state_dir, IMAGES)


def ipam(state_dir: Path) -> Path:
    """The pod network allocation directory."""
    return path(state_dir, IPAM)


def logs(state_dir: Path) -> Path:
    """The container log tree."""
    return path(state_dir, LOGS)


def pod_dir(state_dir: Path, *, namespace: str, pod: str, uid: str) -> Path:
    """Per-pod runtime files (volumes that survive a container restart); removed with the pod."""
    return path(state_dir, PODS) / f"{namespace}_{pod}_{uid}"


def proxy_connections(state_dir: Path) -> Path:
    """The Service proxy's connection table."""
    return path(state_dir, PROXY_CONNECTIONS)


def container_log_dir(state_dir: Path, *, namespace: str, pod: str, uid: str, container: str) -> Path:
    """The directory holding one container's log files (one per restart)."""
    return logs(state_dir) / f"{namespace}_{pod}_{uid}" / container


def container_log_path(
    state_dir: Path, *, namespace: str, pod: str, uid: str, container: str, restart_count: int
) -> Path:
    """The file the kubelet writes for one run of a container."""
    return (
        container_log_dir(state_dir, namespace=namespace, pod=pod, uid=uid, container=container)
        / f"{restart_count}.log"
    )


def secure(state_dir: Path) -> None:
    """Create the directory if needed and make it and its secret files owner-only."""
    state_dir = Path(state_dir)
    state_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(state_dir, DIR_MODE)
    for name in PRIVATE_FILES:
        with contextlib.suppress(FileNotFoundError):
            os.chmod(state_dir / name, PRIVATE_MODE)
    for directory in (logs(state_dir), path(state_dir, PODS)):
        directory.mkdir(mode=DIR_MODE, exist_ok=True)
        os.chmod(directory, DIR_MODE)


def private_open(file: Path, mode: str = "ab") -> BinaryIO:
    """Open (creating 0600 if absent) a file no other user may read: logs, tokens."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if "a" in mode else os.O_TRUNC)
    fd = os.open(file, flags, PRIVATE_MODE)
    os.fchmod(fd, PRIVATE_MODE)  # also when the file already existed with a wider mode
    return os.fdopen(fd, mode)  # type: ignore[return-value]
