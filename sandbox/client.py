"""A small asyncio Kubernetes REST client and informers, used by every sandbox component.

The sandbox's controllers, scheduler, kubelets and proxy are API clients exactly like
Kubernetes' own: they never touch the API server's store, they read it through watches and
write through HTTP. This module is their client-go.

`ApiClient` sends JSON requests with the bearer token and turns `Status` error bodies into
`ApiError`. `Informer` keeps a local cache of one resource the way client-go's reflector does:

1. LIST, remember the list's resourceVersion, replace the cache (vanished objects are
   reported as deleted) and mark the informer synced;
2. WATCH from that resourceVersion with `allowWatchBookmarks=true`; every event and bookmark
   moves the resourceVersion forward, so a watch that ends (server timeout, dropped stream)
   resumes from where it was without a relist;
3. a `410 Expired` (history compacted) means events were missed: relist from step 1;
4. any other error backs off with jitter (0.2 s doubling to 5 s) and retries.

Handlers are plain callables called on the event loop with ``(event_type, old, new)``; they
must not block (controllers just enqueue a key).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import logging
import random
import ssl
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp

log = logging.getLogger(__name__)

Obj = dict[str, Any]
Handler = Callable[[str, Obj | None, Obj | None], None]

KUBERNETES_VERSION = "v1.37.0"


def user_agent_of(component: str) -> str:
    """A Kubernetes component's User-Agent, as client-go builds it (`rest.DefaultKubernetesUserAgent`)."""
    return f"{component}/{KUBERNETES_VERSION} (linux/amd64) lb-demo-sandbox"


USER_AGENT = user_agent_of("lb-demo-sandbox")
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"
JSON_PATCH = "application/json-patch+json"


@dataclass(frozen=True)
class Resource:
    """Where a kind lives in the REST API."""

    group_version: str
    plural: str
    kind: str
    namespaced: bool = True

    @property
    def api_version(self) -> str:
        """The apiVersion written in objects of this kind."""
        return self.group_version

    def path(
        self, *, namespace: str | None = None, name: str | None = None, subresource: str | None = None
    ) -> str:
        """The URL path of the collection, or of one object (and its subresource)."""
        base = "/api/v1" if self.group_version == "v1" else f"/apis/{self.group_version}"
        if self.namespaced and namespace:
            base += f"/namespaces/{quote(namespace, safe='')}"
        base += f"/{self.plural}"
        if name is not None:
            base += f"/{quote(name, safe='')}"
            if subresource:
                base += f"/{subresource}"
        return base


PODS = Resource("v1", "pods", "Pod")
NODES = Resource("v1", "nodes", "Node", namespaced=False)
NAMESPACES = Resource("v1", "namespaces", "Namespace", namespaced=False)
SERVICES = Resource("v1", "services", "Service")
ENDPOINTS = Resource("v1", "endpoints", "Endpoints")
EVENTS = Resource("v1", "events", "Event")
ENDPOINTSLICES = Resource("discovery.k8s.io/v1", "endpointslices", "EndpointSlice")
DEPLOYMENTS = Resource("apps/v1", "deployments", "Deployment")
REPLICASETS = Resource("apps/v1", "replicasets", "ReplicaSet")
STATEFULSETS = Resource("apps/v1", "statefulsets", "StatefulSet")
DAEMONSETS = Resource("apps/v1", "daemonsets", "DaemonSet")
CONTROLLERREVISIONS = Resource("apps/v1", "controllerrevisions", "ControllerRevision")
LEASES = Resource("coordination.k8s.io/v1", "leases", "Lease")
CONFIGMAPS = Resource("v1", "configmaps", "ConfigMap")
SECRETS = Resource("v1", "secrets", "Secret")
SERVICEACCOUNTS = Resource("v1", "serviceaccounts", "ServiceAccount")
JOBS = Resource("batch/v1", "jobs", "Job")
CRONJOBS = Resource("batch/v1", "cronjobs", "CronJob")


class ApiError(Exception):
    """The API server answered with an error `Status`."""

    def __init__(self, status: int, body: Obj | str) -> None:
        self.status = status
        self.body = body
        self.reason = body.get("reason", "") if isinstance(body, dict) else ""
        message = body.get("message", "") if isinstance(body, dict) else str(body)[:300]
        super().__init__(f"{status} {self.reason}: {message}")

    @property
    def not_found(self) -> bool:
        """The object (or the resource type) does not exist."""
        return self.status == 404

    @property
    def conflict(self) -> bool:
        """AlreadyExists or a resourceVersion conflict."""
        return self.status == 409


def event_key(old: Obj | None, new: Obj | None) -> str:
    """The cache key of the object an informer event is about (its old state for a deletion)."""
    obj = new or old
    assert obj is not None, "an informer event carries the old or the new state"
    return key_of(obj)


def key_of(obj: Obj) -> str:
    """The cache key client-go uses: ``namespace/name`` or ``name``."""
    meta = obj["metadata"]
    ns = meta.get("namespace")
    return f"{ns}/{meta['name']}" if ns else meta["name"]


class ApiClient:
    """JSON over HTTP to the API server with a bearer token; one aiohttp session per process."""

    def __init__(self, *, base_url: str, token: str, ca_file: Path | None = None,
                 user_agent: str = USER_AGENT) -> None:
        self.base_url = base_url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        self._user_agent = {"User-Agent": user_agent}
        self._shared: dict[str, aiohttp.ClientSession] = {}
        self._ssl = ssl.create_default_context(cafile=str(ca_file)) if ca_file else None

    def for_component(self, name: str) -> ApiClient:
        """This client as another component of the same process sees it: the same HTTP session, but
        its own User-Agent (`kube-scheduler/v1.37.0 …`), from which the API server takes the
        managedFields manager of its writes, as a real cluster shows kube-controller-manager,
        kube-scheduler and kubelet there."""
        other = copy.copy(self)
        other._user_agent = {"User-Agent": user_agent_of(name)}
        return other

    @property
    def session(self) -> aiohttp.ClientSession:
        """The shared HTTP session, created on first use (inside the running loop)."""
        session = self._shared.get("session")
        if session is None or session.closed:
            connector = aiohttp.TCPConnector(limit=64, ssl=self._ssl if self._ssl is not None else True)
            session = aiohttp.ClientSession(connector=connector, headers=self._headers)
            self._shared["session"] = session
        return session

    async def close(self) -> None:
        """Close the HTTP session."""
        if session := self._shared.get("session"):
            await session.close()

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        body: Any = None,
        content_type: str = "application/json",
        timeout: float = 30.0,
    ) -> Obj:
        """Send one request and return the decoded JSON answer; raise `ApiError` on 4xx/5xx."""
        data = None if body is None else json.dumps(body)
        headers = {**self._user_agent, "Content-Type": content_type} if data is not None else self._user_agent
        async with self.session.request(
            method,
            self.base_url + path,
            params=_params(params),
            data=data,
            headers=headers,
            timeout=aiohttp.ClientTimeout(total=timeout),
        ) as resp:
            text = await resp.text()
            if resp.status >= 400:
                try:
                    raise ApiError(resp.status, json.loads(text))
                except ValueError:
                    raise ApiError(resp.status, text) from None
            return json.loads(text) if text else {}

    async def get(self, res: Resource, name: str, *, namespace: str | None = None) -> Obj:
        """GET one object."""
        return await self.request("GET", res.path(namespace=namespace, name=name))

    async def list(self, res: Resource, *, namespace: str | None = None, **params: Any) -> Obj:
        """LIST a collection (``label_selector=...`` etc. become query parameters)."""
        return await self.request("GET", res.path(namespace=namespace), params=params)

    async def create(self, res: Resource, obj: Obj, *, namespace: str | None = None) -> Obj:
        """POST a new object."""
        ns = namespace or obj.get("metadata", {}).get("namespace")
        return await self.request("POST", res.path(namespace=ns), body=obj)

    async def patch(
        self,
        res: Resource,
        name: str,
        patch: Any,
        *,
        namespace: str | None = None,
        subresource: str | None = None,
        content_type: str = MERGE_PATCH,
    ) -> Obj:
        """PATCH an object or its subresource (merge patch unless told otherwise)."""
        path = res.path(namespace=namespace, name=name, subresource=subresource)
        return await self.request("PATCH", path, body=patch, content_type=content_type)

    async def replace(self, res: Resource, obj: Obj, *, subresource: str | None = None) -> Obj:
        """PUT an object (optimistic concurrency on its resourceVersion)."""
        meta = obj["metadata"]
        path = res.path(namespace=meta.get("namespace"), name=meta["name"], subresource=subresource)
        return await self.request("PUT", path, body=obj)

    async def delete(
        self,
        res: Resource,
        name: str,
        *,
        namespace: str | None = None,
        grace_period: int | None = None,
        uid: str | None = None,
        propagation: str | None = None,
    ) -> Obj:
        """DELETE an object with DeleteOptions (grace period, uid precondition, propagation)."""
        options: Obj = {"kind": "DeleteOptions", "apiVersion": "v1"}
        if grace_period is not None:
            options["gracePeriodSeconds"] = grace_period
        if uid:
            options["preconditions"] = {"uid": uid}
        if propagation:
            options["propagationPolicy"] = propagation
        return await self.request("DELETE", res.path(namespace=namespace, name=name), body=options)

    async def watch(
        self,
        res: Resource,
        *,
        resource_version: str,
        timeout_seconds: int = 300,
        namespace: str | None = None,
    ) -> AsyncIterator[Obj]:
        """Yield watch events (``{"type", "object"}``) from ``resource_version`` on."""
        params = {
            "watch": "true",
            "resourceVersion": resource_version,
            "allowWatchBookmarks": "true",
            "timeoutSeconds": str(timeout_seconds),
        }
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=timeout_seconds + 30)
        async with self.session.get(
            self.base_url + res.path(namespace=namespace), params=params, timeout=timeout
        ) as resp:
            if resp.status >= 400:
                text = await resp.text()
                try:
                    raise ApiError(resp.status, json.loads(text))
                except ValueError:
                    raise ApiError(resp.status, text) from None
            buffer = b""
            async for chunk in resp.content.iter_any():
                buffer += chunk
                while b"\n" in buffer:
                    line, buffer = buffer.split(b"\n", 1)
                    if line.strip():
                        yield json.loads(line)


def _params(params: dict[str, Any] | None) -> dict[str, str] | None:
    """Turn python_case keyword names into the API's camelCase query parameters."""
    if not params:
        return None
    out = {}
    for name, value in params.items():
        if value is None:
            continue
        head, *rest = name.split("_")
        out[head + "".join(part.title() for part in rest)] = (
            str(value).lower() if isinstance(value, bool) else str(value)
        )
    return out


class Informer:
    """A list+watch cache of one resource with event handlers (client-go's shared informer)."""

    def __init__(self, client: ApiClient, res: Resource) -> None:
        self.client = client
        self.res = res
        self.store: dict[str, Obj] = {}
        self.synced = asyncio.Event()
        self.resource_version = ""
        self._handlers: list[Handler] = []

    def add_handler(self, handler: Handler) -> None:
        """Call ``handler(type, old, new)`` for every change (and for the initial list)."""
        self._handlers.append(handler)

    def get(self, key: str) -> Obj | None:
        """The cached object with this ``namespace/name`` key."""
        return self.store.get(key)

    def items(self, namespace: str | None = None) -> Iterable[Obj]:
        """Every cached object, optionally of one namespace."""
        if namespace is None:
            return list(self.store.values())
        return [o for o in self.store.values() if o["metadata"].get("namespace") == namespace]

    def _emit(self, kind: str, old: Obj | None, new: Obj | None) -> None:
        for handler in self._handlers:
            try:
                handler(kind, old, new)
            except Exception:
                log.exception("%s informer handler failed", self.res.plural)

    async def _relist(self) -> None:
        """LIST and replace the cache, reporting what changed."""
        listed = await self.client.list(self.res)
        fresh = {key_of(o): _with_kind(o, self.res) for o in listed.get("items") or []}
        for key, old in list(self.store.items()):
            if key not in fresh:
                del self.store[key]
                self._emit("DELETED", old, None)
        for key, obj in fresh.items():
            previous = self.store.get(key)
            self.store[key] = obj
            if previous is None:
                self._emit("ADDED", None, obj)
            elif previous["metadata"].get("resourceVersion") != obj["metadata"].get("resourceVersion"):
                self._emit("MODIFIED", previous, obj)
        self.resource_version = listed.get("metadata", {}).get("resourceVersion", "")
        self.synced.set()

    def _apply(self, event: Obj) -> bool:
        """Apply one watch event; False when the watch must restart with a relist (410)."""
        kind, obj = event.get("type"), event.get("object") or {}
        if kind == "ERROR":
            if obj.get("code") == 410:
                return False
            raise ApiError(obj.get("code") or 500, obj)
        rv = obj.get("metadata", {}).get("resourceVersion")
        if rv:
            self.resource_version = rv
        if kind == "BOOKMARK":
            return True
        obj = _with_kind(obj, self.res)
        key = key_of(obj)
        old = self.store.get(key)
        if kind == "DELETED":
            self.store.pop(key, None)
            self._emit("DELETED", old, None)
        else:
            self.store[key] = obj
            self._emit("ADDED" if old is None else "MODIFIED", old, obj)
        return True

    async def run(self) -> None:
        """List, then watch forever; relist on 410, back off on errors."""
        delay = 0.2
        need_list = True
        while True:
            try:
                if need_list:
                    await self._relist()
                    need_list = False
                async for event in self.client.watch(self.res, resource_version=self.resource_version):
                    if not self._apply(event):
                        need_list = True
                        break
                delay = 0.2
            except asyncio.CancelledError:
                raise
            except ApiError as exc:
                need_list = need_list or exc.status == 410
                log.warning("%s watch failed: %s; retrying in %.1fs", self.res.plural, exc, delay)
                await asyncio.sleep(delay * (0.5 + random.random()))
                delay = min(delay * 2, 5.0)
            except (aiohttp.ClientError, TimeoutError, ValueError, OSError) as exc:
                log.info(
                    "%s watch interrupted (%s); retrying in %.1fs", self.res.plural, type(exc).__name__, delay
                )
                await asyncio.sleep(delay * (0.5 + random.random()))
                delay = min(delay * 2, 5.0)


def _with_kind(obj: Obj, res: Resource) -> Obj:
    """Objects inside lists carry no kind/apiVersion; add them so handlers can build references."""
    obj.setdefault("kind", res.kind)
    obj.setdefault("apiVersion", res.api_version)
    return obj


class InformerFactory:
    """One informer per resource per process, shared by every controller in it."""

    def __init__(self, client: ApiClient) -> None:
        self.client = client
        self._informers: dict[Resource, Informer] = {}

    def informer(self, res: Resource) -> Informer:
        """The shared informer of ``res`` (created on first request)."""
        if res not in self._informers:
            self._informers[res] = Informer(self.client, res)
        return self._informers[res]

    def start(self, tasks: TaskGroup) -> None:
        """Start every requested informer under ``tasks``."""
        for inf in self._informers.values():
            tasks.spawn(inf.run(), name=f"informer:{inf.res.plural}")

    async def wait_synced(self) -> None:
        """Wait until every informer has listed once."""
        await asyncio.gather(*(inf.synced.wait() for inf in self._informers.values()))


class TaskGroup:
    """Eternal background tasks that log when they die (kopf's guarded tasks)."""

    def __init__(self) -> None:
        self.tasks: set[asyncio.Task] = set()

    def spawn(self, coro: Any, *, name: str) -> asyncio.Task:
        """Start ``coro`` as a task that is logged if it ends with an error."""
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self.tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task) -> None:
        self.tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("task %s died", task.get_name(), exc_info=task.exception())

    async def cancel_all(self) -> None:
        """Cancel every task and wait for them."""
        for task in list(self.tasks):
            task.cancel()
        for task in list(self.tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
