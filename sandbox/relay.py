"""Byte relays between sockets, driven by one epoll on the asyncio loop's thread.

Why it exists: relaying a short TCP connection through asyncio transports costs most of its
CPU in the transports themselves (creating two of them, getpeername/getsockname, a protocol
object, a future and a task for the connect, pause/resume bookkeeping). Here a connection is a
pair of plain sockets and a few slots; one ``select.epoll`` holds every socket, and its own fd
is registered with the running loop (``loop.add_reader``), so a single wake-up of the loop
handles every socket that is ready, on the loop's thread (no second thread, no GIL hand-off),
while the rest of the process (informers, timers, files) stays asyncio. Nothing here knows
about Services: the Service proxy and any other TCP relay (an ingress's upstream leg) use it.

How to use it, inside a running asyncio loop::

    poller = Poller()                          # registers its epoll with the running loop
    poller.listen(listening_socket, on_accept) # on_accept(sock, (ip, port)) per new connection
    relay = Relay(poller, sock)                # relays sock <-> the upstream it connects to
    relay.connect(("127.244.1.2", 8080))
    ...                                        # relay.up.count / relay.down.count: bytes so far
    poller.unlisten(listening_socket)          # closes it; pending connections are reset
    poller.close()

Subclass ``Relay`` and override ``finished(exc)`` to learn when a relay has ended (called once;
``exc`` is None for an orderly end, else the error; ``relay.connected`` tells a failed connect).

What a relay guarantees:

- bytes flow both ways untouched; TCP_NODELAY on both sockets (accepted ones inherit it
  from a listener that has it, see ``listening_socket``);
- flow control: at most one buffer (64 KiB) per direction is held in user space; while a
  peer does not take bytes, the other side is not read, so the kernel's windows push back;
- half-close: EOF from one side becomes ``shutdown(SHUT_WR)`` on the other; both sockets are
  closed once both directions ended;
- an error on either side (reset, broken pipe, a refused connect) resets the other (RST,
  ``SO_LINGER`` 0), as a NAT path passes a reset on;
- thousands of connections per second to one loopback address exhaust the ephemeral ports
  (every 4-tuple stays in TIME-WAIT a minute): on EADDRNOTAVAIL the connect is retried from
  a random source address in 127.253.0.0/16 with its own port range.

Sockets are edge-triggered (registered once, never modified; a short read means "drained"
unless the peer's FIN was seen with the data). Accepted sockets keep their blocking flag (it
saves a syscall per connection); every recv/send here passes MSG_DONTWAIT instead, so a
caller that takes an accepted socket elsewhere must ``setblocking(False)`` it first.
"""

from __future__ import annotations

import _socket
import asyncio
import collections
import contextlib
import errno
import logging
import os
import random
import select
import socket
import struct
import threading
from collections.abc import Callable
from typing import cast

log = logging.getLogger("sandbox.relay")

BUFFER = 64 * 1024
ACCEPT_BATCH = 64
ACCEPT_RETRY = 1.0
POLL_BATCH = 1024
LINGER_RST = struct.pack("ii", 1, 0)
IP_BIND_ADDRESS_NO_PORT = getattr(socket, "IP_BIND_ADDRESS_NO_PORT", 24)
SPARE_SOURCE_TRIES = 4

_EDGE = select.EPOLLIN | select.EPOLLOUT | select.EPOLLRDHUP | select.EPOLLET
_IN = select.EPOLLIN | select.EPOLLRDHUP | select.EPOLLHUP | select.EPOLLERR
_OUT = select.EPOLLOUT | select.EPOLLHUP | select.EPOLLERR
_FIN = select.EPOLLRDHUP | select.EPOLLHUP | select.EPOLLERR
_ERR = select.EPOLLERR
_DONTWAIT = socket.MSG_DONTWAIT
_NOSIGNAL = socket.MSG_DONTWAIT | socket.MSG_NOSIGNAL
_MORE = _NOSIGNAL | socket.MSG_MORE
_AF_INET = socket.AF_INET
_STREAM = socket.SOCK_STREAM
_NONBLOCK_STREAM = socket.SOCK_STREAM | socket.SOCK_NONBLOCK
_TCP = socket.IPPROTO_TCP
_NODELAY = socket.TCP_NODELAY
# The C socket type: no Python-level __init__ per connection (socket.socket is a subclass).
_Socket = cast("type[socket.socket]", _socket.socket)


def reset(sock: socket.socket) -> None:
    """Close ``sock`` with a RST instead of a FIN (what a REJECT or a reset path looks like)."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER_RST)
    sock.close()


def listening_socket(host: str, port: int, *, backlog: int = 1024) -> socket.socket:
    """A non-blocking TCP listener with SO_REUSEADDR and TCP_NODELAY (inherited by what it
    accepts); raises OSError when the address cannot be bound."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(_TCP, _NODELAY, 1)
        sock.bind((host, port))
        sock.listen(backlog)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


class Poller:
    """One epoll for many sockets, and the thread that runs their handlers.

    By default the epoll's own fd is watched by the running asyncio loop and drained from it
    (the handlers run on the loop's thread). With ``thread=True`` a thread of its own blocks in
    ``epoll_wait`` and runs them: one syscall per wake-up instead of the loop's wait plus ours,
    and no loop machinery per batch. The asyncio side then hands work over with ``call()``
    (``register`` and ``listen`` may be called from any thread)."""

    def __init__(self, loop: asyncio.AbstractEventLoop | None = None, *, thread: bool = False) -> None:
        self.epoll = select.epoll()
        self.handlers: dict[int, Callable[[int], None]] = {}
        self.buffer = bytearray(BUFFER)
        self.view = memoryview(self.buffer)
        self.loop: asyncio.AbstractEventLoop | None = None
        self.thread: threading.Thread | None = None
        self._calls: collections.deque[tuple[Callable[..., None], tuple]] = collections.deque()
        self._running = True
        if thread:
            self._wake = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
            self.register(self._wake, select.EPOLLIN, self._run_calls)
            self.thread = threading.Thread(target=self._run, name="relay", daemon=True)
            self.thread.start()
        else:
            self.loop = loop or asyncio.get_running_loop()
            self.loop.add_reader(self.epoll.fileno(), self._drain)

    def call(self, fn: Callable[..., None], *args: object) -> None:
        """Run ``fn(*args)`` on the poller's thread (at once when there is no thread of its own)."""
        if self.thread is None:
            fn(*args)
            return
        self._calls.append((fn, args))
        os.eventfd_write(self._wake, 1)

    def register(self, fd: int, events: int, handler: Callable[[int], None]) -> None:
        """Call ``handler(events)`` whenever ``fd`` is ready (the fd must stay open while registered)."""
        self.handlers[fd] = handler
        self.epoll.register(fd, events)

    def forget(self, fd: int) -> None:
        """Drop ``fd``'s handler; closing the fd takes it out of the epoll (no syscall needed)."""
        self.handlers.pop(fd, None)

    def unregister(self, fd: int) -> None:
        """Stop watching an fd that stays open."""
        self.handlers.pop(fd, None)
        with contextlib.suppress(OSError, ValueError):
            self.epoll.unregister(fd)

    def listen(self, sock: socket.socket, on_accept: Callable[[socket.socket, tuple], None]) -> None:
        """Accept on a non-blocking listener; ``on_accept(sock, address)`` for every connection."""
        lfd = sock.fileno()
        family = sock.family
        accept = sock._accept  # type: ignore[attr-defined]

        def accepted(events: int) -> None:
            for _ in range(ACCEPT_BATCH):
                try:
                    fd, address = accept()
                except (BlockingIOError, InterruptedError):
                    return
                except OSError as exc:
                    # EMFILE, ENOBUFS, ...: leave the rest queued and pause this listener (as
                    # asyncio does), instead of spinning on a listener that stays readable.
                    log.warning(
                        "accept on %s failed: %s; retrying in %gs", sock.getsockname(), exc.strerror or exc,
                        ACCEPT_RETRY,
                    )
                    self.epoll.modify(lfd, 0)
                    self.call_later(ACCEPT_RETRY, resume)
                    return
                on_accept(_Socket(family, _STREAM, 0, fd), address)

        def resume() -> None:
            if self.handlers.get(lfd) is accepted:
                with contextlib.suppress(OSError, ValueError):
                    self.epoll.modify(lfd, select.EPOLLIN)

        self.register(lfd, select.EPOLLIN, accepted)

    def call_later(self, delay: float, fn: Callable[[], None]) -> None:
        """Run ``fn()`` on the poller's thread after ``delay`` seconds (for rare events only)."""
        if self.thread is None:
            assert self.loop is not None
            self.loop.call_later(delay, fn)
            return
        timer = threading.Timer(delay, self.call, (fn,))
        timer.daemon = True
        timer.start()

    def unlisten(self, sock: socket.socket) -> None:
        """Stop accepting and close the listener (connections still queued in it get a reset)."""
        self.call(self._unlisten, sock)

    def _unlisten(self, sock: socket.socket) -> None:
        self.forget(sock.fileno())
        sock.close()

    def _drain(self) -> None:
        """The epoll is readable (asyncio mode): run the handler of every ready socket."""
        self._dispatch(self.epoll.poll(0, POLL_BATCH))

    def _run(self) -> None:
        """The poller's own thread: wait, run the handlers, until ``stop()``."""
        poll = self.epoll.poll
        while self._running:
            self._dispatch(poll(-1, POLL_BATCH))

    def _dispatch(self, ready: list[tuple[int, int]]) -> None:
        handlers = self.handlers
        for fd, events in ready:
            handler = handlers.get(fd)
            if handler is not None:
                try:
                    handler(events)
                except Exception:
                    log.exception("relay handler for fd %d failed", fd)

    def _run_calls(self, events: int) -> None:
        """Work handed over by ``call()``."""
        with contextlib.suppress(BlockingIOError):
            os.eventfd_read(self._wake)
        calls = self._calls
        while calls:
            fn, args = calls.popleft()
            fn(*args)

    def _stop(self) -> None:
        self._running = False

    def stop(self) -> None:
        """Stop running handlers (joins the poller's thread); then the caller owns every socket."""
        if self.thread is not None:
            self.call(self._stop)
            self.thread.join()
            self.thread = None
            self.forget(self._wake)
            os.close(self._wake)
        elif self.loop is not None:
            self.loop.remove_reader(self.epoll.fileno())
            self.loop = None

    def close(self) -> None:
        """Stop, and close the epoll (the caller closes its sockets)."""
        self.stop()
        self.handlers.clear()
        self.epoll.close()


class Leg:
    """One direction of a relay: bytes read from ``src`` are sent to ``dst``."""

    __slots__ = ("count", "dst", "eof", "pending", "src")

    # No reference back to the relay (it is passed in): without a cycle, a finished connection
    # is freed at once by reference counting, not left for the cyclic GC, whose full passes
    # would walk the whole process (informer caches included) while every relay waits.
    def __init__(self, src: socket.socket) -> None:
        self.src = src
        self.dst: socket.socket = None  # type: ignore[assignment]
        self.pending: bytes | None = None
        self.eof = False
        self.count = 0

    def pump(self, relay: Relay, fin: int) -> None:
        """Move what ``src`` has to ``dst`` until ``src`` is empty or ``dst`` is full.

        With edge-triggered readiness a short read means the socket is empty. ``fin`` is the
        FIN/error bits of the readiness event: a FIN seen before the read comes after all the
        data, so a short read then also means EOF (no second read to learn it); after an
        error, read on to learn which."""
        if self.pending is not None or self.eof:
            return
        src, dst = self.src, self.dst
        poller = relay.poller
        buf, view = poller.buffer, poller.view
        while True:
            try:
                n = src.recv_into(buf, BUFFER, _DONTWAIT)
            except BlockingIOError:
                return
            except InterruptedError:
                continue
            except OSError as exc:
                relay.abort(exc)
                return
            if n == 0:
                self.eof = True
                relay.ended(self)
                return
            self.count += n
            # The last bytes before a FIN already seen: MSG_MORE holds them back for the FIN
            # that ended() sends at once, so both leave in one segment.
            last = n < BUFFER and fin and not fin & _ERR
            try:
                sent = dst.send(view[:n], _MORE if last else _NOSIGNAL)
            except BlockingIOError:
                sent = 0
            except OSError as exc:
                relay.abort(exc)
                return
            if sent < n:
                self.pending = bytes(view[sent:n])  # flush() sends it without MSG_MORE
                return
            if last:
                self.eof = True
                relay.ended(self)
                return
            if n < BUFFER and not fin:
                return

    def flush(self, relay: Relay) -> None:
        """``dst`` has room again: send what waits, then read ``src`` again."""
        pending = self.pending
        if pending is None:
            return
        try:
            sent = self.dst.send(pending, _NOSIGNAL)
        except BlockingIOError:
            return
        except OSError as exc:
            relay.abort(exc)
            return
        if sent < len(pending):
            self.pending = pending[sent:]
            return
        self.pending = None
        self.pump(relay, select.EPOLLERR)


class Relay:
    """A client socket and the upstream connection made for it, relayed both ways."""

    __slots__ = ("a", "b", "closed", "connected", "down", "early", "poller", "up")

    def __init__(self, poller: Poller, sock: socket.socket) -> None:
        self.poller = poller
        self.a = sock
        self.b: socket.socket | None = None
        self.up = Leg(sock)
        self.down = Leg(sock)
        self.up.dst = sock  # replaced by the upstream socket in connect()
        self.down.dst = sock
        self.connected = False
        self.closed = False
        self.early = 0
        poller.register(sock.fileno(), _EDGE, self._on_a)

    def connect(self, address: tuple[str, int]) -> None:
        """Connect (non-blocking) to ``address``; the relay starts once the connection is up."""
        try:
            b = self._dial(address, None)
            for _ in range(SPARE_SOURCE_TRIES):
                if b is not None:
                    break
                b = self._dial(address, f"127.253.{random.randint(0, 255)}.{random.randint(1, 254)}")
            if b is None:
                raise OSError(errno.EADDRNOTAVAIL, "Cannot assign requested address")
        except OSError as exc:
            self.abort(exc)
            return
        self.b = b
        self.up.dst = b
        self.down.src = b
        self.poller.register(b.fileno(), _EDGE, self._on_b)

    @staticmethod
    def _dial(address: tuple[str, int], source: str | None) -> socket.socket | None:
        """A socket connecting to ``address`` (from ``source`` if given), or None when the
        source has no free port for it (EADDRNOTAVAIL); other errors raise."""
        b = _Socket(_AF_INET, _NONBLOCK_STREAM, 0)
        try:
            b.setsockopt(_TCP, _NODELAY, 1)
            if source is not None:
                b.setsockopt(socket.IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, 1)
                b.bind((source, 0))
            err = b.connect_ex(address)
        except BaseException:
            b.close()
            raise
        if err == 0 or err == errno.EINPROGRESS:
            return b
        b.close()
        if err == errno.EADDRNOTAVAIL:
            return None
        raise OSError(err, errno.errorcode.get(err, str(err)))

    def _on_a(self, events: int) -> None:
        """The client socket is ready."""
        if not self.connected:
            self.early |= events & _IN  # its bytes wait in the kernel until the upstream is up
            return
        if events & _OUT:
            self.down.flush(self)
        if events & _IN and not self.closed:
            self.up.pump(self, events & _FIN)

    def _on_b(self, events: int) -> None:
        """The upstream socket is ready (the first time: its connect finished)."""
        if not self.connected:
            if events & (select.EPOLLERR | select.EPOLLHUP):
                assert self.b is not None
                err = self.b.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if err:
                    self.abort(OSError(err, errno.errorcode.get(err, str(err))))
                    return
            if not events & select.EPOLLOUT:
                return
            self.connected = True
            if self.early:  # the client's bytes (or FIN) came first: read them now
                self.up.pump(self, self.early & _FIN)
                if self.closed:
                    return
        elif events & _OUT:
            self.up.flush(self)
        if events & _IN and not self.closed:
            self.down.pump(self, events & _FIN)

    def ended(self, leg: Leg) -> None:
        """``leg``'s source sent its FIN: half-close the other side, or close once both ended."""
        other = self.down if leg is self.up else self.up
        if other.eof and other.pending is None:
            self.close()
            return
        try:
            leg.dst.shutdown(socket.SHUT_WR)
        except OSError as exc:
            self.abort(exc)

    def close(self, exc: OSError | None = None) -> None:
        """Close both sockets (orderly); ``finished`` is told once."""
        if self.closed:
            return
        self.closed = True
        poller = self.poller
        poller.forget(self.a.fileno())
        self.a.close()
        if self.b is not None:
            poller.forget(self.b.fileno())
            self.b.close()
        self.finished(exc)

    def abort(self, exc: OSError) -> None:
        """Reset both sockets: one side failed (or the connect did)."""
        if self.closed:
            return
        for sock in (self.a, self.b):
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER_RST)
        self.close(exc)

    def finished(self, exc: OSError | None) -> None:
        """Called once when the relay has ended; override to account for it."""
