"""stdout logging of backend_pod in logfmt, one event per line (what `kubectl logs` shows).

Lifecycle events (starting, listening, ready, unready, SIGTERM, draining, exit) are written and
flushed at once: the last lines before an exit must not be lost in a buffer. Per-connection and
per-request lines are frequent, so they are collected and written once per event-loop turn.
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
import time
from typing import TextIO

_PLAIN = re.compile(r"[A-Za-z0-9._:/@+#=-]+\Z")
_second: list[object] = [-1, ""]  # the last formatted second and its text (served on every request)


def timestamp(now: float | None = None) -> str:
    """UTC time as ISO 8601 with milliseconds, e.g. 2026-01-02T03:04:05.678Z."""
    now = time.time() if now is None else now
    seconds = int(now)
    if _second[0] != seconds:
        _second[:] = [seconds, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))]
    return f"{_second[1]}.{int((now - seconds) * 1000):03d}Z"


def _value(value: object) -> str:
    """A logfmt value: as is when plain, else JSON-quoted."""
    text = value if isinstance(value, str) else str(value)
    return text if _PLAIN.match(text) else json.dumps(text)


def format_line(event: str, fields: dict[str, object], now: float | None = None) -> str:
    """One logfmt line: ts=... event=... key=value ..., quoting values that need it."""
    items = "".join(f" {key}={_value(value)}" for key, value in fields.items())
    return f"ts={timestamp(now)} event={event}{items}\n"


class Log:
    """Writes events to a text stream; frequent lines are batched per loop turn."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stdout
        self._pending: list[str] = []
        self._loop: asyncio.AbstractEventLoop | None = None

    def event(self, event: str, **fields: object) -> None:
        """Write a lifecycle line now (flushing anything batched before it)."""
        self._pending.append(format_line(event, fields))
        self.flush()

    def batch(self, event: str, **fields: object) -> None:
        """Queue a frequent line; it is written at the end of this event-loop turn."""
        if not self._pending:
            if self._loop is None:
                self._loop = asyncio.get_running_loop()
            self._loop.call_soon(self.flush)
        self._pending.append(format_line(event, fields))

    def flush(self) -> None:
        """Write and flush the queued lines; a closed stdout (reader gone) is ignored."""
        if not self._pending:
            return
        text = "".join(self._pending)
        self._pending.clear()
        try:
            self.stream.write(text)
            self.stream.flush()
        except (OSError, ValueError):
            pass
