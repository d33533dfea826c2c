"""The dashboard's host of the ``lb-demo.dev/serving`` readiness-gate rule (see `servinggate`).

On minikube or any cluster, nothing but the dashboard knows the gate: without this, every
backend pod would stay unready. The rule rides on the watch hub's pod watch (a hub listener,
:meth:`Gatekeeper.observe`): the process decodes every pod event once, for the page and the
rule alike. Each gated pod seen without the condition waits in a small set; one worker thread
applies `servinggate.default_patch` to it through ``pods/<name>/status`` (the Role's ``patch
pods/status``), once per pod (by uid; the readiness switch decides afterwards). A write that
fails or is refused keeps the pod waiting and backs off (1 s doubling up to 30 s) — it never
relists: the hub's cache already is the list. A pod that gets the condition from someone
else, or goes away, stops waiting.

It is attached when the process's hub is created (`dashboard.hub.get_hub`), which the ASGI
application does at start-up (`dashboard.asgi`: lifespan, or the first request under daphne)
whether or not anyone has the page open, and stopped with the hub. Importing a module starts
nothing. On the sandbox its controller-manager applies the same rule too; the first to write
wins, the other sees the condition and does nothing. LBDEMO_SERVING_GATE_DEFAULTS=0 turns it
off (another controller owns the gate).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from kubernetes.client import ApiClient, CoreV1Api
from kubernetes.client.exceptions import ApiException

import servinggate
from dashboard import objects
from dashboard.cache import DELETED, Change, ClusterCache, Obj

log = logging.getLogger(__name__)

API_TIMEOUT = 5.0
RETRY = (1.0, 30.0)


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _key(pod: Obj) -> str:
    """Who a pod is: its uid (a pod recreated under the same name is a new pod)."""
    return objects.uid(pod) or f"{objects.metadata(pod).get('namespace')}/{objects.name(pod)}"


def status_patcher(api_client_factory: Callable[[], ApiClient]) -> Callable[[Obj], None]:
    """The write: the rule's ``pods/status`` patch of one pod, on one client kept by the worker
    (a pod already gone, 404, is nothing to do)."""
    clients: list[CoreV1Api] = []

    def patch(pod: Obj) -> None:
        body = servinggate.default_patch(pod, now=_now())
        if body is None:
            return
        if not clients:
            clients.append(CoreV1Api(api_client_factory()))
        meta = objects.metadata(pod)
        try:
            clients[0].patch_namespaced_pod_status(
                meta.get("name"), meta.get("namespace"), body, _content_type=servinggate.PATCH_CONTENT_TYPE,
                _request_timeout=API_TIMEOUT, _preload_content=False).release_conn()
        except ApiException as exc:
            if exc.status != 404:
                raise

    return patch


class Gatekeeper:
    """The gated pods still waiting for the condition, and the worker that writes it."""

    def __init__(self, patch: Callable[[Obj], None], *, retry: tuple[float, float] = RETRY) -> None:
        self._patch = patch
        self._retry = retry
        self._lock = threading.Condition()
        self._waiting: dict[str, Obj] = {}
        self._done: set[str] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="serving-gate-defaulter", daemon=True)

    def start(self) -> None:
        """Start the worker thread."""
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the worker (after the write in flight, if any)."""
        with self._lock:
            self._stop.set()
            self._lock.notify_all()
        if self._thread.is_alive():
            self._thread.join(timeout)

    @property
    def waiting(self) -> int:
        """How many pods wait for their condition."""
        with self._lock:
            return len(self._waiting)

    def observe(self, changes: list[Change], cache: ClusterCache) -> None:
        """The hub listener (on the loop): note which pods the rule still has to start serving."""
        with self._lock:
            for change in changes:
                if change.kind != "Pod":
                    continue
                key = _key(change.obj)
                if change.event == DELETED:
                    self._waiting.pop(key, None)
                    self._done.discard(key)
                elif key in self._done or servinggate.default_patch(change.obj, now="") is None:
                    self._waiting.pop(key, None)
                else:
                    self._waiting[key] = change.obj
            if self._waiting:
                self._lock.notify_all()

    def _next(self) -> tuple[str, Obj] | None:
        """The next waiting pod, left waiting until its write succeeds (None once stopped)."""
        with self._lock:
            while not self._waiting and not self._stop.is_set():
                self._lock.wait()
            if self._stop.is_set():
                return None
            key = next(iter(self._waiting))
            return key, self._waiting[key]

    def _run(self) -> None:
        """Write the condition of each waiting pod; back off after a failure."""
        delay = self._retry[0]
        while (item := self._next()) is not None:
            key, pod = item
            try:
                self._patch(pod)
            except Exception as exc:
                reason = f"HTTP {exc.status} {exc.reason}" if isinstance(exc, ApiException) else repr(exc)
                log.info("serving-gate defaulter: writing %s's condition failed (%s); retrying in %.1f s",
                         objects.name(pod), reason, delay)
                with self._lock:
                    if key in self._waiting:  # to the back: the other pods get their turn
                        self._waiting[key] = self._waiting.pop(key)
                if self._stop.wait(delay):
                    return
                delay = min(delay * 2, self._retry[1])
                continue
            delay = self._retry[0]
            with self._lock:
                self._done.add(key)
                self._waiting.pop(key, None)


def enabled() -> bool:
    """Whether this process applies the rule (LBDEMO_SERVING_GATE_DEFAULTS, default on)."""
    return os.environ.get("LBDEMO_SERVING_GATE_DEFAULTS", "1") != "0"


def attach(hub: Any, patch: Callable[[Obj], None], *, retry: tuple[float, float] = RETRY) -> Gatekeeper:
    """Apply the rule to every pod ``hub`` sees (its cache so far, then each change); started."""
    keeper = Gatekeeper(patch, retry=retry)
    keeper.observe([Change(0, "Pod", "ADDED", objects.name(pod), pod, 0.0) for pod in hub.cache.list("Pod")],
                   hub.cache)
    hub.add_listener(keeper.observe)
    keeper.start()
    return keeper
