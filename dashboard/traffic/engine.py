"""The traffic engine: a lean asyncio HTTP/1.1 load generator that records which pod served what.

It exists because the lesson "a Service balances per TCP connection" can only be seen with a
client that controls its connections exactly: keep-alive over N connections (optionally recycled
after M requests), or a brand-new connection for every request. General HTTP clients pool and
retry behind your back, so the engine speaks HTTP/1.1 itself on ``asyncio.Protocol`` (uvloop when
installed), which also keeps it fast enough to rival ``hey``.

Load shapes:
- open loop (``rps``): request *k* is due at ``start + k / rps`` whatever happened before; its
  latency is measured from that due time, so a slow target shows up as latency instead of being
  hidden by a client that politely waits (no coordinated omission);
- closed loop (``concurrency``): that many requests in flight, each sent when the previous returns.

Every finished request goes to :class:`~dashboard.traffic.stats.TrafficStats` with its time, lane
(the client connection slot), physical connection id, serving pod (backend_pod's ``X-Pod-Name``),
status, latency and error kind (refused, reset, timeout; 5xx is derived from the status).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from dashboard.traffic.stats import TrafficStats

MODES = ("keepalive", "new-conn")
MAX_HEAD = 64 * 1024


class SpecError(ValueError):
    """A traffic run was asked for with impossible or out-of-bounds parameters."""


@dataclass(frozen=True)
class Target:
    """Where requests go: a TCP address plus the request path and Host header."""

    host: str
    port: int
    path: str = "/"
    host_header: str = ""

    @classmethod
    def from_url(cls, url: str) -> Target:
        """Parse ``http://host[:port][/path]``; anything else is a SpecError."""
        parts = urlsplit(url)
        if parts.scheme != "http" or not parts.hostname:
            raise SpecError(f"target must be an http://host[:port]/path URL, not {url!r}")
        try:
            port = parts.port or 80
        except ValueError:
            raise SpecError(f"bad port in {url!r}") from None
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        return cls(host=parts.hostname, port=port, path=path, host_header=parts.netloc)

    @property
    def url(self) -> str:
        """The target as a URL, for display."""
        return f"http://{self.host_header or f'{self.host}:{self.port}'}{self.path}"


@dataclass(frozen=True)
class LoadSpec:
    """How to load the target. Exactly one of ``duration``/``requests`` bounds the run."""

    mode: str = "keepalive"
    conns: int = 1
    rps: float | None = None
    concurrency: int | None = None
    duration: float | None = 10.0
    requests: int | None = None
    max_per_conn: int = 0
    timeout: float = 5.0

    def check(self, *, max_rps: float | None = None, max_conns: int | None = None,
              max_seconds: float | None = None) -> LoadSpec:
        """Return self if valid and within the given caps, else raise SpecError saying why."""
        if self.mode not in MODES:
            raise SpecError(f"mode must be one of {', '.join(MODES)}")
        if self.conns < 1:
            raise SpecError("connections must be at least 1")
        if max_conns is not None and self.conns > max_conns:
            raise SpecError(f"at most {max_conns} connections are allowed")
        if self.rps is not None and self.concurrency is not None:
            raise SpecError("give a rate (open loop) or a concurrency (closed loop), not both")
        if self.rps is not None and not (self.rps > 0 and math.isfinite(self.rps)):
            raise SpecError("rate must be a positive number of requests per second")
        if max_rps is not None and (self.rps is None or self.rps > max_rps):
            raise SpecError(f"rate must be given and at most {max_rps:g} requests/s")
        if self.concurrency is not None:
            if self.concurrency < 1:
                raise SpecError("concurrency must be at least 1")
            if self.concurrency > self.conns:
                raise SpecError("concurrency cannot exceed connections (HTTP/1.1 carries one request "
                                "at a time per connection)")
        if (self.duration is None) == (self.requests is None):
            raise SpecError("give either a duration or a number of requests")
        if self.duration is not None and not (self.duration > 0 and math.isfinite(self.duration)):
            raise SpecError("duration must be a positive number of seconds")
        if max_seconds is not None and (self.duration is None or self.duration > max_seconds):
            raise SpecError(f"duration must be given and at most {max_seconds:g} s")
        if self.requests is not None and self.requests < 1:
            raise SpecError("requests must be at least 1")
        if self.max_per_conn < 0:
            raise SpecError("max requests per connection must be 0 (unlimited) or more")
        if not 0 < self.timeout <= 60:
            raise SpecError("timeout must be between 0 and 60 s")
        return self

    @property
    def workers(self) -> int:
        """Requests in flight at most: the concurrency, or every connection in open loop."""
        return self.concurrency or self.conns


class ResponseError(Exception):
    """The connection broke or the server answered something that is not HTTP/1.x."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


class _HttpConnection(asyncio.Protocol):
    """One client TCP connection speaking HTTP/1.1, one request at a time."""

    def __init__(self, loop: asyncio.AbstractEventLoop, conn_id: int, timeout: float,
                 on_drop: Callable[[_HttpConnection], None]) -> None:
        self.loop = loop
        self.id = conn_id
        self.timeout = timeout
        self.on_drop = on_drop
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.close_announced = False
        self.sent = 0
        self.buf = bytearray()
        self.waiter: asyncio.Future | None = None
        self.timer: asyncio.TimerHandle | None = None
        self._head: tuple[int, bytes, bytes, bool] | None = None  # status, pod, ip, close
        self._length = -1  # -1 until headers; -2 chunked; -3 until close

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Called once connected."""
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        """Called with response bytes; completes the waiting request when a response is whole."""
        self.buf += data
        if self.waiter is not None:
            self._parse()
        elif len(self.buf) > MAX_HEAD:
            self._abort()

    def eof_received(self) -> bool:
        """The server closed its side: finish an until-close body, else fail the request."""
        self._gone()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        """The connection is gone (closed, reset or aborted)."""
        self._gone(exc)

    def request(self, raw: bytes) -> asyncio.Future:
        """Send one request; the future resolves to (status, pod, pod_ip, server_closes).

        A connection the peer already closed (it accepted and closed at once) fails the
        request as a reset instead of writing: uvloop raises RuntimeError on a write to a
        closed transport, which must never end the run."""
        waiter = self.waiter = self.loop.create_future()
        self.sent += 1
        transport = self.transport
        if transport is None or self.closed or transport.is_closing():
            self._fail(ResponseError("reset", "the connection was closed by the server before the request"))
            return waiter
        self.timer = self.loop.call_later(self.timeout, self._timed_out)
        try:
            transport.write(raw)
        except (RuntimeError, OSError) as exc:
            self._fail(ResponseError("reset", f"the connection broke while sending ({exc})"))
            return waiter
        if self.buf:
            self._parse()
        return waiter

    def close(self) -> None:
        """Close politely (FIN) if still open."""
        self.closed = self.close_announced = True
        if self.transport is not None:
            self.transport.close()

    def _abort(self) -> None:
        self.closed = self.close_announced = True
        if self.transport is not None:
            self.transport.abort()

    def _timed_out(self) -> None:
        self._fail(ResponseError("timeout", "no complete response within the timeout"))
        self._abort()

    def _gone(self, exc: Exception | None = None) -> None:
        if self.closed:
            return
        self.closed = True
        if self.waiter is None:
            if not self.close_announced:
                self.on_drop(self)  # an idle keep-alive the server closed without a word
            return
        if self._length == -3 and self._head is not None:
            self._finish()
            return
        if isinstance(exc, ConnectionRefusedError):
            self._fail(ResponseError("refused", str(exc)))
        else:
            self._fail(ResponseError("reset", "connection closed before the response was complete"
                                     + (f" ({exc})" if exc else "")))

    def _fail(self, error: ResponseError) -> None:
        waiter, self.waiter = self.waiter, None
        self._reset_parser()
        if waiter is not None and not waiter.done():
            waiter.set_exception(error)

    def _finish(self) -> None:
        waiter, self.waiter = self.waiter, None
        head = self._head
        self._reset_parser()
        if waiter is not None and not waiter.done():
            waiter.set_result(head)

    def _reset_parser(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self._head = None
        self._length = -1

    def _parse(self) -> None:
        buf = self.buf
        if self._head is None:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                if len(buf) > MAX_HEAD:
                    self._fail(ResponseError("other", "response head too large"))
                    self._abort()
                return
            try:
                self._parse_head(bytes(buf[:end]))
            except (ValueError, IndexError):
                self._fail(ResponseError("other", "malformed HTTP response"))
                self._abort()
                return
            del buf[:end + 4]
        if self._length >= 0:
            if len(buf) >= self._length:
                del buf[:self._length]
                self._finish()
        elif self._length == -2:
            self._parse_chunks()
        elif self._length == -3:
            buf.clear()

    def _parse_head(self, head: bytes) -> None:
        lines = head.split(b"\r\n")
        version, status_text = lines[0].split(b" ", 2)[:2]
        if not version.startswith(b"HTTP/1."):
            raise ValueError("not HTTP/1.x")
        status = int(status_text)
        pod = ip = b""
        length = -3
        close = version == b"HTTP/1.0"
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"x-pod-name":
                pod = value.strip()
            elif name == b"x-pod-ip":
                ip = value.strip()
            elif name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding" and b"chunked" in value.lower():
                length = -2
            elif name == b"connection":
                token = value.strip().lower()
                close = token == b"close" or (close and token != b"keep-alive")
        if status in (204, 304) or 100 <= status < 200:
            length = 0
        if length == -3:
            close = True
        self.close_announced = close
        self._head = (status, pod, ip, close)
        self._length = length

    def _parse_chunks(self) -> None:
        buf = self.buf
        while True:
            line_end = buf.find(b"\r\n")
            if line_end < 0:
                return
            size = int(bytes(buf[:line_end]).split(b";", 1)[0], 16)
            if size == 0:
                trailer_end = buf.find(b"\r\n\r\n", line_end)
                if trailer_end < 0 and buf[line_end:line_end + 4] != b"\r\n\r\n":
                    return
                del buf[:max(trailer_end, line_end) + 4]
                self._finish()
                return
            if len(buf) < line_end + 2 + size + 2:
                return
            del buf[:line_end + 2 + size + 2]


@dataclass
class Progress:
    """Where a run stands, for progress bars."""

    elapsed: float
    sent: int
    done: int
    unsent: int
    planned: int | None
    fraction: float
    finished: bool


class TrafficEngine:
    """Runs one load spec against one target, feeding a TrafficStats.

    Create it, ``await engine.run()`` on an event loop, call :meth:`stop` (same loop) to end early.
    """

    def __init__(self, target: Target, spec: LoadSpec, stats: TrafficStats, *,
                 clock: Callable[[], float] = time.perf_counter) -> None:
        self.target = target
        self.spec = spec
        self.stats = stats
        self.clock = clock
        host = target.host_header or (target.host if target.port == 80 else f"{target.host}:{target.port}")
        base = f"GET {target.path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: lb-demo-traffic\r\nAccept: */*\r\n"
        self._keep = (base + "\r\n").encode()
        self._close = (base + "Connection: close\r\n\r\n").encode()
        self._conns: list[_HttpConnection | None] = [None] * spec.conns
        self._idle: deque[int] = deque(range(spec.conns))
        self._next = 0
        self._conn_ids = 0
        self.sent = 0
        self.done = 0
        self.unsent = 0
        self.start = 0.0
        self.finished = False
        self._stopping = False
        self._tasks: list[asyncio.Task] = []

    # --- control -------------------------------------------------------------------------------
    async def run(self) -> TrafficStats:
        """Send the whole run and return the stats once every request has finished."""
        self.start = self.clock()
        try:
            self._tasks = [asyncio.ensure_future(self._worker()) for _ in range(self.spec.workers)]
            await asyncio.gather(*self._tasks)
        finally:
            for task in self._tasks:
                task.cancel()
            for conn in self._conns:
                if conn is not None:
                    conn.close()
            self._count_unsent()
            self.finished = True
        return self.stats

    def stop(self) -> None:
        """End the run early: no new request starts; in-flight ones finish or time out."""
        self._stopping = True

    @property
    def stopped_early(self) -> bool:
        """True once :meth:`stop` was called."""
        return self._stopping

    def elapsed(self) -> float:
        """Seconds since the run started."""
        return self.clock() - self.start if self.start else 0.0

    def progress(self) -> Progress:
        """Fraction done by time (duration runs) or by requests (count runs)."""
        elapsed = self.elapsed()
        planned = self._planned()
        if self.finished:
            fraction = 1.0
        elif self.spec.duration is not None:
            fraction = min(1.0, elapsed / self.spec.duration)
        else:
            fraction = min(1.0, self.done / planned) if planned else 0.0
        return Progress(elapsed=elapsed, sent=self.sent, done=self.done, unsent=self.unsent,
                        planned=planned, fraction=fraction, finished=self.finished)

    def _planned(self) -> int | None:
        if self.spec.requests is not None:
            return self.spec.requests
        if self.spec.rps is not None and self.spec.duration is not None:
            return math.ceil(self.spec.rps * self.spec.duration)
        return None

    def _count_unsent(self) -> None:
        planned = self._planned()
        if planned is not None and self.spec.rps is not None:
            self.unsent = max(0, planned - self.sent)
            self.stats.unsent = self.unsent

    # --- the load loop -------------------------------------------------------------------------
    async def _worker(self) -> None:
        while True:
            due = await self._next_due()
            if due is None:
                return
            lane = self._idle.popleft()
            try:
                await self._send(lane, due)
            finally:
                self._idle.append(lane)

    async def _next_due(self) -> float | None:
        """Claim the next request: its due time, or None when the run is over."""
        spec = self.spec
        if self._stopping:
            return None
        k = self._next
        if spec.requests is not None and k >= spec.requests:
            return None
        now = self.clock()
        if spec.rps is None:
            if spec.duration is not None and now - self.start >= spec.duration:
                return None
            self._next += 1
            return now
        due = self.start + k / spec.rps
        if spec.duration is not None and due - self.start >= spec.duration:
            return None
        if spec.duration is not None and now - self.start >= spec.duration:
            return None  # the target was too slow to send every planned request in time
        self._next += 1
        if due > now:
            await asyncio.sleep(due - now)
            if self._stopping:
                return None
        return due

    async def _send(self, lane: int, due: float) -> None:
        spec = self.spec
        due = min(due, self.clock())  # timers may fire a little early; never count negative time
        conn = self._conns[lane]
        new_conn = conn is None or conn.closed
        self.sent += 1
        if new_conn:
            conn = await self._connect(lane, due)
            if conn is None:
                return
        assert conn is not None
        last = spec.mode == "new-conn" or (spec.max_per_conn and conn.sent + 1 >= spec.max_per_conn)
        if last:
            conn.close_announced = True
        try:
            status, pod, ip, server_closes = await conn.request(self._close if last else self._keep)
        except ResponseError as error:
            self._conns[lane] = None
            conn._abort()
            self._record(due, lane, conn.id, new_conn, None, "", None, error.kind)
            return
        if last or server_closes:
            conn.close()
            self._conns[lane] = None
        self._record(due, lane, conn.id, new_conn, pod.decode("latin-1") if pod else None,
                     ip.decode("latin-1"), status, None)

    async def _connect(self, lane: int, due: float) -> _HttpConnection | None:
        loop = asyncio.get_running_loop()
        self._conn_ids += 1
        conn_id = self._conn_ids
        try:
            _, conn = await asyncio.wait_for(
                loop.create_connection(
                    lambda: _HttpConnection(loop, conn_id, self.spec.timeout, self._dropped),
                    self.target.host, self.target.port),
                self.spec.timeout)
        except TimeoutError:
            kind = "timeout"
        except ConnectionRefusedError:
            kind = "refused"
        except ConnectionResetError:
            kind = "reset"
        except OSError:
            kind = "other"
        else:
            self._conns[lane] = conn
            return conn
        self._conns[lane] = None
        self._record(due, lane, conn_id, True, None, "", None, kind)
        return None

    def _dropped(self, conn: _HttpConnection) -> None:
        self.stats.note_dropped(t=self.clock() - self.start, conn=conn.id)

    def _record(self, due: float, lane: int, conn_id: int, new_conn: bool, pod: str | None, ip: str,
                status: int | None, error: str | None) -> None:
        now = self.clock()
        self.done += 1
        self.stats.observe(t=now - self.start, latency=now - due, lane=lane, conn=conn_id, new_conn=new_conn,
                           pod=pod, pod_ip=ip, status=status, error=error)


def new_event_loop() -> asyncio.AbstractEventLoop:
    """uvloop's loop when installed (much faster sockets), else asyncio's default."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


async def run_traffic(target: Target, spec: LoadSpec, *, bucket: float = 0.25) -> TrafficStats:
    """Convenience for scripts and tests: run ``spec`` against ``target`` and return the stats."""
    return await TrafficEngine(target, spec, TrafficStats(bucket=bucket)).run()
