"""Canned cluster data for unit tests: objects shaped like the API's, and a scripted Source."""

from __future__ import annotations

import functools
import threading
from collections import deque
from collections.abc import Iterator
from typing import Any, TypeVar

from tests import polling

RS_UID = "rs-uid-1"


T = TypeVar("T")


def present(value: T | None) -> T:
    """A cache answer the test expects to be there (an applied change, a change log)."""
    assert value is not None, "the cache answered None"
    return value


def pod(name: str, rv: str, *, labels: dict[str, str] | None = None, node: str = "node-1",
        phase: str = "Running", ready: bool = True, ip: str = "127.244.0.10", waiting: str = "",
        terminating: bool = False,
        restarts: int = 0, owner: str = RS_UID, created: str = "2026-11-24T21:00:00Z",
        uid: str | None = None) -> dict[str, Any]:
    """A pod object as the API returns it."""
    running = {"running": {"startedAt": created}}
    state: dict[str, Any] = {"waiting": {"reason": waiting}} if waiting else running
    metadata: dict[str, Any] = {
        "name": name, "namespace": "default", "uid": uid or f"uid-{name}", "resourceVersion": rv,
        "labels": labels if labels is not None else {"app": "backend"}, "creationTimestamp": created,
        "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "backend-abc",
                             "uid": owner, "controller": True}] if owner else [],
    }
    if terminating:
        metadata["deletionTimestamp"] = "2026-11-24T21:05:00Z"
    return {
        "kind": "Pod", "apiVersion": "v1", "metadata": metadata,
        "spec": {"nodeName": node, "containers": [{"name": "backend", "image": "lb-demo",
                                                    "ports": [{"name": "http", "containerPort": 8080}]}]},
        "status": {"phase": phase, "podIP": ip,
                   "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
                   "containerStatuses": [{"name": "backend", "ready": ready, "restartCount": restarts,
                                          "image": "lb-demo", "state": state}]},
    }


def event(kind: str, obj: dict[str, Any]) -> dict[str, Any]:
    """A watch event."""
    return {"type": kind, "object": obj}


def gone() -> dict[str, Any]:
    """The ERROR event a server sends when the watched resourceVersion is too old."""
    return {"type": "ERROR", "object": {"kind": "Status", "apiVersion": "v1", "status": "Failure",
                                       "code": 410, "reason": "Expired",
                                       "message": "too old resource version"}}


class CannedSource:
    """A Source that answers from scripts: per kind, a queue of LIST answers and of watch streams.

    An answer that is an exception is raised. When a kind's list queue has one entry left it is
    repeated; when its watch queue is empty the stream stays idle until the hub stops or the
    test adds one.
    """

    def __init__(self) -> None:
        self.lists: dict[str, deque[Any]] = {}
        self.watches: dict[str, deque[Any]] = {}
        self.calls: list[tuple[str, str, str]] = []
        self.changed = threading.Condition()
        self.probe_error: Exception | None = None

    def script(self, kind: str, *, lists: list[Any], watches: list[Any] | None = None) -> None:
        """Set a kind's answers."""
        self.lists[kind] = deque(lists)
        self.watches[kind] = deque(watches or [])

    def add_stream(self, kind: str, stream: Any) -> None:
        """Queue one more watch stream (or exception) for a kind."""
        with self.changed:
            self.watches.setdefault(kind, deque()).append(stream)
            self.changed.notify_all()

    def list(self, kind: str, *, resource_version: str = "",
             read_timeout: float = 30.0) -> tuple[list[dict[str, Any]], str]:
        """Pop (or repeat) the next LIST answer; the call records the resourceVersion asked for."""
        self.calls.append(("list", kind, resource_version))
        queue = self.lists.get(kind) or deque([([], "1")])
        answer = queue.popleft() if len(queue) > 1 else queue[0]
        if isinstance(answer, Exception):
            raise answer
        return answer

    def probe(self) -> None:
        """Answer the hub's liveness probe (raise ``probe_error`` when a test sets one)."""
        self.calls.append(("probe", "", ""))
        if self.probe_error is not None:
            raise self.probe_error

    def watch(self, kind: str, resource_version: str, *, timeout_seconds: int,
              read_timeout: float) -> Iterator[dict[str, Any]]:
        """Yield the next scripted stream, or idle briefly and end cleanly."""
        self.calls.append(("watch", kind, resource_version))
        with self.changed:
            queue = self.watches.setdefault(kind, deque())
            if not queue:
                self.changed.wait(0.05)
            stream = queue.popleft() if queue else []
        if isinstance(stream, Exception):
            raise stream
        for item in stream:
            if isinstance(item, Exception):
                raise item
            yield item


wait_until = functools.partial(polling.wait_until, timeout=10.0, interval=0.01)
