"""A tiny TCP forwarder for reliability tests: it can drop every connection, silently stall the
ones open now (bytes stop flowing, sockets stay open) while new connections work, or freeze
like a SIGSTOPped server (connections are accepted, nothing is ever answered)."""

from __future__ import annotations

import contextlib
import socket
import threading

from lab.launcher import free_port


class TcpProxy:
    """Forward 127.0.0.1:<port> to a target, with knobs to break the streams."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = free_port()
        self._server = socket.create_server(("127.0.0.1", self.port))
        self._lock = threading.Lock()
        self._pairs: list[tuple[socket.socket, socket.socket, threading.Event]] = []
        self._closed = False
        self._frozen = threading.Event()
        self._held: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            if self._frozen.is_set():
                with self._lock:
                    self._held.append(client)
                continue
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            stalled = threading.Event()
            with self._lock:
                self._pairs.append((client, upstream, stalled))
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(src, dst, stalled), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket, stalled: threading.Event) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if stalled.is_set():
                    continue  # swallowed: the peer sees a silent, open connection
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def drop_all(self) -> None:
        """Reset every open connection (like a restarting load balancer)."""
        with self._lock:
            pairs, self._pairs = self._pairs, []
        for client, upstream, _ in pairs:
            for sock in (client, upstream):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()

    def stall_all(self) -> None:
        """Stop forwarding on every open connection without closing it."""
        with self._lock:
            for _, _, stalled in self._pairs:
                stalled.set()

    def freeze(self) -> None:
        """Answer nothing from now on: open streams stall, new connections hang after connect."""
        self._frozen.set()
        self.stall_all()

    def thaw(self) -> None:
        """Work again: the frozen connections are reset (their bytes were lost), new ones forward."""
        self._frozen.clear()
        with self._lock:
            held, self._held = self._held, []
        for sock in held:
            sock.close()
        self.drop_all()

    def close(self) -> None:
        """Stop listening and drop everything."""
        self._closed = True
        self._server.close()
        self.drop_all()
