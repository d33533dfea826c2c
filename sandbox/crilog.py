"""Container log files in the CRI format, written by the kubelet and read by `pods/log`.

Each line of a file is one record, as containerd and CRI-O write them and the kubelet's
`pkg/kubelet/kuberuntime/logs` reads them:

    2026-12-01T12:00:00.123456789Z stdout F the line's content

a timestamp (RFC 3339, nanoseconds, UTC), the stream (`stdout`/`stderr`), a tag (`F` a full
line, `P` a partial one: the output continues in the next record without a newline, used for
lines longer than MAX_LINE), then the content. The timestamps are what `kubectl logs
--timestamps`, `--since` and `--since-time` need. The kubelet copies a container's stdout and
stderr through `copy_stream` (one task per stream into the run's file, opened O_APPEND).
"""

from __future__ import annotations

import asyncio
import os
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime

MAX_LINE = 16 * 1024  # containerd's default max container log line size
_RECORD = re.compile(rb"^(\S+) (stdout|stderr) ([PF]) ?(.*)$", re.S)
_STAMP = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)$")


def timestamp(epoch_ns: int | None = None) -> str:
    """RFC 3339 with nine fractional digits in UTC (`RFC3339NanoFixed`)."""
    ns = time.time_ns() if epoch_ns is None else epoch_ns
    seconds, fraction = divmod(ns, 1_000_000_000)
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{fraction:09d}Z"


def parse_time(text: str) -> int | None:
    """An RFC 3339 timestamp (any fraction, `Z` or an offset) as nanoseconds since the epoch."""
    match = _STAMP.match(text)
    if not match:
        return None
    try:
        zone = "+00:00" if match.group(3) == "Z" else match.group(3)
        base = datetime.fromisoformat(match.group(1) + zone)
    except ValueError:
        return None
    fraction = (match.group(2) or "").ljust(9, "0")
    return int(base.timestamp()) * 1_000_000_000 + int(fraction or 0)


@dataclass(frozen=True, slots=True)
class Record:
    """One log line: when, which stream, whether the line ends here, its bytes."""

    time: str
    nanos: int
    stream: str
    full: bool
    content: bytes


def parse(line: bytes) -> Record | None:
    """One file line (without its newline) as a record, None when it is not one."""
    match = _RECORD.match(line)
    if not match:
        return None
    stamp = match.group(1).decode("ascii", "replace")
    nanos = parse_time(stamp)
    if nanos is None:
        return None
    return Record(stamp, nanos, match.group(2).decode(), match.group(3) == b"F", match.group(4))


def encode(stream: str, content: bytes, *, full: bool, stamp: str | None = None) -> bytes:
    """One record as a file line."""
    return f"{stamp or timestamp()} {stream} {'F' if full else 'P'} ".encode() + content + b"\n"


async def pipe_reader(fd: int) -> asyncio.StreamReader:
    """An asyncio reader of the read end of a pipe (the parent's side of a container's stdout)."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=4 * MAX_LINE)
    pipe = os.fdopen(fd, "rb", buffering=0)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), pipe)
    return reader


async def copy_stream(reader: asyncio.StreamReader, stream: str, out: int) -> None:
    """Copy a container's output stream into its log file as records, until end of file: whole
    lines as `F` records, longer runs in MAX_LINE pieces as `P` records, and what remains
    without a newline at the end as a last `F` record (as containerd does)."""
    pending = b""
    while True:
        chunk = await reader.read(65536)
        if not chunk:
            break
        stamp = timestamp()
        lines = (pending + chunk).split(b"\n")
        pending = lines.pop()
        records = [encode(stream, line, full=True, stamp=stamp) for line in lines]
        while len(pending) >= MAX_LINE:
            records.append(encode(stream, pending[:MAX_LINE], full=False, stamp=stamp))
            pending = pending[MAX_LINE:]
        if records:
            os.write(out, b"".join(records))  # whole records per write: the two streams never interleave
    if pending:
        os.write(out, encode(stream, pending, full=True))
