"""Container logs for `pods/log`, read from the files the kubelet writes, and the subresource
itself (`serve_log`, declared by the pod strategy).

File convention (the kubelet's own layout, shared with `sandbox/kubelet`):

    STATE_DIR/logs/<namespace>_<pod>_<pod-uid>/<container>/<restartCount>.log

The kubelet appends the container's stdout and stderr, as plain text, to the file of the
current restart; a restart starts the next number. `kubectl logs` reads the highest number,
`--previous` the one before it. The pod uid in the directory keeps a recreated pod of the
same name from showing its predecessor's output. `timestamps` and `sinceSeconds` are not
supported (the files carry no per-line times); `tailLines` and `limitBytes` are.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import TYPE_CHECKING

from aiohttp import web

from sandbox.statedir import container_log_dir, container_log_path  # noqa: F401 - the layout's one definition

from . import errors
from .query import flag, integer

if TYPE_CHECKING:
    from .server import ApiServer, Target


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


async def serve_log(api: ApiServer, request: web.Request, target: Target) -> web.StreamResponse:
    """`pods/log`: the container's output as text; `follow=true` streams it as it grows."""
    query = request.query
    pod = api.registry.get(target.res, target.namespace, target.name or "").obj
    container = pick_container(pod, query.get("container"))
    path = locate(api.state_dir, pod, container, previous=flag(query, "previous"))
    tail = integer(query, "tailLines")
    limit = integer(query, "limitBytes", minimum=1)
    data, offset = read_tail(path, tail_lines=tail, limit_bytes=limit)
    if not flag(query, "follow") or flag(query, "previous"):
        return web.Response(body=data, content_type="text/plain")
    response = web.StreamResponse(status=200, headers={"Content-Type": "text/plain"})
    response.enable_chunked_encoding()
    await response.prepare(request)
    task = asyncio.current_task()
    assert task is not None
    api.streams.add(task)
    sent = len(data)
    uid = pod["metadata"]["uid"]
    try:
        if data:
            await response.write(data)
        while limit is None or sent < limit:
            chunk = await asyncio.get_running_loop().run_in_executor(None, _read_from, path, offset)
            if chunk:
                offset += len(chunk)
                if limit is not None:
                    chunk = chunk[:limit - sent]
                sent += len(chunk)
                await response.write(chunk)
                continue
            entry = api.store.get(target.res.key, target.namespace, target.name or "")
            if entry is None or entry.obj["metadata"].get("uid") != uid or \
                    newer_run_exists(path) or not container_running(entry.obj, container):
                return response
            await asyncio.sleep(0.25)
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    finally:
        api.streams.discard(task)
    return response


def _read_from(path: Path, offset: int) -> bytes:
    """Bytes appended to a file since `offset` (at most 1 MiB at a time)."""
    try:
        with open(path, "rb") as handle:
            handle.seek(offset)
            return handle.read(1024 * 1024)
    except OSError:
        return b""
