"""The Service proxy's data plane (``sandbox.relay``) over real loopback sockets: bytes and byte
counts both ways, half-close in each direction, a slow reader holding the sender back instead
of the relay buffering the stream, resets passed on, many connections at once. Each test runs
with the poller on a thread of its own (what the proxy uses) and on an asyncio loop. The last
test drives the proxy's own object (listener, endpoint choice, reset, table) the same way."""

from __future__ import annotations

import asyncio
import hashlib
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from sandbox.client import ApiClient
from sandbox.proxy import Endpoint, Listener, Proxy, ServicePort
from sandbox.relay import BUFFER, Poller, Relay, listening_socket
from tests import polling

TIMEOUT = 30.0


class Tracked(Relay):
    """A relay that records how it ended."""

    __slots__ = ("ended_with",)

    def __init__(self, poller: Poller, sock: socket.socket, ended_with: list) -> None:
        super().__init__(poller, sock)
        self.ended_with = ended_with

    def finished(self, exc: OSError | None) -> None:
        self.ended_with.append((self, exc))


class Front:
    """A relay listener in front of one upstream address."""

    def __init__(self, poller: Poller, upstream: tuple[str, int]) -> None:
        self.poller = poller
        self.ended: list[tuple[Tracked, OSError | None]] = []
        self.sock = listening_socket("127.0.0.1", 0)
        self.address = self.sock.getsockname()
        poller.listen(self.sock, lambda sock, peer: Tracked(poller, sock, self.ended).connect(upstream))

    def client(self) -> socket.socket:
        """A new client connection through the relay."""
        return socket.create_connection(self.address, timeout=TIMEOUT)

    def wait_ended(self, count: int = 1) -> list[tuple[Tracked, OSError | None]]:
        """Wait until ``count`` relays have ended; return how."""
        polling.wait_until(lambda: len(self.ended) >= count, timeout=TIMEOUT, what=f"{count} relays to end")
        return self.ended


@pytest.fixture(params=["thread", "asyncio"])
def poller(request: pytest.FixtureRequest) -> Iterator[Poller]:
    """A poller on its own thread, or one drained by an asyncio loop running in a thread."""
    if request.param == "thread":
        p = Poller(thread=True)
        yield p
        p.close()
        return
    loop = asyncio.new_event_loop()
    runner = threading.Thread(target=loop.run_forever, daemon=True)
    runner.start()

    async def make() -> Poller:
        return Poller()

    p = asyncio.run_coroutine_threadsafe(make(), loop).result(TIMEOUT)
    yield p
    loop.call_soon_threadsafe(p.close)
    loop.call_soon_threadsafe(loop.stop)
    runner.join(TIMEOUT)
    loop.close()


class Upstream:
    """A one-connection-at-a-time TCP server on loopback running ``serve(conn)`` per connection."""

    def __init__(self, serve: Callable[[socket.socket], None], *, connections: int = 1) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0), backlog=256)
        self.address = self.sock.getsockname()
        self.errors: list[BaseException] = []
        self.thread = threading.Thread(target=self._run, args=(serve, connections), daemon=True)
        self.thread.start()

    def _run(self, serve: Callable[[socket.socket], None], connections: int) -> None:
        workers = []
        for _ in range(connections):
            conn, _ = self.sock.accept()
            conn.settimeout(TIMEOUT)
            worker = threading.Thread(target=self._serve, args=(serve, conn), daemon=True)
            worker.start()
            workers.append(worker)
        for worker in workers:
            worker.join(TIMEOUT)

    def _serve(self, serve: Callable[[socket.socket], None], conn: socket.socket) -> None:
        try:
            with conn:
                serve(conn)
        except BaseException as exc:  # reported by join()
            self.errors.append(exc)

    def join(self) -> None:
        """Wait for the server to finish; fail with what went wrong on its side."""
        self.thread.join(TIMEOUT)
        self.sock.close()
        assert not self.thread.is_alive(), "the upstream server did not finish"
        assert not self.errors, self.errors


def read_to_eof(sock: socket.socket) -> bytes:
    """Everything until the peer's FIN."""
    chunks = []
    while chunk := sock.recv(1 << 16):
        chunks.append(chunk)
    return b"".join(chunks)


def echo(conn: socket.socket) -> None:
    """Echo until EOF, then close."""
    while data := conn.recv(1 << 16):
        conn.sendall(data)


def test_bytes_flow_both_ways_and_are_counted(poller: Poller) -> None:
    upstream = Upstream(echo)
    front = Front(poller, upstream.address)
    payload = bytes(range(256)) * 1200  # 307,200 bytes: several buffers' worth
    with front.client() as client:

        def send() -> None:
            client.sendall(payload)
            client.shutdown(socket.SHUT_WR)

        sender = threading.Thread(target=send)
        sender.start()
        assert read_to_eof(client) == payload
        sender.join(TIMEOUT)
    upstream.join()
    [(relay, exc)] = front.wait_ended()
    assert exc is None
    assert (relay.up.count, relay.down.count) == (len(payload), len(payload))


def test_the_clients_half_close_reaches_the_upstream_which_still_answers(poller: Poller) -> None:
    def answer_after_eof(conn: socket.socket) -> None:
        request = read_to_eof(conn)
        conn.sendall(b"got " + request + b" and your FIN")

    upstream = Upstream(answer_after_eof)
    front = Front(poller, upstream.address)
    with front.client() as client:
        client.sendall(b"ping")
        client.shutdown(socket.SHUT_WR)
        assert read_to_eof(client) == b"got ping and your FIN"
    upstream.join()
    assert front.wait_ended()[0][1] is None


def test_the_upstreams_half_close_reaches_the_client_which_can_still_send(poller: Poller) -> None:
    received: list[bytes] = []

    def greet_then_listen(conn: socket.socket) -> None:
        conn.sendall(b"hello")
        conn.shutdown(socket.SHUT_WR)
        received.append(read_to_eof(conn))

    upstream = Upstream(greet_then_listen)
    front = Front(poller, upstream.address)
    with front.client() as client:
        assert read_to_eof(client) == b"hello"
        client.sendall(b"still talking after your FIN")
        client.shutdown(socket.SHUT_WR)
        upstream.join()
        assert read_to_eof(client) == b""
    assert received == [b"still talking after your FIN"]
    assert front.wait_ended()[0][1] is None


def _max_socket_buffers() -> int:
    """The most a loopback TCP path's kernel buffers can hold: the relay's two sockets and the
    two ends' (send buffer maximum + receive buffer maximum, autotuning included)."""
    rmem = int(Path("/proc/sys/net/ipv4/tcp_rmem").read_text().split()[2])
    wmem = int(Path("/proc/sys/net/ipv4/tcp_wmem").read_text().split()[2])
    return 2 * (rmem + wmem)


def test_a_slow_reader_holds_the_sender_back_instead_of_the_relay_buffering(poller: Poller) -> None:
    """The upstream streams far more than every buffer on the path can hold; while the client
    does not read, the upstream's sends stall within those buffers (plus the relay's one
    buffer), and the whole stream arrives intact once the client reads."""
    bound = _max_socket_buffers() + BUFFER
    total = bound + 32 * 2**20
    chunk = hashlib.sha256(b"relay").digest() * 2048  # 64 KiB
    sent = [0]
    digest = hashlib.sha256()

    def stream(conn: socket.socket) -> None:
        while sent[0] < total:
            conn.sendall(chunk)
            sent[0] += len(chunk)

    upstream = Upstream(stream)
    front = Front(poller, upstream.address)
    with front.client() as client:
        first = client.recv(1 << 16)
        digest.update(first)

        history: list[int] = []

        def stalled() -> bool:
            history.append(sent[0])
            return len(history) >= 5 and len(set(history[-5:])) == 1

        polling.wait_until(stalled, timeout=TIMEOUT, interval=0.2, what="the upstream's sends to stall")
        assert sent[0] - len(first) <= bound, f"{sent[0] - len(first)} bytes in flight"
        got = len(first)
        while got < total:
            data = client.recv(1 << 20)
            assert data, f"EOF after {got} of {total} bytes"
            digest.update(data)
            got += len(data)
    upstream.join()
    expected = hashlib.sha256()
    for _ in range(total // len(chunk)):
        expected.update(chunk)
    assert got == total and digest.hexdigest() == expected.hexdigest()


def test_a_refused_connect_resets_the_client(poller: Poller) -> None:
    closed = socket.create_server(("127.0.0.1", 0))
    address = closed.getsockname()
    closed.close()
    front = Front(poller, address)
    # The reset may come before the client's connect() has returned, or after.
    with pytest.raises(ConnectionResetError), front.client() as client:
        client.sendall(b"GET / HTTP/1.1\r\n\r\n")
        client.recv(100)
    [(relay, exc)] = front.wait_ended()
    assert not relay.connected and isinstance(exc, ConnectionRefusedError)


def test_an_upstream_reset_resets_the_client(poller: Poller) -> None:
    def reset_after_reading(conn: socket.socket) -> None:
        conn.recv(100)
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")

    upstream = Upstream(reset_after_reading)
    front = Front(poller, upstream.address)
    with pytest.raises(ConnectionResetError), front.client() as client:
        client.sendall(b"hello")
        client.recv(100)
    upstream.join()
    assert isinstance(front.wait_ended()[0][1], ConnectionResetError)


def test_many_connections_at_once_each_get_their_own_bytes(poller: Poller) -> None:
    count = 200
    upstream = Upstream(echo, connections=count)
    front = Front(poller, upstream.address)
    clients = [front.client() for _ in range(count)]
    for i, client in enumerate(clients):
        client.sendall(f"connection {i}".encode() * 100)
        client.shutdown(socket.SHUT_WR)
    for i, client in enumerate(clients):
        assert read_to_eof(client) == f"connection {i}".encode() * 100
        client.close()
    upstream.join()
    ended = front.wait_ended(count)
    assert all(exc is None for _, exc in ended)
    polling.wait_until(
        lambda: set(poller.handlers) <= {front.sock.fileno(), getattr(poller, "_wake", -1)},
        timeout=TIMEOUT,
        what="every relayed socket to be let go",
    )


@pytest.fixture
def proxy(tmp_path: Path) -> Iterator[tuple[Proxy, Callable]]:
    """The Service proxy's own object on an asyncio loop in a thread, fed by the test instead of
    informers (it never talks to an API server); ``run(fn)`` calls ``fn`` on its loop."""
    loop = asyncio.new_event_loop()
    runner = threading.Thread(target=loop.run_forever, daemon=True)
    runner.start()

    def run(fn: Callable) -> object:
        async def call() -> object:
            result = fn()
            return await result if asyncio.iscoroutine(result) else result

        return asyncio.run_coroutine_threadsafe(call(), loop).result(TIMEOUT)

    client = ApiClient(base_url="https://127.0.0.1:1", token="unused")
    made = run(lambda: Proxy(client, state_dir=tmp_path, mode="round-robin"))
    assert isinstance(made, Proxy)
    yield made, run
    run(made.close)
    loop.call_soon_threadsafe(loop.stop)
    runner.join(TIMEOUT)
    loop.close()


def test_the_proxy_resets_a_connection_when_no_endpoint_is_left_and_counts_the_rest(
    proxy: tuple[Proxy, Callable],
) -> None:
    """A connection accepted while its Service has no endpoint gets a RST (the instant between
    the last endpoint leaving and the listener closing); with an endpoint, the connection table
    lists it with its bytes; closing the proxy closes its listeners."""
    service, run = proxy
    key = "default/web:http"
    port = socket.create_server(("127.0.0.1", 0))
    address = port.getsockname()
    port.close()
    service.service_ports[key] = ServicePort(key, "round-robin")
    listener = service.listeners[address] = Listener(key, *address)
    run(lambda: service._listen(listener))
    with pytest.raises(ConnectionResetError), socket.create_connection(address, timeout=TIMEOUT) as client:
        client.recv(100)

    upstream = Upstream(echo)
    service.service_ports[key].endpoints = [Endpoint(upstream.address[0], upstream.address[1], "web-0")]
    with socket.create_connection(address, timeout=TIMEOUT) as client:
        client.sendall(b"x" * 1000)
        assert client.recv(2000, socket.MSG_WAITALL) == b"x" * 1000
        table = run(service.table)
        assert isinstance(table, dict)
        [row] = table["connections"]
        assert row["client"] == "{}:{}".format(*client.getsockname())
        assert (row["service"], row["pod"], row["bytesIn"], row["bytesOut"]) == (key, "web-0", 1000, 1000)
        assert row["endpoint"] == "{}:{}".format(*upstream.address)
        run(service.close)
        assert client.recv(100) == b""
    upstream.join()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(address, timeout=TIMEOUT)
