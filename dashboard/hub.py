"""The watch hub: one per dashboard process, it keeps the informer cache equal to the cluster.

For each watched kind (pods, replicasets, deployments, endpointslices — or endpoints on a
cluster without them —, services, events in the configured namespace, and nodes) one thread
runs the informer loop, written once here:

1. LIST in pages of 500 (``limit``/``continue``, like client-go's reflector), remember the
   list's resourceVersion, hand the items to the loop (a relist). The first LIST, and one after
   a 410, is a consistent read (``resourceVersion=""``); every later relist asks for
   ``resourceVersion="0"``, which a real API server answers from its watch cache instead of a
   quorum read of every object (an expired continue token restarts the LIST consistently);
2. WATCH from that resourceVersion with ``allowWatchBookmarks`` and a server-side
   ``timeoutSeconds`` (jittered around LBDEMO_WATCH_TIMEOUT_SECONDS so streams do not all end
   together), following the resourceVersion of every event and bookmark;
3. a stream the server ends cleanly is re-opened from the last resourceVersion (no relist);
4. ``ERROR 410 Gone`` (history expired) means LIST again at once;
5. any other failure — connection refused or reset, the API server restarting, a 5xx, or a
   stream that stays silent longer than the client read timeout (LBDEMO_WATCH_READ_TIMEOUT,
   the inactivity detection; a LIST page gets the same read timeout, at most
   LIST_READ_TIMEOUT: a relist whose connection went silent after its request was sent must
   not hold the kind stale for longer than a silent watch would) — backs off with full
   jitter (0.2 s doubling up to 3 s, so a cluster that comes back is seen again within
   seconds) and LISTs again, so whatever was missed in between is repaired by the relist;
   while any kind is failing,
   :attr:`Hub.healthy` is false and the pages say the watch is failing and why
   (:attr:`Hub.trouble`: "HTTP error 500 …", "connection refused");
   silence is also watched across all streams: when no event, bookmark or list has arrived
   for ``quiet_seconds`` (5 s) a monitor thread probes the API server (``GET /version`` with a
   3 s timeout). A probe that fails marks the API unreachable (:attr:`Hub.reachable`): a
   stalled or frozen API server shows on the page ("the API is silent") within ~10 s instead
   of after the 60 s read timeout, and actions are refused at once with 503 (:func:`api_known_unreachable`);
6. a 403 (the kind is not readable, e.g. nodes under a namespaced Role) empties that kind and
   retries slowly; a 404 for EndpointSlices switches that thread to core/v1 Endpoints.

Threads never touch the cache: each result is handed to the event loop through one call,
``loop.call_soon_threadsafe``, and applied there (dashboard.cache). Each thread runs under a
guard that logs a crash and restarts the loop after a pause, so the hub never silently dies.

Lifetime: the hub is created and started by the ASGI application at start-up (dashboard.asgi:
lifespan, or the first request under daphne) or else by the first page load or websocket that
needs it (:func:`get_hub`), and then runs for the life of the process, whether or not a
browser is connected: the cache stays warm, so a reconnecting page gets its snapshot at once.
The serving-gate rule (dashboard.gatekeeper) rides on it as a listener, so pods are watched
and decoded once per process; :func:`shutdown` stops both (lifespan shutdown).

After applying changes the hub sends two kinds of channel-layer messages (the in-memory layer;
one process owns one hub):

- to group ``lbdemo.view`` (the dashboard's own consumers): at most one
  ``{"type": "cluster.changed", "seq": int}`` per loop iteration — a wake-up; the consumer
  asks the cache what changed since the sequence it last showed and coalesces;
- to group ``lbdemo.cluster`` (for features in other processes or consumers): at most one
  ``{"type": "cluster.changes", "seq": int, "changes": [{"kind": "Pod" | "ReplicaSet" |
  "Deployment" | "EndpointSlice" | "Endpoints" | "Service" | "Event" | "Node", "event":
  "ADDED" | "MODIFIED" | "DELETED", "name": str, "seq": int, "observed": float (unix time the
  dashboard saw it), "relist": bool (true when the change was found by a relist)}, ...]}`` per
  loop iteration — a relist of 1,000 objects is one message, never 1,000 (the in-memory layer
  drops messages beyond 100 queued per channel).

Features in this process (the traffic lab) do not go through the channel layer at all: they
register with :meth:`Hub.add_listener` and are called on the loop with every batch of changes
and the cache, so nothing they need can be dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import random
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from channels.layers import get_channel_layer
from django.conf import settings

# Imported here, not on first use: the client's API classes take seconds to import (pydantic
# models), which would otherwise land on the first page load instead of on server start.
from kubernetes.client import (
    AppsV1Api,
    AutoscalingV2Api,
    CoreV1Api,
    DiscoveryV1Api,
    NetworkingV1Api,
    VersionApi,
)
from kubernetes.client.exceptions import ApiException
from kubernetes.watch.watch import iter_resp_lines

from dashboard import gatekeeper
from dashboard.cache import Change, ClusterCache, Obj
from dashboard.timeline import Timeline

log = logging.getLogger(__name__)

VIEW_GROUP = "lbdemo.view"
CLUSTER_GROUP = "lbdemo.cluster"

KINDS = ("Pod", "ReplicaSet", "Deployment", "EndpointSlice", "Service", "Event", "Node", "Ingress",
         "HorizontalPodAutoscaler")
# Kinds beyond the seed's: a cluster (or a Role) without them shows none, like a forbidden kind.
OPTIONAL_KINDS = ("Ingress", "HorizontalPodAutoscaler")
# Items per LIST page (client-go's reflector default).
PAGE_SIZE = 500
# The longest a LIST page may stay silent (seconds; the hub's read timeout when that is shorter).
LIST_READ_TIMEOUT = 30.0
# (connect, read) seconds for the monitor's probe of a silent API server.
PROBE_TIMEOUT = (2.0, 3.0)


class WatchGone(Exception):
    """The requested resourceVersion is too old (HTTP 410 / ERROR event with code 410)."""


TIMED_OUT = "timed out"
# Substrings of urllib3/socket errors, and how the page names them.
_FAILURE_WORDS = (("refused", "connection refused"), ("reset", "connection reset"), ("timed out", TIMED_OUT),
                  ("timeout", TIMED_OUT), ("name or service not known", "unknown host"),
                  ("certificate", "TLS certificate error"), ("broken", "connection broken"))


def describe_failure(exc: BaseException) -> str:
    """A short human reason for a failed call: ``HTTP error 500 Internal Server Error``,
    ``connection refused``, ``timed out`` (what the page's status shows)."""
    status = getattr(exc, "status", None)
    if isinstance(status, int) and status:
        reason = str(getattr(exc, "reason", "") or "").strip()
        return f"HTTP error {status} {reason}".strip()
    text = f"{type(exc).__name__} {exc}".lower()
    for needle, short in _FAILURE_WORDS:
        if needle in text:
            return short
    return type(exc).__name__


class WatchForbidden(Exception):
    """The API refuses to list or watch this kind for us (HTTP 403)."""


class KindNotServed(Exception):
    """The API does not serve this kind at all (HTTP 404 on the collection)."""


class Source(Protocol):
    """Where lists and watch streams come from: the Kubernetes API, or canned data in tests."""

    def list(self, kind: str, *, resource_version: str = "",
             read_timeout: float = LIST_READ_TIMEOUT) -> tuple[list[Obj], str]:
        """Return (items, resourceVersion of the list); ``"0"`` may be served from a cache;
        fail when the answer stays silent for ``read_timeout`` seconds."""

    def watch(self, kind: str, resource_version: str, *, timeout_seconds: int,
              read_timeout: float) -> Iterator[dict[str, Any]]:
        """Yield decoded watch events ({"type": ..., "object": {...}}) until the stream ends."""

    def probe(self) -> None:
        """Ask the API server something cheap; raise if it does not answer in time."""


@dataclass
class Backoff:
    """Exponential back-off with full jitter (AWS architecture blog style)."""

    base: float = 0.2
    cap: float = 3.0
    attempt: int = 0

    def next_delay(self) -> float:
        """The next pause: uniform in [0, min(cap, base * 2**attempt)], at least 50 ms."""
        ceiling = min(self.cap, self.base * (2 ** self.attempt))
        self.attempt += 1
        return max(0.05, random.uniform(0, ceiling))

    def reset(self) -> None:
        """Called after a success: start from the shortest pause again."""
        self.attempt = 0


class Hub:
    """One informer thread per kind feeding one cache on one event loop."""

    def __init__(self, source: Source, *, loop: asyncio.AbstractEventLoop, kinds: tuple[str, ...] = KINDS,
                 watch_timeout: int = 300, read_timeout: float = 60.0, forbidden_retry: float = 60.0,
                 history: int = 2000, quiet_seconds: float = 5.0) -> None:
        self.source = source
        self.loop = loop
        self.kinds = kinds
        self.watch_timeout = watch_timeout
        self.read_timeout = read_timeout
        self.forbidden_retry = forbidden_retry
        self.quiet_seconds = quiet_seconds
        self.cache = ClusterCache(history=history)
        # Names this hub's sequence numbers: a page rendered by another process (before a
        # restart) never mistakes its sequence number for one of ours.
        self.epoch = secrets.token_hex(4)
        self.timeline = Timeline()
        self.relists = 0
        self.failing: set[str] = set()
        self.failure_reasons: dict[str, str] = {}
        self.reachable = True
        self.probe_failure = ""
        self._activity = time.monotonic()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._synced = asyncio.Event()
        self._notify_scheduled = False
        self._pending: list[tuple[Change, bool]] = []
        self._listeners: list[Callable[[list[Change], ClusterCache], None]] = []

    # --- lifecycle ---------------------------------------------------------------------------
    def start(self) -> None:
        """Start one guarded daemon thread per kind, and the monitor that notices a silent API."""
        for kind in self.kinds:
            thread = threading.Thread(target=self._guard, args=(kind,), name=f"lbdemo-watch-{kind}",
                                      daemon=True)
            thread.start()
            self._threads.append(thread)
        monitor = threading.Thread(target=self._monitor, name="lbdemo-api-monitor", daemon=True)
        monitor.start()
        self._threads.append(monitor)

    def stop(self, *, timeout: float = 5.0) -> None:
        """Ask every thread to stop and wait a little for them (they are daemons anyway)."""
        self._stop.set()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    async def wait_synced(self, timeout: float) -> bool:
        """Wait until every kind has been listed once (or the timeout passes)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._synced.wait(), timeout)
        return self._synced.is_set()

    def add_listener(self, listener: Callable[[list[Change], ClusterCache], None]) -> None:
        """Call ``listener(changes, cache)`` on the loop after each batch of applied changes."""
        self._listeners.append(listener)

    def remove_listener(self, listener: Callable[[list[Change], ClusterCache], None]) -> None:
        """Stop calling ``listener``."""
        with contextlib.suppress(ValueError):
            self._listeners.remove(listener)

    # --- the informer loop (runs in the kind's thread) -------------------------------------
    def _guard(self, kind: str) -> None:
        """Run the informer loop forever; log and restart it if it ever crashes."""
        while not self._stop.is_set():
            try:
                self._informer(kind)
            except Exception:
                log.exception("watch thread for %s crashed; restarting in 1 s", kind)
                self._stop.wait(1.0)

    def _informer(self, kind: str) -> None:
        """list -> watch -> (re)watch or relist, until the hub stops. See the module docstring."""
        backoff = Backoff()
        resource_version: str | None = None
        consistent = True  # the first LIST, and one after a 410, is a quorum read
        while not self._stop.is_set():
            try:
                if resource_version is None:
                    items, resource_version = self.source.list(
                        kind, resource_version="" if consistent else "0",
                        read_timeout=min(self.read_timeout, LIST_READ_TIMEOUT))
                    consistent = False
                    self._active()
                    self._post(self._on_listed, kind, items)
                    self._post(self._on_health, kind, True)
                    backoff.reset()
                resource_version = self._watch_once(kind, resource_version)
                backoff.reset()
            except WatchGone:
                log.info("watch of %s: resourceVersion %s expired (410); relisting", kind, resource_version)
                resource_version = None
                consistent = True
            except WatchForbidden:
                log.warning("not allowed to list/watch %s; retrying in %.0f s", kind, self.forbidden_retry)
                self._post(self._on_forbidden, kind)
                resource_version = None
                self._stop.wait(self.forbidden_retry)
            except KindNotServed:
                if kind in OPTIONAL_KINDS:
                    self._post(self._on_forbidden, kind)
                    resource_version = None
                    self._stop.wait(self.forbidden_retry)
                    continue
                if kind != "EndpointSlice":
                    raise
                log.info("the cluster serves no EndpointSlices; watching core/v1 Endpoints instead")
                kind = "Endpoints"
                resource_version = None
            except Exception as exc:
                delay = backoff.next_delay()
                log.warning("watch of %s failed (%s: %s); relisting in %.2f s", kind, type(exc).__name__,
                            exc, delay)
                resource_version = None
                self._post(self._on_failure, kind, describe_failure(exc))
                self._stop.wait(delay)

    def _watch_once(self, kind: str, resource_version: str) -> str:
        """Follow one watch stream; return the resourceVersion to continue from when it ends."""
        timeout = int(self.watch_timeout * random.uniform(0.8, 1.0)) or 1
        for event in self.source.watch(kind, resource_version, timeout_seconds=timeout,
                                       read_timeout=self.read_timeout):
            if self._stop.is_set():
                break
            self._active()
            event_type = event.get("type")
            obj = event.get("object") or {}
            if event_type == "ERROR":
                if obj.get("code") == 410:
                    raise WatchGone(obj.get("message", "expired"))
                raise RuntimeError(f"watch error {obj.get('code')}: {obj.get('message')}")
            resource_version = str((obj.get("metadata") or {}).get("resourceVersion") or resource_version)
            if event_type in {"ADDED", "MODIFIED", "DELETED"}:
                self._post(self._on_event, kind, event_type, obj)
        return resource_version

    def _active(self) -> None:
        """A stream or list answered: the API server is alive."""
        self._activity = time.monotonic()

    def _monitor(self) -> None:
        """Probe the API server whenever every stream has been silent for ``quiet_seconds``
        (a healthy server sends events or bookmarks); report when reachability flips."""
        while not self._stop.wait(min(1.0, self.quiet_seconds / 2)):
            if time.monotonic() - self._activity < self.quiet_seconds and self.reachable:
                continue
            try:
                self.source.probe()
            except Exception as exc:
                if self.reachable:
                    log.warning("the API server did not answer a probe after %.0f s of silence (%s: %s)",
                                time.monotonic() - self._activity, type(exc).__name__, exc)
                    self._post(self._on_reachable, False)
                self.probe_failure = describe_failure(exc)
                self.reachable = False
            else:
                self._active()
                if not self.reachable:
                    log.info("the API server answers again")
                    self._post(self._on_reachable, True)
                self.reachable = True

    def _post(self, handler: Callable[..., None], *args: Any) -> None:
        """The one hand-off point from a watch thread to the event loop."""
        observed = time.time()
        with contextlib.suppress(RuntimeError):  # the loop is closed: the process is ending
            self.loop.call_soon_threadsafe(functools.partial(handler, *args, observed))

    # --- on the loop -----------------------------------------------------------------------
    def _on_listed(self, kind: str, items: list[Obj], observed: float) -> None:
        """A (re)list arrived: replace the kind's objects and publish the difference."""
        if kind in self.cache.synced:
            self.relists += 1
        self._publish(self.cache.replace(kind, items, observed=observed), relist=True)
        needed = {k for k in self.kinds if k != "EndpointSlice"}
        endpoints_ok = ("EndpointSlice" not in self.kinds
                        or bool({"EndpointSlice", "Endpoints"} & self.cache.synced))
        if needed <= self.cache.synced and endpoints_ok:
            self._synced.set()

    @property
    def healthy(self) -> bool:
        """True while no kind's last list/watch attempt failed and the API server answers
        (the page shows "live")."""
        return not self.failing and self.reachable

    @property
    def trouble(self) -> str:
        """What the page's status says while not :attr:`healthy` ("" when healthy): a silent API
        server (the probe timed out) and a failing watch (HTTP error, refused) are told apart."""
        if self.healthy:
            return ""
        if not self.reachable and self.probe_failure == TIMED_OUT:
            return "the API is silent (no event, bookmark or answer for several seconds); retrying…"
        reasons = sorted({self.failure_reasons.get(kind) or "" for kind in self.failing} - {""})
        if reasons:
            return f"the watch is failing ({'; '.join(reasons)}); retrying…"
        return f"the API server does not answer ({self.probe_failure or 'unknown error'}); retrying…"

    def _on_failure(self, kind: str, reason: str, observed: float) -> None:
        """A kind's list or watch failed (``reason`` says how): record it for the page."""
        self.failure_reasons[kind] = reason
        self._on_health(kind, False, observed)

    def _on_health(self, kind: str, ok: bool, observed: float) -> None:
        """Record whether a kind's informer works; wake the pages when that flips."""
        before = self.healthy
        if ok:
            self.failing.discard(kind)
        else:
            self.failing.add(kind)
        if self.healthy != before:
            self._wake()

    def _on_reachable(self, ok: bool, observed: float) -> None:
        """The monitor's probe changed its verdict: wake the pages so their status follows."""
        self._wake()

    def _wake(self) -> None:
        """Schedule one notification of the pages (the health they show changed)."""
        if not self._notify_scheduled:
            self._notify_scheduled = True
            self.loop.call_soon(self._schedule_notify)

    def _on_forbidden(self, kind: str, observed: float) -> None:
        """We may not read this kind: show none of it rather than stale objects."""
        self._on_listed(kind, [], observed)

    def _on_event(self, kind: str, event: str, obj: Obj, observed: float) -> None:
        """A watch event arrived: apply it and publish the change."""
        change = self.cache.apply(kind, event, obj, observed=observed)
        if change is not None:
            self._publish([change], relist=False)

    def _publish(self, changes: list[Change], *, relist: bool) -> None:
        """Feed the timeline and listeners, and schedule one channel-layer notification."""
        if not changes:
            return
        self.timeline.observe(changes, self.cache)
        for listener in list(self._listeners):
            try:
                listener(changes, self.cache)
            except Exception:
                log.exception("a hub listener failed; the others still run")
        self._pending.extend((change, relist) for change in changes)
        if not self._notify_scheduled:
            self._notify_scheduled = True
            self.loop.call_soon(self._schedule_notify)

    def _schedule_notify(self) -> None:
        """Send the batched notifications in a task (group_send is a coroutine)."""
        self._notify_scheduled = False
        pending, self._pending = self._pending, []
        self.loop.create_task(self._notify(pending, self.cache.seq))

    async def _notify(self, pending: list[tuple[Change, bool]], seq: int) -> None:
        """Wake the dashboard consumers once, and tell other features about the changes in one message."""
        layer = get_channel_layer()
        if layer is None:
            return
        await layer.group_send(VIEW_GROUP, {"type": "cluster.changed", "seq": seq})
        if pending:
            await layer.group_send(CLUSTER_GROUP, {"type": "cluster.changes", "seq": seq, "changes": [
                {"kind": change.kind, "event": change.event, "name": change.name, "seq": change.seq,
                 "observed": change.observed, "relist": relist} for change, relist in pending]})


class KubeSource:
    """Lists and watches through the official ``kubernetes`` client, in the configured namespace.

    Responses are read raw (``_preload_content=False``) and decoded as JSON dicts: the cache
    keeps plain data, and a watch stream is parsed line by line as it arrives.
    """

    def __init__(self, *, namespace: str, api_client_factory: Callable[[], Any]) -> None:
        self.namespace = namespace
        self._factory = api_client_factory
        self._local = threading.local()

    def _call(self, kind: str) -> Callable[..., Any]:
        """The client's list function for a kind, bound to a per-thread ApiClient."""
        api = getattr(self._local, "api", None)
        if api is None:
            api = self._local.api = self._factory()
        core, apps, discovery = CoreV1Api(api), AppsV1Api(api), DiscoveryV1Api(api)
        networking, autoscaling = NetworkingV1Api(api), AutoscalingV2Api(api)
        ns = self.namespace
        calls: dict[str, Callable[..., Any]] = {
            "Pod": lambda **kw: core.list_namespaced_pod(ns, **kw),
            "ReplicaSet": lambda **kw: apps.list_namespaced_replica_set(ns, **kw),
            "Deployment": lambda **kw: apps.list_namespaced_deployment(ns, **kw),
            "EndpointSlice": lambda **kw: discovery.list_namespaced_endpoint_slice(ns, **kw),
            "Endpoints": lambda **kw: core.list_namespaced_endpoints(ns, **kw),
            "Service": lambda **kw: core.list_namespaced_service(ns, **kw),
            "Event": lambda **kw: core.list_namespaced_event(ns, **kw),
            "Node": lambda **kw: core.list_node(**kw),
            "Ingress": lambda **kw: networking.list_namespaced_ingress(ns, **kw),
            "HorizontalPodAutoscaler":
                lambda **kw: autoscaling.list_namespaced_horizontal_pod_autoscaler(ns, **kw),
        }
        return calls[kind]

    @staticmethod
    def _raise_for(exc: Exception) -> None:
        """Turn the client's ApiException into the hub's exceptions where one applies."""
        if isinstance(exc, ApiException):
            if exc.status == 410:
                raise WatchGone(str(exc.reason)) from exc
            if exc.status == 403:
                raise WatchForbidden(str(exc.reason)) from exc
            if exc.status == 404:
                raise KindNotServed(str(exc.reason)) from exc
        raise exc

    def list(self, kind: str, *, resource_version: str = "",
             read_timeout: float = LIST_READ_TIMEOUT) -> tuple[list[Obj], str]:
        """LIST the kind in pages of PAGE_SIZE; all items and the list's resourceVersion.
        ``resource_version="0"`` lets the server answer from its watch cache."""
        found: list[Obj] = []
        token = ""
        while True:
            options: dict[str, Any] = {"limit": PAGE_SIZE}
            if token:
                options["_continue"] = token
            elif resource_version:
                options["resource_version"] = resource_version
            try:
                response = self._call(kind)(_preload_content=False, _request_timeout=(5, read_timeout),
                                            **options)
            except Exception as exc:
                self._raise_for(exc)
            body = json.loads(response.data)
            found.extend(body.get("items") or [])
            metadata = body.get("metadata") or {}
            token = str(metadata.get("continue") or "")
            if not token:
                return found, str(metadata.get("resourceVersion") or "")

    def probe(self) -> None:
        """GET /version with a short timeout (public on every API server); raise if it fails."""
        api = getattr(self._local, "api", None)
        if api is None:
            api = self._local.api = self._factory()
        # Any answer proves the server alive: the body is not decoded (a server whose /version
        # lacks a field the client's model wants is not an unreachable one).
        VersionApi(api).get_code(_request_timeout=PROBE_TIMEOUT, _preload_content=False).release_conn()

    def watch(self, kind: str, resource_version: str, *, timeout_seconds: int,
              read_timeout: float) -> Iterator[dict[str, Any]]:
        """WATCH from ``resource_version``; yields events until the server ends the stream."""
        try:
            response = self._call(kind)(watch=True, resource_version=resource_version,
                                        allow_watch_bookmarks=True, timeout_seconds=timeout_seconds,
                                        _preload_content=False, _request_timeout=(5, read_timeout))
        except Exception as exc:
            self._raise_for(exc)
        try:
            for line in iter_resp_lines(response):
                if line.strip():
                    yield json.loads(line)
        finally:
            response.close()
            response.release_conn()


_hub: Hub | None = None
_gatekeeper: gatekeeper.Gatekeeper | None = None
_hub_lock = threading.Lock()


def get_hub() -> Hub:
    """The process's hub, created and started on first use (with the serving-gate rule on its
    pod watch); call it on the event loop."""
    global _hub, _gatekeeper
    with _hub_lock:
        if _hub is None:
            from dashboard.kube import api_client

            source = KubeSource(namespace=settings.LBDEMO_NAMESPACE, api_client_factory=api_client)
            _hub = Hub(source, loop=asyncio.get_running_loop(),
                       watch_timeout=settings.LBDEMO_WATCH_TIMEOUT_SECONDS,
                       read_timeout=float(settings.LBDEMO_WATCH_READ_TIMEOUT))
            _hub.start()
            if gatekeeper.enabled():
                _gatekeeper = gatekeeper.attach(_hub, gatekeeper.status_patcher(api_client))
        return _hub


def shutdown() -> None:
    """Stop the process's hub and the serving-gate rule on it (the ASGI lifespan's shutdown)."""
    global _hub, _gatekeeper
    with _hub_lock:
        hub, keeper, _hub, _gatekeeper = _hub, _gatekeeper, None, None
    if keeper is not None:
        keeper.stop()
    if hub is not None:
        hub.stop()


def api_known_unreachable() -> bool:
    """True when the process's hub has found the API server not answering (actions then
    answer 503 at once instead of waiting for their own timeout)."""
    hub = _hub
    return hub is not None and not hub.reachable


def install_hub(hub: Hub | None) -> None:
    """Make ``hub`` the process's hub (tests feed one with canned streams), or clear it; the
    serving-gate rule of the hub it replaces stops."""
    global _hub, _gatekeeper
    with _hub_lock:
        keeper, _gatekeeper, _hub = _gatekeeper, None, hub
    if keeper is not None:
        keeper.stop()
