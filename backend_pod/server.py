"""The backend's connections and lifecycle: listen, serve keep-alive connections, shut down.

A `Connection` is one TCP connection (an `asyncio.Protocol`): it parses pipelined requests in
order, answers each with the pod's and the connection's identity headers, and closes itself when
recycling says so (MAX_CONN_REQUESTS / MAX_CONN_AGE), when the client asks, on malformed input,
or while the pod drains. Server-initiated closes are "lingering": the response is flushed, the
write side shut down, and the socket closed once the client closed its side (or after a short
grace), so a client never loses a response to a TCP reset.

`Server` owns the listening socket, START_DELAY, a periodic sweep (idle and slow-request
timeouts, idle connections during a drain) and the SIGTERM behaviour:

- ``abrupt``: log, reset every open connection and exit at once with status 143 (128 + SIGTERM),
  as a process without a handler would; in-flight requests fail.
- ``drain``: report unready, keep serving in-flight and new requests for DRAIN_SECONDS with
  ``Connection: close`` on every response (clients reconnect and, through the Service, reach
  another pod), close idle keep-alive connections, then stop listening, give in-flight requests
  up to FINISH_GRACE seconds and exit 0. A second signal exits at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import socket
import struct
import sys
import time

from backend_pod.app import Deferred, Response, State, dispatch, error
from backend_pod.config import ConfigError, Settings, load_settings
from backend_pod.http import HttpError, Request, parse_head, read_body, reason
from backend_pod.log import Log

IDLE_TIMEOUT = 120.0  # seconds a keep-alive connection may sit without a request
REQUEST_TIMEOUT = 30.0  # seconds to receive a whole request once its first byte arrived
WRITE_TIMEOUT = 60.0  # seconds a client may leave our responses unread
LINGER_SECONDS = 2.0  # after we shut our side: wait this long for the client to close its side
DRAIN_IDLE_CLOSE = 2.0  # while draining, close keep-alive connections idle this long
FINISH_GRACE = 5.0  # after the drain window: time left to requests still in flight
SWEEP_INTERVAL = 0.25

_REQUEST_ID = re.compile(r"[A-Za-z0-9._:/+=-]{1,128}\Z")
_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_STATUS_LINES: dict[int, str] = {}
_LINGER_RESET = struct.pack("ii", 1, 0)
# Requests the kubelet makes every few seconds; connections that carried only these are left out
# of the default connection log so `kubectl logs` shows traffic, not probes.
_PROBE_HANDLERS = frozenset({"healthz", "readyz"})


class _Clock:
    """The HTTP Date header value, recomputed at most once per second."""

    second = -1
    value = ""

    @classmethod
    def date(cls) -> str:
        """The current Date header value."""
        now = int(time.time())
        if now != cls.second:
            t = time.gmtime(now)
            cls.value = (f"{_DAYS[t.tm_wday]}, {t.tm_mday:02d} {_MONTHS[t.tm_mon - 1]} {t.tm_year} "
                         f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} GMT")
            cls.second = now
        return cls.value


def _status_line(status: int) -> str:
    """The status line of ``status`` (cached)."""
    line = _STATUS_LINES.get(status)
    if line is None:
        line = _STATUS_LINES[status] = f"HTTP/1.1 {status} {reason(status)}\r\n"
    return line


class Connection(asyncio.Protocol):
    """One client TCP connection: parses requests in order and answers each one."""

    __slots__ = ("buf", "busy", "cid", "close_reason", "closing", "ident", "last_active", "local_ip", "loop",
                 "opened", "out", "peer", "peer_eof", "pending", "pod_json", "request_id", "request_started",
                 "seq", "server", "state", "timer", "traffic", "transport", "write_paused")
    # Set by connection_made, which asyncio calls before any other callback; a connection is in
    # state.connections only from then on.
    transport: asyncio.Transport

    def __init__(self, server: Server) -> None:
        self.server = server
        self.state = server.state
        self.loop = server.loop
        self.buf = b""
        self.pending: Request | None = None  # head parsed, body still arriving
        self.request_started = 0.0  # loop time the buffered partial request began
        self.seq = 0
        self.traffic = 0  # requests other than probes
        self.request_id = ""
        self.busy = False  # a Deferred response is on its way
        self.write_paused = False
        self.peer_eof = False
        self.closing = False
        self.close_reason = "client"
        self.timer: asyncio.TimerHandle | None = None
        self.out: list[bytes] = []
        self.opened = self.last_active = 0.0
        self.cid = self.peer = self.local_ip = self.pod_json = self.ident = ""

    # -- asyncio.Protocol callbacks ---------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Called when a client connects: assign the connection id and its identity headers."""
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        state = self.state
        local = transport.get_extra_info("sockname")
        peer = transport.get_extra_info("peername")
        self.local_ip = local[0] if local else ""
        self.peer = (f"[{peer[0]}]:{peer[1]}" if ":" in peer[0] else f"{peer[0]}:{peer[1]}") if peer else "-"
        self.cid = state.next_conn_id()
        self.pod_json = state.pod_json(self.local_ip)
        s = state.settings
        self.ident = (f"X-Pod-Name: {s.pod_name}\r\nX-Pod-IP: {state.pod_ip(self.local_ip)}\r\n"
                      f"X-Pod-Version: {s.version}\r\nX-Conn-Id: {self.cid}\r\n")
        self.opened = self.last_active = self.loop.time()
        state.connections.add(self)
        state.accepted += 1
        if state.access_log == "all":
            state.log.batch("conn_open", conn=self.cid, client=self.peer)

    def data_received(self, data: bytes) -> None:
        """Called with bytes from the client: parse and answer every complete request."""
        if self.closing:
            return  # lingering close: the client's leftovers are discarded
        self.last_active = self.loop.time()
        if self.buf:
            self.buf += data
        else:
            self.buf = data
            self.request_started = self.last_active
        if not self.busy and not self.write_paused:
            self.process()

    def eof_received(self) -> bool:
        """Called when the client shuts its side: finish what was fully received, then close."""
        self.peer_eof = True
        if self.closing:
            return False
        if self.busy or self.write_paused:
            return True  # the pending response is still sent; the connection closes after it
        self.close_reason = "client"
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        """Called when the connection is gone: count and log it."""
        state = self.state
        state.connections.discard(self)
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        why = "reset" if exc is not None and self.close_reason == "client" else self.close_reason
        state.count_closed(why)
        if state.access_log == "all" or (state.access_log == "conn" and self.traffic):
            state.log.batch("conn_closed", conn=self.cid, client=self.peer, requests=self.seq,
                            age_ms=int((self.loop.time() - self.opened) * 1000), reason=why)

    def pause_writing(self) -> None:
        """Called when the client does not read fast enough: stop reading more requests."""
        self.write_paused = True
        self.transport.pause_reading()

    def resume_writing(self) -> None:
        """Called when the send buffer has drained again."""
        self.write_paused = False
        if not self.closing:
            self.transport.resume_reading()
            self.process()

    # -- request handling -----------------------------------------------------------------------

    def process(self) -> None:
        """Answer every complete request in the buffer, in order (pipelining-safe)."""
        buf = self.buf
        pos = 0
        try:
            while pos < len(buf) and not (self.closing or self.busy or self.write_paused):
                req = self.pending
                if req is None:
                    while pos < len(buf) and buf[pos] in b"\r\n":
                        pos += 1  # empty lines before a request are ignored (RFC 9112 section 2.2)
                    if pos == len(buf):
                        break
                    parsed = parse_head(buf, pos)
                    if parsed is None:
                        break
                    req, pos = parsed
                    if req.chunked or req.content_length:
                        self.pending = req
                        if req.expect_continue and len(buf) == pos:
                            self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
                    else:
                        req.body = b""
                if req.body is None:
                    end = read_body(req, buf, pos)
                    if end is None:
                        break
                    pos = end
                    self.pending = None
                self.handle(req)
        except HttpError as exc:
            pos = len(buf)
            self.reject(exc)
        if pos:
            self.buf = buf[pos:]
            self.request_started = self.loop.time()
        self.flush()
        if self.peer_eof and not (self.closing or self.busy or self.write_paused):
            self.close_reason = "client"
            self.transport.close()

    def handle(self, req: Request) -> None:
        """Serve one complete request: route it and send (or schedule) the response."""
        self.seq += 1
        rid = req.headers.get("x-request-id")
        self.request_id = rid if rid is not None and _REQUEST_ID.match(rid) else f"{self.cid}.{self.seq}"
        req.keep_alive = self.keep_after(req)
        try:
            name, result = dispatch(self.state, self, req)
        except Exception as exc:  # a bug must cost one request, never the connection or the process
            self.state.log.event("handler_error", path=req.target[:200], error=repr(exc)[:500])
            name, result = "error", error(500, "internal error while handling the request")
        if isinstance(result, Deferred):
            self.busy = True
            self.transport.pause_reading()
            self.timer = self.loop.call_later(result.seconds, self.finish_deferred, req, name, result)
        else:
            self.respond(req, name, result)

    def keep_after(self, req: Request) -> bool:
        """Whether the connection stays open after this request's response (and why not)."""
        state = self.state
        if not req.keep_alive:
            self.close_reason = "client_close"
        elif state.draining:
            self.close_reason = "drain"
        elif state.max_conn_requests and self.seq >= state.max_conn_requests:
            self.close_reason = "max_requests"
        elif state.max_conn_age and self.loop.time() - self.opened >= state.max_conn_age:
            self.close_reason = "max_age"
        else:
            return True
        return False

    def finish_deferred(self, req: Request, name: str, deferred: Deferred) -> None:
        """Called when a /delay wait is over: send its response, then continue with the buffer."""
        self.timer = None
        self.busy = False
        if self.closing:
            return
        req.keep_alive = req.keep_alive and self.keep_after(req)
        self.respond(req, name, deferred.build())
        if not self.closing and not self.write_paused:
            self.transport.resume_reading()
        self.process()

    def respond(self, req: Request, name: str, response: Response) -> None:
        """Queue a response with the identity headers; close afterwards unless keep-alive."""
        status, ctype, body, extra = response
        keep = req.keep_alive
        if keep:
            connection = "Connection: keep-alive\r\n" if req.version == 10 else ""
        else:
            connection = "Connection: close\r\n"
        if status in (204, 304):
            length = ""
            body = b""
        else:
            length = f"Content-Length: {len(body)}\r\n"
        head = (f"{_status_line(status)}Date: {_Clock.date()}\r\nContent-Type: {ctype}\r\n{length}"
                f"{self.ident}X-Conn-Seq: {self.seq}\r\nX-Request-Id: {self.request_id}\r\n"
                f"Cache-Control: no-store\r\n{extra}{connection}\r\n")
        self.out.append(head.encode())
        if body and req.method != "HEAD":
            self.out.append(body)
        state = self.state
        if name not in _PROBE_HANDLERS:
            self.traffic += 1
        key = (status, name)
        state.requests[key] = state.requests.get(key, 0) + 1
        if state.access_log == "all":
            state.log.batch("request", conn=self.cid, seq=self.seq, method=req.method, path=req.target[:200],
                            status=status, client=self.peer, request_id=self.request_id)
        if not keep:
            self.closing = True

    def reject(self, exc: HttpError) -> None:
        """Answer a malformed or oversized request with ``exc.status`` and close."""
        self.seq += 1
        self.request_id = f"{self.cid}.{self.seq}"
        self.close_reason = "bad_request"
        req = Request("GET", "-", "-", "", 11, {})
        req.keep_alive = False
        self.respond(req, "bad_request", error(exc.status, exc.message))
        self.pending = None

    def flush(self) -> None:
        """Write the queued responses in one send; start a lingering close when closing."""
        if self.out:
            data = self.out[0] if len(self.out) == 1 else b"".join(self.out)
            self.out.clear()
            self.transport.write(data)
            self.last_active = self.loop.time()
        if self.closing:
            self.linger()

    def linger(self) -> None:
        """Shut our side after the queued data; close fully when the client does or after a grace."""
        self.buf = b""
        transport = self.transport
        if transport.is_closing():
            return
        if transport.can_write_eof() and not self.peer_eof:
            transport.write_eof()
            transport.resume_reading()
            self.timer = self.loop.call_later(LINGER_SECONDS, transport.close)
        else:
            transport.close()

    def close_now(self, why: str) -> None:
        """Close an idle connection from the server side (drain, idle timeout)."""
        self.close_reason = why
        self.closing = True
        self.linger()

    def timeout_request(self) -> None:
        """Answer 408 to a request that did not arrive completely in time."""
        self.reject(HttpError(408, f"request not received completely within {REQUEST_TIMEOUT:g} s"))
        self.close_reason = "request_timeout"
        self.flush()

    def reset(self) -> None:
        """Make the kernel answer with a TCP reset when this socket closes (abrupt exit)."""
        sock = self.transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)

    @property
    def idle(self) -> bool:
        """No request in flight and nothing buffered: safe to close from our side."""
        return not (self.busy or self.buf or self.pending or self.closing or self.write_paused)


class Server:
    """The listening socket and the process lifecycle (start delay, sweep, SIGTERM, exit)."""

    def __init__(self, settings: Settings, log: Log) -> None:
        self.settings = settings
        self.log = log
        self.loop = asyncio.get_running_loop()
        self.state = State(settings, log, now=self.loop.time())
        self.listener: asyncio.Server | None = None
        self.done: asyncio.Future[int] = self.loop.create_future()
        self.signalled = False

    async def run(self) -> int:
        """Listen, serve until shut down, and return the exit status."""
        s = self.settings
        self.log.event("starting", pod=s.pod_name, version=s.version, pid=os.getpid(),
                       shutdown_mode=s.shutdown_mode, drain_seconds=s.drain_seconds,
                       start_delay=s.start_delay, max_conn_requests=s.max_conn_requests,
                       max_conn_age=s.max_conn_age)
        for signum in (signal.SIGTERM, signal.SIGINT):
            self.loop.add_signal_handler(signum, self.on_signal, signum)
        try:
            self.listener = await self.loop.create_server(lambda: Connection(self), s.host, s.port,
                                                          reuse_address=True, backlog=1024)
        except OSError as exc:
            print(f"backend_pod: error: cannot listen on {s.host}:{s.port}: {exc.strerror or exc}",
                  file=sys.stderr, flush=True)
            return 1
        host, port = self.listener.sockets[0].getsockname()[:2]
        self.log.event("listening", address=f"[{host}]:{port}" if ":" in host else f"{host}:{port}")
        if s.start_delay > 0:
            self.log.event("unready", reason=self.state.not_ready_reason())
            self.loop.call_later(s.start_delay, self.state.start_delay_over)
        else:
            self.log.event("ready")
        sweeper = self.loop.create_task(self.sweep())
        try:
            return await self.done
        finally:
            sweeper.cancel()

    def on_signal(self, signum: int) -> None:
        """SIGTERM/SIGINT: drain or exit at once, per SHUTDOWN_MODE; a second signal exits now."""
        name = signal.Signals(signum).name
        state = self.state
        if self.signalled:
            self.log.event("signal_again", signal=name, open_connections=len(state.connections))
            self.exit_now(128 + signum)
            return
        self.signalled = True
        mode = self.settings.shutdown_mode
        self.log.event(name, shutdown_mode=mode, open_connections=len(state.connections),
                       in_flight=sum(1 for c in state.connections if c.busy))
        if mode == "abrupt":
            self.exit_now(128 + signum)
            return
        state.draining = True
        state.readiness_changed()
        self.log.event("draining", seconds=self.settings.drain_seconds,
                       open_connections=len(state.connections))
        self.loop.call_later(self.settings.drain_seconds, self.drain_window_over)

    def exit_now(self, status: int) -> None:
        """Exit immediately; open connections are reset, in-flight requests get no response."""
        for conn in list(self.state.connections):
            conn.reset()
        self.log.event("exit", status=status, dropped_connections=len(self.state.connections),
                       requests=sum(self.state.requests.values()))
        os._exit(status)

    def drain_window_over(self) -> None:
        """Stop accepting, close idle connections and let in-flight requests finish."""
        state = self.state
        if self.listener is not None:
            self.listener.close()
        for conn in list(state.connections):
            if conn.idle:
                conn.close_now("drain")
        self.log.event("drain_window_over", open_connections=len(state.connections),
                       in_flight=sum(1 for c in state.connections if c.busy))
        self.loop.create_task(self.finish())

    async def finish(self) -> None:
        """Wait up to FINISH_GRACE for the last connections, then exit 0."""
        state = self.state
        deadline = self.loop.time() + FINISH_GRACE
        while state.connections and self.loop.time() < deadline:
            await asyncio.sleep(0.02)
        dropped = len(state.connections)
        for conn in list(state.connections):
            conn.transport.abort()
        self.log.event("exit", status=0, dropped_connections=dropped, requests=sum(state.requests.values()))
        if not self.done.done():
            self.done.set_result(0)

    async def sweep(self) -> None:
        """Periodically close idle, stalled and (while draining) idle keep-alive connections."""
        while True:
            await asyncio.sleep(SWEEP_INTERVAL)
            now = self.loop.time()
            draining = self.state.draining
            for conn in list(self.state.connections):
                if conn.closing or conn.busy:
                    continue
                quiet = now - conn.last_active
                if conn.write_paused:
                    if quiet > WRITE_TIMEOUT:
                        conn.close_reason = "write_timeout"
                        conn.transport.abort()
                elif conn.buf or conn.pending:
                    if now - conn.request_started > REQUEST_TIMEOUT:
                        conn.timeout_request()
                elif quiet > IDLE_TIMEOUT:
                    conn.close_now("idle_timeout")
                elif draining and quiet >= DRAIN_IDLE_CLOSE:
                    conn.close_now("drain")


async def serve(settings: Settings, log: Log) -> int:
    """Run the backend until it has shut down; return the exit status."""
    return await Server(settings, log).run()


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m backend_pod``: 2 on bad settings, else the server's status."""
    try:
        settings = load_settings(argv)
    except ConfigError as exc:
        print(f"backend_pod: error: {exc}", file=sys.stderr, flush=True)
        return 2
    return asyncio.run(serve(settings, Log()))
