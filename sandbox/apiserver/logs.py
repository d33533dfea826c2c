"""Container logs for `pods/log`, read from the files the kubelet writes, and the subresource
itself (`serve_log`, declared by the pod strategy).

File convention (the kubelet's own layout, shared with `sandbox/kubelet`):

    STATE_DIR/logs/<namespace>_<pod>_<pod-uid>/<container>/<restartCount>.log

The kubelet appends the container's stdout and stderr as CRI records (a timestamp, the
stream and the line, `sandbox/crilog.py`) to the file of the current restart; a restart starts
the next number. `kubectl logs` reads the highest number, `--previous` the one before it. The
pod uid in the directory keeps a recreated pod of the same name from showing its predecessor's
output. The options are the kubelet's (`pkg/kubelet/kuberuntime/logs.ReadLogs`): `tailLines`
picks the last records, then `sinceSeconds`/`sinceTime` drop older ones, `timestamps` prefixes
each with its time, `limitBytes` cuts the output; `follow` keeps streaming new records.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from aiohttp import web

from sandbox import crilog
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


@dataclass(frozen=True)
class LogOptions:
    """PodLogOptions as the kubelet applies them."""

    tail: int | None = None
    limit: int | None = None
    since_ns: int | None = None
    timestamps: bool = False


def log_options(query: Mapping[str, str], pod_name: str) -> LogOptions:
    """The request's PodLogOptions (`ValidatePodLogOptions`: 422 PodLogOptions invalid; 400 when
    a value does not parse)."""
    tail = integer(query, "tailLines", minimum=-(2**63))
    limit = integer(query, "limitBytes", minimum=-(2**63))
    since_seconds = integer(query, "sinceSeconds", minimum=-(2**63))
    since_time = query.get("sinceTime")
    causes = []
    positive = "must be greater than 0"
    if tail is not None and tail < 0:
        causes.append(("FieldValueInvalid", "tailLines",
                       f"Invalid value: {tail}: must be greater than or equal to 0"))
    if limit is not None and limit < 1:
        causes.append(("FieldValueInvalid", "limitBytes", f"Invalid value: {limit}: {positive}"))
    if since_seconds is not None and since_time:
        causes.append(("FieldValueForbidden", "",
                       "Forbidden: at most one of `sinceTime` or `sinceSeconds` may be specified"))
    elif since_seconds is not None and since_seconds < 1:
        causes.append(("FieldValueInvalid", "sinceSeconds", f"Invalid value: {since_seconds}: {positive}"))
    if causes:
        text = ", ".join(f"{field}: {detail}" if field else detail for _, field, detail in causes)
        message = f'PodLogOptions "{pod_name}" is invalid: ' + (text if len(causes) == 1 else f"[{text}]")
        details = {"name": pod_name, "kind": "PodLogOptions", "causes": [
            {"reason": reason, "message": detail, "field": field} for reason, field, detail in causes]}
        raise errors.ApiError(422, "Invalid", message, details=details)
    since_ns = None
    if since_time:
        since_ns = crilog.parse_time(since_time)
        if since_ns is None:
            raise errors.bad_request(f'parsing time "{since_time}" as "2006-01-02T15:04:05Z07:00": cannot '
                                     f'parse "{since_time}" as "2006"')
    elif since_seconds is not None:
        since_ns = time.time_ns() - since_seconds * 1_000_000_000
    return LogOptions(tail=tail, limit=limit, since_ns=since_ns, timestamps=flag(query, "timestamps"))


def render(lines: list[bytes], options: LogOptions) -> bytes:
    """Complete file lines (records) as `kubectl logs` prints them: records older than `since`
    dropped, the timestamp prefixed when asked, a newline after each full line."""
    out = []
    for line in lines:
        record = crilog.parse(line)
        if record is None:
            continue  # not a CRI record: the kubelet skips what it cannot parse
        if options.since_ns is not None and record.nanos < options.since_ns:
            continue
        if options.timestamps:
            out.append(crilog.timestamp(record.nanos).encode() + b" ")
        out.append(record.content + b"\n" if record.full else record.content)
    return b"".join(out)


def take_records(raw: bytes, options: LogOptions) -> tuple[int, bytes]:
    """Of bytes read from a log file: how many end a complete record, and their output."""
    complete = raw.rfind(b"\n") + 1
    return complete, render(raw[:complete].split(b"\n")[:-1], options) if complete else b""


def read_tail(path: Path, options: LogOptions) -> tuple[bytes, int]:
    """The output to send first and the file offset to follow from (after the last complete
    record: one being written is sent once its newline arrives)."""
    with open(path, "rb") as handle:
        data = handle.read()
    offset = data.rfind(b"\n") + 1
    lines = data[:offset].split(b"\n")[:-1]
    if options.tail is not None:
        lines = lines[-options.tail:] if options.tail > 0 else []
    output = render(lines, options)
    if options.limit is not None:
        output = output[:options.limit]
    return output, offset


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
    options = log_options(query, target.name or "")
    limit = options.limit
    data, offset = read_tail(path, options)
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
            raw = await asyncio.get_running_loop().run_in_executor(None, _read_from, path, offset)
            complete, chunk = take_records(raw, options)
            if complete:
                offset += complete
                if limit is not None:
                    chunk = chunk[:limit - sent]
                sent += len(chunk)
                if chunk:
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
