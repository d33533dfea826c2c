"""Container logs for `pods/log`, read from the files the kubelet writes.

File convention (the kubelet's own layout, shared with `sandbox/kubelet`):

    STATE_DIR/logs/<namespace>_<pod>_<pod-uid>/<container>/<restartCount>.log

The kubelet appends the container's stdout and stderr, as plain text, to the file of the
current restart; a restart starts the next number. `kubectl logs` reads the highest number,
`--previous` the one before it. The pod uid in the directory keeps a recreated pod of the
same name from showing its predecessor's output. `timestamps` and `sinceSeconds` are not
supported (the files carry no per-line times); `tailLines` and `limitBytes` are.
"""

from __future__ import annotations

import os
from pathlib import Path

from sandbox.statedir import container_log_dir, container_log_path  # noqa: F401 - the layout's one definition

from . import errors


def _runs(directory: Path) -> list[Path]:
    """Log files of a container, oldest run first."""
    try:
        names = os.listdir(directory)
    except OSError:
        return []
    runs = [(int(n[:-4]), n) for n in names if n.endswith(".log") and n[:-4].isdigit()]
    return [directory / n for _, n in sorted(runs)]


def pick_container(pod: dict, requested: str | None) -> str:
    """The container a log request is about (400 when ambiguous or unknown)."""
    name = pod["metadata"]["name"]
    spec = pod.get("spec", {})
    names = [c.get("name") for c in spec.get("containers") or []]
    if not requested:
        if len(names) == 1:
            return names[0]
        raise errors.bad_request(f"a container name must be specified for pod {name}, choose one of: "
                                 f"[{' '.join(names)}]")
    init = [c.get("name") for c in spec.get("initContainers") or []]
    if requested not in names and requested not in init:
        raise errors.bad_request(f"container {requested} is not valid for pod {name}")
    return requested


def locate(state_dir: Path, pod: dict, container: str, *, previous: bool) -> Path:
    """The log file to serve, or 400 with the message a real kubelet gives."""
    meta = pod["metadata"]
    runs = _runs(container_log_dir(state_dir, namespace=meta.get("namespace", ""), pod=meta["name"],
                                   uid=meta.get("uid", ""), container=container))
    if previous:
        if len(runs) < 2:
            raise errors.bad_request(f'previous terminated container "{container}" in pod "{meta["name"]}" '
                                     "not found")
        return runs[-2]
    if not runs:
        reason = "ContainerCreating"
        for status in pod.get("status", {}).get("containerStatuses") or []:
            if status.get("name") == container:
                reason = (status.get("state", {}).get("waiting") or {}).get("reason") or reason
        raise errors.bad_request(f'container "{container}" in pod "{meta["name"]}" is waiting to start: '
                                 f"{reason}")
    return runs[-1]


def read_tail(path: Path, *, tail_lines: int | None, limit_bytes: int | None) -> tuple[bytes, int]:
    """The content to send first and the file offset to follow from."""
    with open(path, "rb") as handle:
        data = handle.read()
    offset = len(data)
    if tail_lines is not None:
        lines = data.splitlines(keepends=True)
        data = b"".join(lines[-tail_lines:]) if tail_lines > 0 else b""
    if limit_bytes is not None:
        data = data[:limit_bytes]
    return data, offset


def newer_run_exists(path: Path) -> bool:
    """Whether the container has restarted since `path` was the current run."""
    runs = _runs(path.parent)
    return bool(runs) and runs[-1] != path


def container_running(pod: dict, container: str) -> bool:
    """Whether the pod status says the container is (or may still be) running."""
    for status in pod.get("status", {}).get("containerStatuses") or []:
        if status.get("name") == container:
            return "terminated" not in (status.get("state") or {})
    return True
