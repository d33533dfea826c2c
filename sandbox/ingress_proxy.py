"""The ingress controller's data plane: an HTTP/1.1 reverse proxy that balances every request.

The Service proxy (`sandbox/proxy.py`) forwards bytes: it picks a pod once per TCP connection.
This proxy speaks HTTP (requests and responses parsed with httptools, the llhttp parser
uvicorn and Node.js use), so it picks a pod **per request**: one client keep-alive connection
through an Ingress reaches every ready pod in turn, as with ingress-nginx.

For each request on a client connection, in order (pipelined requests wait their turn):

1. `RouteTable.route(host, path)` chooses a backend (``sandbox/ingress_rules.py``); no
   match -> ``404 Not Found`` from the proxy itself;
2. round-robin over that backend's ready endpoints (pod IP:port from EndpointSlices); none ->
   ``503 Service Temporarily Unavailable``;
3. an idle upstream connection to that pod from its keep-alive pool, or a new one;
4. the request goes upstream with hop-by-hop headers removed and ``X-Forwarded-For``
   (appended), ``X-Forwarded-Host``, ``X-Forwarded-Proto``, ``X-Forwarded-Port`` and
   ``X-Real-IP`` set; the response comes back with hop-by-hop headers removed and its body
   as the pod framed it (HTTP/1.0 clients are proxied as HTTP/1.0, so never get chunked
   bodies; a body without length ends the client connection with it);
5. the upstream connection goes back to the pool when the pod kept it alive.

A pooled connection the pod closed in the meantime (the race every keep-alive pool has) is
retried once on a fresh connection when the request was small enough to keep; a pod that
refuses connections is skipped for the next one (up to 3 tries), then ``502 Bad Gateway``.
No response head within 60 s (ingress-nginx's proxy-read-timeout) -> ``504 Gateway
Timeout``; a client idle for 75 s (its keepalive_timeout) is closed.

`IngressProxy.update(routes, endpoints)` swaps the table and endpoint lists at once (the
controller calls it on every cache change). An endpoint that left the ready set is drained:
no new requests, its idle pooled connections closed, its requests in flight answered, their
connections then closed. WebSocket/Upgrade requests are not supported (501).

The per-request path is kept short because the proxy's own CPU per request is what its
throughput comes down to on a shared machine (``bench/ingress.py`` compares it with HAProxy):

- a read that is exactly one request head without body and without a header the proxy edits
  (the usual case) is only validated by llhttp, with no per-header callbacks, and goes
  upstream as it came plus the X-Forwarded-* lines; other reads go through the full parser;
- a connection that sends the same bytes as its last such request (load testers, pollers,
  health checks) reuses that parsed head (`RequestHead`) without parsing again; the route
  and endpoints a head found are kept until the table changes;
- a response head that needs no edit is written as read, in one write with its body bytes;
  the response parser reports only the end of a message;
- timeouts are one sweep a second over the client connections, not a timer per request.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from dataclasses import dataclass, field

import httptools

from sandbox.ingress_rules import Backend, RouteTable, Target

log = logging.getLogger("sandbox.ingress")

READ_TIMEOUT = 60.0
CLIENT_IDLE_TIMEOUT = 75.0
CONNECT_TRIES = 3
MAX_IDLE_PER_ENDPOINT = 64
REPLAY_LIMIT = 64 * 1024
PAUSE_LIMIT = 256 * 1024
SWEEP_PERIOD = 1.0
ROUTE_CACHE_SIZE = 4096

# Response header lines dropped on the way to the client (Transfer-Encoding stays: the body is
# forwarded with the pod's own framing).
STRIPPED = frozenset((b"connection", b"keep-alive", b"proxy-connection", b"te", b"trailer", b"upgrade"))
HOP_BY_HOP_LINE = re.compile(rb"\n(?:connection|keep-alive|proxy-connection|te|trailer|upgrade)[ \t]*:")
HOP_BY_HOP = frozenset(
    (b"connection", b"keep-alive", b"proxy-connection", b"te", b"trailer", b"transfer-encoding", b"upgrade")
)
FORWARDED = frozenset((b"x-forwarded-host", b"x-forwarded-proto", b"x-forwarded-port", b"x-real-ip"))
# Request header lines that need more than passing through (framing, hop-by-hop, the ones the
# proxy sets): a head without any goes upstream as it came, plus the X-Forwarded-* lines.
EDITED_LINE = re.compile(
    rb"\n(?:connection|keep-alive|proxy-connection|te|trailer|upgrade|transfer-encoding|content-length"
    rb"|x-forwarded-[a-z]*|x-real-ip)[ \t]*:"
)
NO_BODY_STATUS = frozenset((204, 304))
SERVER = b"Server: lb-demo-ingress\r\n"


def error_response(status: int, reason: str, *, close: bool) -> bytes:
    """A small HTML error page like ingress-nginx's (``<center><h1>503 ...</h1></center>``)."""
    body = (
        f"<html>\r\n<head><title>{status} {reason}</title></head>\r\n<body>\r\n"
        f"<center><h1>{status} {reason}</h1></center>\r\n<hr><center>lb-demo-ingress</center>\r\n"
        "</body>\r\n</html>\r\n"
    ).encode()
    head = (
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: text/html\r\nContent-Length: {len(body)}\r\n"
        f"{'Connection: close' if close else 'Connection: keep-alive'}\r\n"
    ).encode()
    return head + SERVER + b"\r\n" + body


@dataclass(eq=False, slots=True)
class EndpointPool:
    """One pod address: its idle keep-alive connections, requests in flight, drain state."""

    ip: str
    port: int
    pod: str
    idle: list[Upstream] = field(default_factory=list)
    busy: int = 0
    requests: int = 0
    draining: bool = False

    def drain(self) -> None:
        """The endpoint left the ready set: close idle connections, keep none from now on."""
        self.draining = True
        for up in self.idle:
            up.close()
        self.idle.clear()


@dataclass(eq=False, slots=True)
class BackendEndpoints:
    """A backend's ready endpoints and its round-robin position."""

    pools: list[EndpointPool] = field(default_factory=list)
    next: int = 0

    def pick(self, skip: set[EndpointPool] | None = None) -> EndpointPool | None:
        """The next endpoint in round-robin order (not one in ``skip``)."""
        pools = self.pools
        for _ in range(len(pools)):
            pool = pools[self.next % len(pools)]
            self.next += 1
            if not skip or pool not in skip:
                return pool
        return None


class RequestHead:
    """A request head as parsed, in the form it goes upstream. The same bytes at a message
    boundary always parse the same, so a client connection that repeats its last request (no
    body, keep-alive: what load testers, pollers and health checks send) reuses this object
    instead of parsing again; the route it found is kept until the table changes."""

    __slots__ = ("chunked", "data", "endpoints", "generation", "has_body", "head_request", "host",
                 "keep_alive", "path", "target", "version")

    def __init__(self, data: bytes, host: bytes, path: bytes, *, head_request: bool, keep_alive: bool,
                 version: str, chunked: bool, has_body: bool) -> None:
        self.data = data
        self.host = host
        self.path = path
        self.head_request = head_request
        self.keep_alive = keep_alive
        self.version = version
        self.chunked = chunked
        self.has_body = has_body
        self.generation = -1
        self.target: Target | None = None
        self.endpoints: BackendEndpoints | None = None


class Upstream(asyncio.Protocol):
    """A connection from the proxy to one pod; serves one exchange at a time.

    Responses are forwarded as they arrive: llhttp (httptools) finds where each ends, the head
    is rewritten only when it carries hop-by-hop headers or the client needs another
    Connection header (otherwise the bytes read are the bytes written), and body bytes pass
    through untouched (the pod's own framing). The parser reports only the end of a message
    (one callback per response); a HEAD exchange gets a parser that also stops at the head."""

    __slots__ = ("closed", "done", "done_keep_alive", "exchange", "head_buf", "head_parser", "in_head",
                 "parser", "pool", "proxy", "responded", "reused", "sent_at", "skip_body", "transport")

    def __init__(self, proxy: IngressProxy, pool: EndpointPool) -> None:
        self.proxy = proxy
        self.pool = pool
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.head_parser = False
        self.exchange: Exchange | None = None
        self.reused = False
        self.responded = False
        self.closed = False
        self.sent_at = 0.0
        self.in_head = True
        self.head_buf = b""
        self.done = False
        self.done_keep_alive = False
        self.skip_body = False

    # -- connection events ---------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        ex = self.exchange
        if ex is None:
            self.close()
            return
        self.responded = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserCallbackError:
            if not self.skip_body:
                raise
        except httptools.HttpParserError:
            log.warning("bad response from %s:%d (%s); closing", self.pool.ip, self.pool.port, self.pool.pod)
            self.close()
            self.exchange = None
            ex.upstream_failed(self, bad=True)
            return
        if self.in_head:
            out = self._head(ex, data)
            if out:
                ex.client.transport.write(out)
        else:
            ex.client.transport.write(data)
        if self.done:
            self.done = False
            ex.response_done(self, keep_alive=self.done_keep_alive)

    def _head(self, ex: Exchange, data: bytes) -> bytes:
        """Bytes to send once the response head is complete (informational heads pass through)."""
        buf = self.head_buf + data if self.head_buf else data
        out = b""
        while True:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                self.head_buf = buf
                return out
            status = int(buf[9:12]) if buf[9:12].isdigit() else 0
            if 100 <= status < 200 and status != 101:
                out += buf[: end + 4]
                buf = buf[end + 4 :]
                continue
            self.in_head = False
            self.head_buf = b""
            return out + ex.response_head(buf, end + 2, status, complete=self.done)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        with contextlib.suppress(ValueError):
            self.pool.idle.remove(self)
        ex = self.exchange
        if ex is not None:
            self.exchange = None
            ex.upstream_failed(self, bad=False)

    def pause_writing(self) -> None:
        if self.exchange is not None:
            self.exchange.client.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.exchange is not None:
            self.exchange.client.transport.resume_reading()

    def close(self) -> None:
        """Close the connection (an exchange on it is not told; callers handle it)."""
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    # -- httptools callbacks (the response) ----------------------------------------------------

    def on_message_complete(self) -> None:
        status = self.parser.get_status_code()
        if 100 <= status < 200 and status != 101:
            return
        self.done, self.done_keep_alive = True, self.parser.should_keep_alive()


class _HeadResponse:
    """Parser callbacks for the response to a HEAD request: it announces a length but has no
    body, and llhttp cannot be told, so the exchange ends with the head (the parser raises out
    and the connection gets a fresh one for its next exchange)."""

    __slots__ = ("up",)

    def __init__(self, up: Upstream) -> None:
        self.up = up

    def on_headers_complete(self) -> None:
        up = self.up
        if up.parser.get_status_code() >= 200:
            up.done, up.done_keep_alive = True, up.parser.should_keep_alive()
            up.skip_body = True
            raise _SkipBody

    def on_message_complete(self) -> None:
        self.up.on_message_complete()


class _SkipBody(Exception):
    """Raised from a callback to stop parsing a HEAD response after its head."""


NO_BODY: tuple[bytes, ...] = ()


class Exchange:
    """One request from a client connection and its response."""

    __slots__ = (
        "body_chunks",
        "client",
        "keep_alive",
        "pending_answer",
        "pool",
        "replay",
        "req",
        "request_complete",
        "response_started",
        "response_until_close",
        "tried",
        "upstream",
    )

    def __init__(self, client: ClientConnection, req: RequestHead) -> None:
        self.client = client
        self.req = req
        self.keep_alive = req.keep_alive
        self.request_complete = not req.has_body
        self.pending_answer: tuple[int, str] | None = None
        # Body pieces waiting for an upstream connection; what was sent, kept for a resend.
        self.body_chunks: list[bytes] | None = None
        self.replay: tuple[bytes, ...] | list[bytes] | None = NO_BODY
        self.upstream: Upstream | None = None
        self.pool: EndpointPool | None = None
        self.tried: set[EndpointPool] | None = None
        self.response_started = False
        self.response_until_close = False

    # -- request side --------------------------------------------------------------------------

    def start(self) -> None:
        """Route the request and send it upstream (or answer 404/503 at once)."""
        proxy = self.client.proxy
        req = self.req
        if req.generation != proxy.generation:
            req.target, req.endpoints = proxy.route(req.host, req.path)
            req.generation = proxy.generation
        if req.target is None:
            proxy.answered[404] = proxy.answered.get(404, 0) + 1
            self.answer(404, "Not Found")
            return
        endpoints = req.endpoints
        pool = endpoints.pick(self.tried) if endpoints is not None else None
        if pool is None:
            if self.tried:
                self.answer(502, "Bad Gateway")
            else:
                proxy.answered[503] = proxy.answered.get(503, 0) + 1
                self.answer(503, "Service Temporarily Unavailable")
            return
        self.pool = pool
        pool.busy += 1
        pool.requests += 1
        idle = pool.idle
        while idle:
            up = idle.pop()
            if not up.closed and up.transport is not None and not up.transport.is_closing():
                self.attach(up)
                return
        asyncio.get_running_loop().create_task(self.connect(pool))

    async def connect(self, pool: EndpointPool) -> None:
        """Open a new connection to ``pool``'s pod, then send the request on it."""
        loop = asyncio.get_running_loop()
        up = Upstream(self.client.proxy, pool)
        try:
            await loop.create_connection(lambda: up, pool.ip, pool.port)
        except OSError as exc:
            self.client.proxy.note_connect_failure(pool, exc)
            pool.busy -= 1
            self.pool = None
            if self.tried is None:
                self.tried = set()
            self.tried.add(pool)
            if self.client.closed:
                return
            if len(self.tried) < CONNECT_TRIES:
                self.start()
            else:
                self.answer(502, "Bad Gateway")
            return
        if self.client.closed:
            pool.busy -= 1
            up.close()
            return
        self.attach(up)

    def attach(self, up: Upstream) -> None:
        """Send the request (head and the body so far) on ``up``."""
        self.upstream = up
        up.exchange = self
        up.responded = False
        up.in_head = True
        up.head_buf = b""
        up.done = False
        up.sent_at = self.client.proxy.now
        req = self.req
        if req.head_request:
            up.parser = httptools.HttpResponseParser(_HeadResponse(up))
            up.head_parser = True
            up.skip_body = False
        elif up.head_parser:
            up.parser = httptools.HttpResponseParser(up)
            up.head_parser = up.skip_body = False
        transport = up.transport
        assert transport is not None
        chunks = self.body_chunks
        if chunks:
            transport.writelines([req.data, *chunks])
            self.body_chunks = None
        else:
            transport.write(req.data)
        if self.client.paused_for_body:
            self.client.resume()

    def request_body(self, body: bytes) -> None:
        """A piece of the request body from the client."""
        if self.pending_answer is not None:
            return
        data = b"%x\r\n%b\r\n" % (len(body), body) if self.req.chunked else body
        self._keep_for_replay(data)
        self._send(data)

    def request_done(self) -> None:
        """The client's request is complete."""
        if self.request_complete:
            return
        self.request_complete = True
        if self.pending_answer is not None:
            self.answer(*self.pending_answer)
            return
        if self.req.chunked:
            self._keep_for_replay(b"0\r\n\r\n")
            self._send(b"0\r\n\r\n")

    def _send(self, data: bytes) -> None:
        """Body bytes to the pod, or kept until the upstream connection is there."""
        up = self.upstream
        if up is not None and up.transport is not None:
            up.transport.write(data)
            return
        if self.body_chunks is None:
            self.body_chunks = []
        self.body_chunks.append(data)
        if sum(map(len, self.body_chunks)) > PAUSE_LIMIT:
            self.client.pause_for_body()

    def _keep_for_replay(self, data: bytes) -> None:
        replay = self.replay
        if replay is not None:
            if replay is NO_BODY:
                replay = self.replay = []
            replay.append(data)  # type: ignore[union-attr]
            if len(self.req.data) + sum(map(len, replay)) > REPLAY_LIMIT:
                self.replay = None

    # -- response side -------------------------------------------------------------------------

    def response_head(self, buf: bytes, end: int, status: int, *, complete: bool) -> bytes:
        """The pod's final response (head ending at ``end``, then body bytes) as the client gets
        it: no hop-by-hop headers, and the Connection header this client connection needs.
        (``complete``: the parser saw the whole response already, so it had a length.)"""
        low = buf[:end].lower()
        if (
            not complete
            and not self.req.head_request
            and status not in NO_BODY_STATUS
            and b"\ncontent-length:" not in low
            and b"\ntransfer-encoding:" not in low
        ):
            # No length: the body ends when the pod closes, so this client connection ends too.
            self.response_until_close = True
            self.keep_alive = False
        self.response_started = True
        hop = HOP_BY_HOP_LINE.search(low) is not None
        if self.keep_alive and not hop and self.req.version != "1.0":
            return buf
        head = buf[:end]
        if hop:
            lines = head.split(b"\r\n")
            head = b"\r\n".join(x for x in lines if x.partition(b":")[0].strip().lower() not in STRIPPED)
        rest = buf[end + 2 :]
        if not self.keep_alive:
            return head + b"Connection: close\r\n\r\n" + rest
        if self.req.version == "1.0":
            return head + b"Connection: keep-alive\r\n\r\n" + rest
        return head + b"\r\n" + rest

    def response_done(self, up: Upstream, *, keep_alive: bool) -> None:
        """The response is complete: release the upstream connection, go on with the next request."""
        self.release(up, keep_alive=keep_alive and self.request_complete)
        self.client.exchange_done(self)

    def release(self, up: Upstream, *, keep_alive: bool) -> None:
        """Give ``up`` back to its pool (or close it) and forget it."""
        up.exchange = None
        self.upstream = None
        pool = up.pool
        if self.pool is pool:
            pool.busy -= 1
            self.pool = None
        if keep_alive and not pool.draining and not up.closed and len(pool.idle) < MAX_IDLE_PER_ENDPOINT:
            up.reused = True
            pool.idle.append(up)
        else:
            up.close()

    def upstream_failed(self, up: Upstream, *, bad: bool) -> None:
        """The upstream connection closed (or sent garbage) before the response was complete."""
        up.exchange = None
        self.upstream = None
        if self.pool is up.pool:
            up.pool.busy -= 1
            self.pool = None
        if self.client.closed:
            return
        if self.response_until_close and not bad:
            self.client.exchange_done(self)
            return
        if self.response_started:
            self.client.abort()
            return
        if not bad and up.reused and not up.responded and self.replay is not None:
            # The pod closed an idle pooled connection just as the request went out: resend it
            # on a fresh connection to the same endpoint.
            self.body_chunks = list(self.replay)
            self.pool = up.pool
            up.pool.busy += 1
            asyncio.get_running_loop().create_task(self.connect(up.pool))
            return
        self.answer(502, "Bad Gateway")

    def timed_out(self, up: Upstream) -> None:
        """No response within READ_TIMEOUT."""
        up.exchange = None
        self.upstream = None
        up.close()
        if self.pool is up.pool:
            up.pool.busy -= 1
            self.pool = None
        if self.response_started:
            self.client.abort()
        else:
            self.answer(504, "Gateway Timeout")

    def answer(self, status: int, reason: str) -> None:
        """Answer the client from the proxy itself (once its request body has been read)."""
        if not self.request_complete:
            self.pending_answer = (status, reason)
            return
        self.client.transport.write(error_response(status, reason, close=not self.keep_alive))
        self.client.exchange_done(self)


NO_CALLBACKS = object()  # the protocol of a parser used only to validate


class ClientConnection(asyncio.Protocol):
    """A client connection accepted on an ingress listener."""

    __slots__ = ("block", "block_data", "closed", "completed", "forwarded", "headers", "idle_since",
                 "in_message", "last", "local", "memo", "memo_data", "parser", "paused_for_body", "peer",
                 "port", "proxy", "queue", "transport", "url", "validator", "writing_paused")

    def __init__(self, proxy: IngressProxy, port: int) -> None:
        self.proxy = proxy
        self.port = b"%d" % port
        self.transport: asyncio.Transport = None  # type: ignore[assignment]
        self.parser = httptools.HttpRequestParser(self)
        self.validator = httptools.HttpRequestParser(NO_CALLBACKS)
        self.peer = b""
        self.local = b""
        self.forwarded = b""
        self.url = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.queue: list[Exchange] = []
        self.closed = False
        self.idle_since = proxy.now
        self.paused_for_body = False
        self.writing_paused = False
        # Parser position (inside a message or between two), and the last request head parsed
        # from a read that held exactly that request (see RequestHead).
        self.in_message = False
        self.completed = 0
        self.last: RequestHead | None = None
        self.memo_data: bytes | None = None
        self.memo: RequestHead | None = None
        self.block_data: bytes | None = None
        self.block = (b"", b"")

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        peer = transport.get_extra_info("peername") or ("", 0)
        self.peer = str(peer[0]).encode()
        local = transport.get_extra_info("sockname") or ("", 0)
        self.local = str(local[0]).encode()
        self.proxy.clients.add(self)

    def data_received(self, data: bytes) -> None:
        if not self.in_message:
            if data == self.memo_data:
                self.request(self.memo)  # type: ignore[arg-type]
                return
            end = data.find(b"\r\n\r\n")
            if end == len(data) - 4 and end > 0 and self._plain_head(data):
                return
        at_boundary = not self.in_message
        self.completed = 0
        self.last = None
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._reject(501, "Not Implemented")
            return
        except httptools.HttpParserError:
            self._reject(400, "Bad Request")
            return
        req = self.last
        if (at_boundary and req is not None and self.completed == 1 and not self.in_message
                and req.keep_alive and not req.has_body):
            self.memo_data, self.memo = data, req

    def _plain_head(self, data: bytes) -> bool:
        """Proxy a read that is exactly one request head with no body and no header the proxy
        edits (the common case) without the parser's per-header callbacks: llhttp only
        validates it, and the head goes upstream as it came plus the X-Forwarded-* lines (the
        header lines after the request line are examined once while a client repeats them).
        False: not such a head, the caller parses it."""
        line_end = data.find(b"\r\n")
        parts = data[:line_end].split(b" ")
        if len(parts) != 3 or parts[2] not in (b"HTTP/1.1", b"HTTP/1.0"):
            return False
        lines = data[line_end:]
        if lines == self.block_data:
            host, tail = self.block
        else:
            low = lines.lower()
            if EDITED_LINE.search(low) is not None or low.count(b"\nhost:") > 1:
                return False
            at = low.find(b"\nhost:")
            if at >= 0:
                host = lines[at + 6 : lines.find(b"\r", at)].strip(b" \t")
                head = lines[:-2]
            else:
                # HTTP/1.0 without Host: name the address the client connected to, as nginx does.
                host = b""
                head = lines[:-2] + b"Host: %b\r\n" % self.local
            if not self.forwarded:
                self.forwarded = (b"X-Real-IP: %b\r\nX-Forwarded-Port: %b\r\nX-Forwarded-Proto: http\r\n\r\n"
                                  % (self.peer, self.port))
            tail = (b"%bX-Forwarded-For: %b\r\nX-Forwarded-Host: %b\r\n%b"
                    % (head, self.peer, host, self.forwarded))
            self.block_data, self.block = lines, (host, tail)
        try:
            self.validator.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._reject(501, "Not Implemented")
            return True
        except httptools.HttpParserError:
            self._reject(400, "Bad Request")
            return True
        method, url, version = parts
        http11 = version == b"HTTP/1.1"
        upstream = data[:line_end] + tail if http11 else (
            b"%b %b HTTP/1.0\r\nConnection: keep-alive%b" % (method, url, tail))
        req = RequestHead(
            upstream,
            host,
            url.partition(b"?")[0],
            head_request=method == b"HEAD",
            keep_alive=http11,
            version="1.1" if http11 else "1.0",
            chunked=False,
            has_body=False,
        )
        if http11:
            self.memo_data, self.memo = data, req
        self.request(req)
        return True

    def _reject(self, status: int, reason: str) -> None:
        self.memo_data = self.memo = None
        if self.queue:
            self.abort()
            return
        self.transport.write(error_response(status, reason, close=True))
        self.transport.close()
        self.closed = True

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.proxy.clients.discard(self)
        for ex in self.queue:
            up = ex.upstream
            if up is not None:
                ex.release(up, keep_alive=False)
            elif ex.pool is not None:
                ex.pool.busy -= 1
                ex.pool = None
        self.queue.clear()

    def pause_writing(self) -> None:
        self.writing_paused = True
        if self.queue and self.queue[0].upstream is not None:
            up = self.queue[0].upstream
            if up.transport is not None:
                up.transport.pause_reading()

    def resume_writing(self) -> None:
        self.writing_paused = False
        if self.queue and self.queue[0].upstream is not None:
            up = self.queue[0].upstream
            if up.transport is not None:
                up.transport.resume_reading()

    def pause_for_body(self) -> None:
        """Stop reading while a request body waits for its upstream connection."""
        if not self.paused_for_body:
            self.paused_for_body = True
            self.transport.pause_reading()

    def resume(self) -> None:
        """Read again (the body has somewhere to go)."""
        self.paused_for_body = False
        self.transport.resume_reading()

    def abort(self) -> None:
        """Drop the client connection (a response broke off midway)."""
        self.closed = True
        self.transport.abort()

    # -- httptools callbacks (the request) -----------------------------------------------------

    def on_message_begin(self) -> None:
        self.in_message = True

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        parser = self.parser
        if parser.should_upgrade():
            return  # the parser raises HttpParserUpgrade next: 501, nothing goes upstream
        method = parser.get_method()
        version = parser.get_http_version()
        host = b""
        forwarded_for = b""
        chunked = False
        has_body = False
        # HTTP/1.0 clients are proxied as HTTP/1.0 (with keep-alive), so the pod never answers
        # them chunked and every response passes through with its own framing.
        lines = [b"%b %b HTTP/1.1\r\n" % (method, self.url) if version == "1.1" else
                 b"%b %b HTTP/1.0\r\nConnection: keep-alive\r\n" % (method, self.url)]
        for name, value in self.headers:
            low = name.lower()
            if low == b"host":
                host = value.rstrip(b" \t")  # llhttp keeps trailing whitespace
            elif low == b"content-length":
                has_body = value.strip() not in (b"0", b"")
            elif low in HOP_BY_HOP:
                if low == b"transfer-encoding":
                    chunked = True
                continue
            elif low == b"x-forwarded-for":
                forwarded_for = value + b", "
                continue
            elif low in FORWARDED:
                continue
            lines.append(b"%b: %b\r\n" % (name, value))
        if chunked:
            lines.append(b"Transfer-Encoding: chunked\r\n")
        if not host:
            # HTTP/1.0 without Host: name the address the client connected to, as nginx does.
            lines.append(b"Host: %b\r\n" % self.local)
        if not self.forwarded:
            self.forwarded = (b"X-Real-IP: %b\r\nX-Forwarded-Port: %b\r\nX-Forwarded-Proto: http\r\n\r\n"
                              % (self.peer, self.port))
        lines.append(b"X-Forwarded-For: %b%b\r\nX-Forwarded-Host: %b\r\n%b"
                     % (forwarded_for, self.peer, host, self.forwarded))
        req = RequestHead(
            b"".join(lines),
            host,
            self.url.partition(b"?")[0],
            head_request=method == b"HEAD",
            keep_alive=parser.should_keep_alive(),
            version=version,
            chunked=chunked,
            has_body=has_body or chunked,
        )
        self.url = b""
        self.headers = []
        self.last = req
        self.request(req)

    def on_body(self, body: bytes) -> None:
        if self.queue:
            self.queue[-1].request_body(body)

    def on_message_complete(self) -> None:
        self.in_message = False
        self.completed += 1
        if self.queue:
            self.queue[-1].request_done()

    # -- exchanges -----------------------------------------------------------------------------

    def request(self, req: RequestHead) -> None:
        """A request head arrived: queue its exchange, start it unless one is ahead."""
        ex = Exchange(self, req)
        queue = self.queue
        queue.append(ex)
        if len(queue) == 1:
            ex.start()

    def exchange_done(self, ex: Exchange) -> None:
        """The head exchange answered: close, or start the next pipelined request."""
        queue = self.queue
        if queue and queue[0] is ex:
            queue.pop(0)
        if self.closed:
            return
        if not ex.keep_alive:
            self.closed = True
            self.transport.close()
            return
        self.idle_since = self.proxy.now
        if queue:
            queue[0].start()


class IngressProxy:
    """The proxy's state: the route table, endpoints per backend, pools, open connections."""

    def __init__(self) -> None:
        self.routes = RouteTable()
        self.endpoints: dict[Backend, BackendEndpoints] = {}
        self.pools: dict[tuple[str, int], EndpointPool] = {}
        self.clients: set[ClientConnection] = set()
        self.answered: dict[int, int] = {}
        # A clock read per request would cost more than the timeouts it serves: the sweeper
        # advances this one every second.
        self.now = time.monotonic()
        # Bumped by every update: request heads re-route when theirs is older.
        self.generation = 0
        self._routes_seen: dict[tuple[bytes, bytes], tuple[Target | None, BackendEndpoints | None]] = {}
        self._failures = 0
        self._failure_logged = -10.0

    def update(self, routes: RouteTable, endpoints: dict[Backend, list[tuple[str, int, str]]]) -> None:
        """Swap in a new route table and endpoint lists; drain endpoints that left."""
        wanted: dict[tuple[str, int], EndpointPool] = {}
        fresh: dict[Backend, BackendEndpoints] = {}
        for backend, eps in endpoints.items():
            pools = []
            for ip, port, pod in eps:
                pool = wanted.get((ip, port)) or self.pools.get((ip, port))
                if pool is None or pool.draining:
                    pool = EndpointPool(ip, port, pod)
                pool.pod = pod
                wanted[(ip, port)] = pool
                pools.append(pool)
            old = self.endpoints.get(backend)
            fresh[backend] = BackendEndpoints(pools, old.next if old is not None else 0)
        for addr, pool in self.pools.items():
            if wanted.get(addr) is not pool:
                pool.drain()
        self.pools = wanted
        self.endpoints = fresh
        self.routes = routes
        self._routes_seen = {}
        self.generation += 1

    def route(self, host: bytes, path: bytes) -> tuple[Target | None, BackendEndpoints | None]:
        """The route table's answer for a Host header and path, and that backend's endpoints,
        remembered until the table changes (clients repeat the same few; a bounded cache)."""
        key = (host, path)
        seen = self._routes_seen
        found = seen.get(key)
        if found is None:
            target = self.routes.route(host.decode("latin-1"), path.decode("latin-1"))
            found = (target, self.endpoints.get(target.backend) if target is not None else None)
            if len(seen) >= ROUTE_CACHE_SIZE:
                seen.clear()
            seen[key] = found
        return found

    def note_connect_failure(self, pool: EndpointPool, exc: OSError) -> None:
        """Log (at most every 5 s) that connecting to a pod failed."""
        now = time.monotonic()
        self._failures += 1
        if now - self._failure_logged >= 5.0:
            log.warning("%d upstream connect failure(s): %s:%d (%s) %s", self._failures, pool.ip, pool.port,
                        pool.pod, exc.strerror or exc)
            self._failures, self._failure_logged = 0, now

    def sweep(self) -> None:
        """Time out slow upstream responses and idle clients (called every second): only the
        exchange at the head of a client's queue is ever upstream."""
        now = self.now = time.monotonic()
        for client in list(self.clients):
            if client.queue:
                ex = client.queue[0]
                up = ex.upstream
                if up is not None and not ex.response_started and now - up.sent_at > READ_TIMEOUT:
                    ex.timed_out(up)
            elif now - client.idle_since > CLIENT_IDLE_TIMEOUT:
                client.closed = True
                client.transport.close()

    async def run_sweeper(self) -> None:
        """Sweep forever."""
        while True:
            await asyncio.sleep(SWEEP_PERIOD)
            self.sweep()

    async def listen(self, host: str, port: int) -> asyncio.AbstractServer:
        """Accept client connections on ``host:port``."""
        loop = asyncio.get_running_loop()
        return await loop.create_server(
            lambda: ClientConnection(self, port), host, port, reuse_address=True, backlog=1024
        )

    def close(self) -> None:
        """Close every connection."""
        for client in list(self.clients):
            client.transport.close()
        for pool in self.pools.values():
            pool.drain()
