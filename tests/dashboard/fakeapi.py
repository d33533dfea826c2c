"""A minimal Kubernetes API for socket-level dashboard tests and benches: LIST and WATCH only.

It serves the collections the dashboard's hub watches (pods, replicasets, deployments,
endpointslices, services, events in ``default``, and nodes) from memory, over plain HTTP on
loopback, so a real daphne can watch a cluster of any shape — 10,000 pods, or objects no real
API server would normalise — that the test changes directly (:meth:`FakeApi.put`,
:meth:`FakeApi.delete`). Watches stream one JSON event per line and honour
``timeoutSeconds`` and send a BOOKMARK every few seconds (``allowWatchBookmarks``), LISTs
carry the current resourceVersion, ``/version`` answers the hub's liveness probe, and every
write (the dashboard's actions, the serving-gate rule) is refused with 405 — unless
:attr:`FakeApi.accepts_status_patches` is set: then a strategic merge patch of a pod's
``status.conditions`` (``pods/<name>/status``, merged by type) is applied and watched like a real
one. :attr:`FakeApi.requests` counts what was asked (``("LIST", "Pod")``, ``("WATCH", "Pod")``,
``("PATCH", "Pod")``). Two switches break
it like a real API server breaks: :attr:`FakeApi.failing` answers every LIST and WATCH with that
HTTP status (``/version`` still answers), :attr:`FakeApi.silent` makes it answer nothing at all
(requests and open watches hang, like a SIGSTOPped process) until cleared.
"""

from __future__ import annotations

import json
import queue
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import yaml

BOOKMARK_INTERVAL = 2.0

COLLECTIONS = {
    "/api/v1/namespaces/default/pods": "Pod",
    "/apis/apps/v1/namespaces/default/replicasets": "ReplicaSet",
    "/apis/apps/v1/namespaces/default/deployments": "Deployment",
    "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices": "EndpointSlice",
    "/api/v1/namespaces/default/services": "Service",
    "/api/v1/namespaces/default/events": "Event",
    "/api/v1/nodes": "Node",
}


class FakeApi:
    """The objects, the resourceVersion counter and the open watches."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.rv = 1
        self.objects: dict[str, dict[str, dict[str, Any]]] = {kind: {} for kind in COLLECTIONS.values()}
        self.watches: dict[str, list[queue.Queue[bytes | None]]] = {kind: [] for kind in COLLECTIONS.values()}
        self.failing: int | None = None
        self.accepts_status_patches = False
        self.requests: Counter[tuple[str, str]] = Counter()
        self.silent = threading.Event()
        self.stopping = threading.Event()
        handler = type("Handler", (_Handler,), {"api": self})
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        """Where the API listens."""
        return f"http://127.0.0.1:{self.port}"

    def kubeconfig(self, path: Path) -> Path:
        """Write a kubeconfig pointing at this API and return its path."""
        path.write_text(yaml.safe_dump({
            "apiVersion": "v1", "kind": "Config", "current-context": "fake",
            "clusters": [{"name": "fake", "cluster": {"server": self.url}}],
            "users": [{"name": "fake", "user": {"token": "fake"}}],
            "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "fake"}}],
        }))
        return path

    def _stamp(self, obj: dict[str, Any]) -> dict[str, Any]:
        self.rv += 1
        obj = json.loads(json.dumps(obj))
        obj.setdefault("metadata", {})["resourceVersion"] = str(self.rv)
        return obj

    def put(self, kind: str, obj: dict[str, Any]) -> None:
        """Create or replace an object; open watches see ADDED or MODIFIED."""
        self.put_many(kind, [obj])

    def put_many(self, kind: str, objs: list[dict[str, Any]]) -> None:
        """Create or replace several objects at once."""
        with self.lock:
            for obj in objs:
                stamped = self._stamp(obj)
                name = stamped["metadata"]["name"]
                event = "MODIFIED" if name in self.objects[kind] else "ADDED"
                self.objects[kind][name] = stamped
                self._emit(kind, event, stamped)

    def delete(self, kind: str, name: str) -> None:
        """Delete an object; open watches see DELETED."""
        with self.lock:
            obj = self.objects[kind].pop(name, None)
            if obj is not None:
                self._emit(kind, "DELETED", self._stamp(obj))

    def patch_pod_conditions(self, name: str, conditions: list[dict[str, Any]]) -> dict[str, Any] | None:
        """Merge conditions into a pod's status by type (a status strategic merge patch); the new
        pod, or None when there is no such pod."""
        with self.lock:
            pod = self.objects["Pod"].get(name)
            if pod is None:
                return None
            pod = json.loads(json.dumps(pod))
            status = pod.setdefault("status", {})
            merged = {c.get("type"): c for c in status.get("conditions") or []}
            merged.update({c.get("type"): c for c in conditions})
            status["conditions"] = list(merged.values())
            stamped = self._stamp(pod)
            self.objects["Pod"][name] = stamped
            self._emit("Pod", "MODIFIED", stamped)
            return stamped

    def _emit(self, kind: str, event: str, obj: dict[str, Any]) -> None:
        line = json.dumps({"type": event, "object": obj}).encode() + b"\n"
        for q in self.watches[kind]:
            q.put(line)

    def end_watches(self) -> None:
        """End every open watch stream cleanly (the server's timeout), so clients watch again."""
        with self.lock:
            for queues in self.watches.values():
                for q in queues:
                    q.put(None)

    def stop(self) -> None:
        """Stop serving and end every watch."""
        self.stopping.set()
        self.silent.clear()
        with self.lock:
            for queues in self.watches.values():
                for q in queues:
                    q.put(None)
        self.server.shutdown()
        self.server.server_close()


class _Handler(BaseHTTPRequestHandler):
    api: FakeApi
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""

    def _count(self, verb: str, what: str) -> None:
        with self.api.lock:
            self.api.requests[(verb, what)] += 1

    def _refuse(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        parts = urlsplit(self.path).path.strip("/").split("/")
        status_patch = (self.command == "PATCH" and len(parts) == 7 and parts[4] == "pods"
                        and parts[6] == "status")
        self._count(self.command, "Pod" if status_patch else self.path)
        if status_patch and self.api.accepts_status_patches:
            conditions = ((json.loads(body or b"{}").get("status") or {}).get("conditions")) or []
            pod = self.api.patch_pod_conditions(parts[5], conditions)
            if pod is not None:
                self._json(200, pod)
                return
            self._json(404, {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 404,
                             "reason": "NotFound", "message": f'pods "{parts[5]}" not found'})
            return
        self._json(405, {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 405,
                         "reason": "MethodNotAllowed", "message": "the fake API only lists and watches"})

    do_POST = do_PUT = do_PATCH = do_DELETE = _refuse

    def do_GET(self) -> None:
        """LIST or WATCH a collection."""
        while self.api.silent.is_set() and not self.api.stopping.is_set():
            time.sleep(0.05)
        parts = urlsplit(self.path)
        if parts.path.rstrip("/") == "/version":
            self._json(200, {"major": "1", "minor": "37", "gitVersion": "v1.37.0-fake", "gitCommit": "0" * 40,
                             "gitTreeState": "clean", "buildDate": "2026-11-01T00:00:00Z",
                             "goVersion": "go1.25.0", "compiler": "gc", "platform": "linux/amd64"})
            return
        kind = COLLECTIONS.get(parts.path)
        if kind is None:
            self._json(404, {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 404,
                             "reason": "NotFound", "message": "not served"})
            return
        if self.api.failing:
            self._json(self.api.failing, {"kind": "Status", "apiVersion": "v1", "status": "Failure",
                                          "code": self.api.failing, "message": "the fake API is failing"})
            return
        query = parse_qs(parts.query)
        if query.get("watch", [""])[0] in {"true", "1"}:
            self._count("WATCH", kind)
            self._watch(kind, float(query.get("timeoutSeconds", ["300"])[0]))
            return
        self._count("LIST", kind)
        with self.api.lock:
            items = list(self.api.objects[kind].values())
            rv = str(self.api.rv)
        self._json(200, {"kind": f"{kind}List", "apiVersion": "v1", "metadata": {"resourceVersion": rv},
                         "items": items})

    def _json(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _watch(self, kind: str, timeout: float) -> None:
        q: queue.Queue[bytes | None] = queue.Queue()
        with self.api.lock:
            self.api.watches[kind].append(q)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        deadline = time.monotonic() + timeout
        bookmark_at = time.monotonic() + BOOKMARK_INTERVAL
        try:
            while time.monotonic() < deadline:
                if self.api.silent.is_set():
                    time.sleep(0.05)
                    continue
                try:
                    line = q.get(timeout=min(1.0, max(0.01, deadline - time.monotonic())))
                except queue.Empty:
                    if time.monotonic() < bookmark_at:
                        continue
                    with self.api.lock:
                        rv = str(self.api.rv)
                    bookmark = {"kind": kind, "apiVersion": "v1", "metadata": {"resourceVersion": rv}}
                    line = json.dumps({"type": "BOOKMARK", "object": bookmark}).encode() + b"\n"
                if line is None:
                    break
                bookmark_at = time.monotonic() + BOOKMARK_INTERVAL
                self.wfile.write(b"%x\r\n%s\r\n" % (len(line), line))
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
        except OSError:
            pass
        finally:
            with self.api.lock:
                self.api.watches[kind].remove(q)
        self.close_connection = True
