"""The sandbox's HTTP API server: Kubernetes' REST API over aiohttp on 127.0.0.1.

This module owns HTTP concerns only: routing `/api/v1/...` and `/apis/<group>/<version>/...`
paths to resources (`resources.py`), bearer-token authentication (401, `auth.py`), RBAC
authorization (403, `rbac.py`), content negotiation
(JSON, YAML, `as=Table`, `as=PartialObjectMetadata`; 406/415 for what it cannot speak),
request body limits (413 above 3 MiB), the watch stream (one JSON event per line, never a
blank line; bookmarks; watch-list), the generic `status` and `scale` subresources (a kind's
other subresources, such as `pods/log`, are served by the handler its strategy declares),
discovery, `/openapi/v3`, `/version` and the health endpoints. Request bodies may be JSON,
YAML or (for what `kubectl create` sends) protobuf, see `protobuf.py`. Object semantics live
in `registry.py` and the kinds' strategies, storage and watch fan-out in `store.py`. Every
failure is answered with a `Status` object.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import bisect
import json
import logging
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import yaml
from aiohttp import web

from . import (
    discovery,
    errors,
    health,
    impersonation,
    managedfields,
    openapi,
    openapi_v2,
    protobuf,
    proxy,
    rbac,
    tables,
)
from .auth import USER, Authenticator, TokenIssuer
from .certs import server_ssl_context
from .controlplane import reconcile_kubernetes_service
from .errors import ApiError
from .gc import GarbageCollector
from .instrumentation import CONTENT_TYPE, LONG_RUNNING_SUFFIXES, Metrics, request_labels
from .query import flag as _bool
from .query import integer as _int
from .rbac import Authorizer
from .registry import FIELD_VALIDATION, Registry
from .resources import RESOURCES, Resource, from_stored, lookup, strategy_for
from .selectors import SelectorError, make_filter, parse_field_selector, parse_label_selector
from .store import DB_FILE, Entry, Event, Expired, Store, Watcher, encode

if TYPE_CHECKING:
    from multidict import MultiMapping

log = logging.getLogger(__name__)

MAX_BODY = 3 * 1024 * 1024
BOOKMARK_INTERVAL = 15.0
DEFAULT_WATCH_TIMEOUT = 1800
PATCH_TYPES = ("application/json-patch+json", "application/merge-patch+json",
               "application/strategic-merge-patch+json")
APPLY_PATCH = "application/apply-patch+yaml"
BODY_TYPES = ("application/json", "application/yaml", "application/x-yaml", "text/yaml")
JSON = "application/json"
PROTOBUF = "application/vnd.kubernetes.protobuf"
# The documents' Last-Modified: they are built from this process's code, so from its start.
STARTED = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime())


@dataclass(frozen=True)
class Target:
    """What a resource URL names."""

    res: Resource
    namespace: str
    name: str | None
    sub: str | None
    namespace_given: bool


@dataclass(frozen=True)
class Negotiated:
    """The response form a client asked for."""

    yaml: bool = False
    as_kind: str | None = None


DEPRECATION = web.RequestKey("deprecation", str)  # the warning of a deprecated resource asked about


async def _add_deprecation_warning(request: web.Request, response: web.StreamResponse) -> None:
    """Every answer about a deprecated resource (lists, gets, watches, errors) carries its
    `Warning: 299 - "..."` header, as kube-apiserver's deprecation filter adds it."""
    warning = request.get(DEPRECATION)
    if warning:
        response.headers.add("Warning", "299 - " + json.dumps(warning))


def status_response(exc: ApiError) -> web.Response:
    """An error as a Status JSON response (with Retry-After when its details suggest a delay)."""
    retry = (exc.details or {}).get("retryAfterSeconds")
    headers = {"Retry-After": str(retry)} if retry else None
    return web.Response(status=exc.code, body=encode(exc.status()), content_type=JSON, headers=headers)


def negotiate(accept: str | None, *, table_ok: bool) -> Negotiated:
    """Pick the response form from an Accept header, or 406."""
    if not accept or not accept.strip():
        return Negotiated()
    for media in accept.split(","):
        parts = [p.strip() for p in media.split(";")]
        mime = parts[0].lower()
        params = dict(p.split("=", 1) for p in parts[1:] if "=" in p)
        as_kind = params.get("as")
        if as_kind is not None:
            if mime != JSON or params.get("g") != "meta.k8s.io" or params.get("v") not in ("v1", "v1beta1"):
                continue
            if as_kind == "Table" and table_ok:
                return Negotiated(as_kind="Table")
            if as_kind in ("PartialObjectMetadata", "PartialObjectMetadataList"):
                return Negotiated(as_kind=as_kind)
            continue
        if mime in (JSON, "application/*", "*/*", "*"):
            return Negotiated()
        if mime in ("application/yaml", "application/x-yaml"):
            return Negotiated(yaml=True)
    raise ApiError(406, "NotAcceptable", "only the following media types are accepted: application/json, "
                                         "application/yaml, application/json;as=Table;v=v1;g=meta.k8s.io")


def parse_body(body: bytes, content_type: str | None) -> dict:
    """A request body (JSON or YAML) as a JSON-compatible dict, or 400/415."""
    mime = (content_type or JSON).split(";")[0].strip().lower()
    if mime == PROTOBUF:
        try:
            return protobuf.decode_object(body)
        except protobuf.Unsupported as exc:
            raise ApiError(415, "UnsupportedMediaType", f"{exc}; send JSON (e.g. kubectl apply -f)") from None
        except protobuf.ProtobufError as exc:
            raise errors.bad_request(f"the object provided is unrecognized or malformed protobuf: "
                                     f"{exc}") from None
    if mime not in BODY_TYPES:
        raise ApiError(415, "UnsupportedMediaType",
                       f"the body of the request was in an unknown format - accepted media types include: "
                       f"{', '.join(BODY_TYPES[:2])}, {PROTOBUF}")
    try:
        text = body.decode("utf-8")
        if mime == JSON or text.lstrip().startswith("{"):  # JSON is YAML: kubectl sends apply bodies as JSON
            data = json.loads(text, parse_constant=_reject_constant)
        else:
            data = yaml.safe_load(text)
        data = json.loads(json.dumps(data, default=str, allow_nan=False))
    except (ValueError, TypeError, RecursionError, yaml.YAMLError) as exc:
        kind = "JSON" if mime == JSON else "YAML"
        detail = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        raise errors.bad_request(f"the object provided is unrecognized or malformed {kind}: "
                                 f"{detail}") from None
    if not isinstance(data, dict):
        raise errors.bad_request("the object provided is not a JSON object")
    return data


def _verb(method: str, named: bool, watch: bool) -> str:
    """The Kubernetes verb of a request on a resource (not a subresource)."""
    if method == "GET":
        return "watch" if watch else "get" if named else "list"
    if method == "DELETE":
        return "delete" if named else "deletecollection"
    return {"POST": "create", "PUT": "update", "PATCH": "patch"}.get(method, method.lower())


def _partial(obj: dict) -> dict:
    """An object reduced to PartialObjectMetadata."""
    return {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": obj["metadata"]}


def _reject_constant(name: str) -> None:
    """json.loads hook: NaN and Infinity are not JSON."""
    raise ValueError(f"invalid number {name}")


def route(path: str) -> Target | dict | None:
    """Resolve a URL path: a resource Target, a discovery document, or None (404)."""
    parts = path.strip("/").split("/")
    if parts[0] == "api":
        if len(parts) == 1:
            return {"discovery": "core"}
        if parts[1] != "v1":
            return None
        group, version, rest = "", "v1", parts[2:]
    elif parts[0] == "apis":
        if len(parts) == 1:
            return {"discovery": "groups"}
        if len(parts) == 2:
            doc = discovery.api_group(parts[1])
            return {"document": doc} if doc else None
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        return None
    if not rest:
        doc = discovery.api_resource_list(group, version)
        return {"document": doc} if doc else None
    if any(not p for p in rest[:3]):
        return None
    namespace, namespace_given = "", False
    if rest[0] == "namespaces" and len(rest) >= 3:
        candidate = lookup(group, version, rest[2])
        if candidate is not None and candidate.namespaced:
            namespace, namespace_given, rest = rest[1], True, rest[2:]
    res = lookup(group, version, rest[0])
    if res is not None and len(rest) > 3 and rest[2] == "proxy":
        rest = rest[:3]  # pods/NAME/proxy/PATH: the handler reads PATH from the raw URL
    if res is None or len(rest) > 3:
        return None
    name = rest[1] if len(rest) > 1 else None
    sub = rest[2] if len(rest) > 2 else None
    if res.namespaced and name is not None and not namespace_given:
        return None
    return Target(res, namespace, name, sub, namespace_given)


def _entry_position(entry: Entry) -> tuple[str, str]:
    """Where an entry sorts in a list: (namespace, name)."""
    meta = entry.obj["metadata"]
    return meta.get("namespace", ""), meta["name"]


INCONSISTENT_CONTINUE = " ".join((
    "The provided continue parameter is too old to display a consistent list result.",
    "You can start a new list without the continue parameter, or use the continue token in this response",
    "to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent",
    "list - objects that were created, modified, or deleted between the time the first chunk was returned",
    "and now may show up in the list."))


def _continue_token(rv: int, last: tuple[str, str]) -> str:
    """An opaque continue token: the list's RV (-1: the latest, after a 410) and the last key served."""
    raw = json.dumps({"rv": rv, "start": list(last)}).encode()
    return base64.urlsafe_b64encode(raw).decode()


def _parse_continue(token: str) -> tuple[int, tuple[str, str]]:
    """Decode a continue token (400 when it is not one of ours)."""
    try:
        data = json.loads(base64.urlsafe_b64decode(token.encode()))
        return int(data["rv"]), (str(data["start"][0]), str(data["start"][1]))
    except (ValueError, KeyError, IndexError, TypeError, binascii.Error):
        raise errors.bad_request("continue key is not valid: incorrect encoded start resourceVersion "
                                 "(version meta.k8s.io/v1)") from None


class ApiServer:
    """The API server: store + registry + garbage collector behind an aiohttp application."""

    def __init__(self, *, state_dir: Path, token: str, history_size: int = 10_000,
                 bookmark_interval: float = BOOKMARK_INTERVAL) -> None:
        self.state_dir = state_dir
        self.token = token
        self.bookmark_interval = bookmark_interval
        self.store = Store(state_dir / DB_FILE, history_size=history_size)
        self.registry = Registry(self.store)
        self.issuer = TokenIssuer(state_dir)
        self.registry.issuer = self.issuer
        self.authenticator = Authenticator(admin_token=token, issuer=self.issuer, store=self.store)
        self.authorizer = Authorizer(self.store)
        self.gc = GarbageCollector(self.registry)
        self._gc_task: asyncio.Task | None = None
        self._runner: web.AppRunner | None = None
        self.streams: set[asyncio.Task] = set()
        self.metrics = Metrics()
        self.bootstrapped = False  # the start-up objects exist (`poststarthook/...` health checks)
        self.shutting_down = False

    async def start(self, *, host: str = "127.0.0.1", port: int = 6443) -> None:
        """Open the store, create what every cluster starts with (namespaces, the `kubernetes`
        Service), and listen."""
        await self.store.open()
        await self.registry.bootstrap()
        self.bootstrapped = True
        cluster_ip = await reconcile_kubernetes_service(self.registry, host=host, port=port)
        self._gc_task = asyncio.create_task(self.gc.run(), name="garbage-collector")
        app = web.Application(client_max_size=MAX_BODY + 1)
        app.router.add_route("*", "/{tail:.*}", self.handle)
        app.on_response_prepare.append(_add_deprecation_warning)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=2.0)
        await self._runner.setup()
        ssl_context = server_ssl_context(self.state_dir, ips=(cluster_ip,) if cluster_ip else ())
        self.registry.ca_pem = (self.state_dir / "ca.crt").read_bytes()
        site = web.TCPSite(self._runner, host, port, reuse_address=True, ssl_context=ssl_context)
        await site.start()

    async def stop(self) -> None:
        """Close watches and log streams, stop listening, flush and close the store."""
        self.shutting_down = True
        if self._gc_task is not None:
            self._gc_task.cancel()
        for task in list(self.streams):
            task.cancel()
        await proxy.close(self)
        await self.store.close()
        if self._runner is not None:
            await self._runner.cleanup()

    # ----- entry point -----------------------------------------------------------------------
    async def handle(self, request: web.Request) -> web.StreamResponse:
        """Authenticate, route and answer one request; every error becomes a Status. Every
        request is counted and timed for `/metrics`."""
        watch = _bool(request.query, "watch") or request.path.endswith(LONG_RUNNING_SUFFIXES)
        started, kind, code = time.perf_counter(), self.metrics.begin(request.method, long_running=watch), 500
        try:
            response = await self._handle(request)
            code = response.status
            return response
        finally:
            query = request.query
            attrs = rbac.request_attributes(request.method, request.path.rstrip("/") or "/", query)
            apply = request.headers.get("Content-Type", "").startswith(APPLY_PATCH)
            labels = request_labels(request.method, attrs, dry_run="dryRun" in query,
                                    watch=_bool(query, "watch"), apply=apply)
            self.metrics.end(kind, labels, code, time.perf_counter() - started)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        try:
            path = request.path
            if len(path) > 1 and path.endswith("/"):
                path = path.rstrip("/") or "/"
            if path == "/version":
                return web.Response(body=encode(discovery.SERVER_VERSION), content_type=JSON)
            if health.is_health_path(path):
                return health.respond(self, path, request.query)
            self._authenticate(request)
            self._authorize(request, path)
            if path == "/metrics":
                return self._metrics(request)
            return await self._dispatch(request, path)
        except ApiError as exc:
            return status_response(exc)
        except asyncio.CancelledError:
            raise
        except (ConnectionResetError, web.HTTPException):
            raise
        except Exception:
            log.exception("internal error serving %s %s", request.method, request.path_qs)
            return status_response(errors.internal_error("unexpected server error"))

    def _metrics(self, request: web.Request) -> web.Response:
        """`/metrics` (Prometheus text; RBAC: nonResourceURL `get /metrics`)."""
        if request.method != "GET":
            raise errors.method_not_allowed(request.method)
        counts = {res.qualified_plural: self.store.total(res.key) for res in RESOURCES
                  if strategy_for(res).serve is None and "list" in res.verbs}
        return web.Response(body=self.metrics.render(counts).encode(), headers={"Content-Type": CONTENT_TYPE})

    def _authenticate(self, request: web.Request) -> None:
        """Who is asking (`request[USER]`, see `auth.py`, then `impersonation.py`); 401 for a
        missing or unknown token."""
        user = self.authenticator.authenticate(request.headers.get("Authorization", ""))
        request[USER] = impersonation.impersonate(user, request.headers, self.authorizer)

    def _authorize(self, request: web.Request, path: str) -> None:
        """403 unless RBAC allows the request (see `rbac.py`; the admin is a superuser)."""
        user = request[USER]
        attrs = rbac.request_attributes(request.method, path, request.query)
        allowed, _ = self.authorizer.authorize(user, attrs)
        if not allowed:
            raise rbac.forbidden(user, attrs)

    async def _dispatch(self, request: web.Request, path: str) -> web.StreamResponse:
        """Route to discovery, OpenAPI or a resource handler."""
        if path.startswith("/openapi/"):
            return await self._openapi(request, path)
        if path == "/":
            if request.method != "GET":
                raise errors.method_not_allowed(request.method)
            return web.Response(body=encode(discovery.root_paths()), content_type=JSON)
        target = route(path)
        if target is None:
            raise errors.route_not_found()
        if isinstance(target, dict):
            if request.method != "GET":
                raise errors.method_not_allowed(request.method)
            return self._discovery(request, target)
        return await self._resource(request, target)

    # ----- discovery and OpenAPI ---------------------------------------------------------------
    def _discovery(self, request: web.Request, target: dict) -> web.Response:
        """Aggregated or legacy discovery documents."""
        if "document" in target:
            return web.Response(body=encode(target["document"]), content_type=JSON)
        accept = request.headers.get("Accept", "")
        core = target["discovery"] == "core"
        for media in accept.split(","):
            params = dict(p.strip().split("=", 1) for p in media.split(";")[1:] if "=" in p)
            if params.get("as") == "APIGroupDiscoveryList" and params.get("g") == "apidiscovery.k8s.io" \
                    and params.get("v") == "v2":
                return web.Response(body=encode(discovery.aggregated(core)),
                                    headers={"Content-Type": discovery.AGGREGATED_CONTENT_TYPE})
            if media.split(";")[0].strip() in (JSON, "*/*", "application/*", ""):
                break
        document = discovery.api_versions() if core else discovery.api_group_list()
        return web.Response(body=encode(document), content_type=JSON)

    async def _openapi(self, request: web.Request, path: str) -> web.Response:
        """`/openapi/v2` (JSON or gnostic protobuf, `openapi_v2.py`), and the `/openapi/v3` index and
        per-group-version documents; ETag and If-None-Match as kube-openapi's handlers."""
        if request.method != "GET":
            raise errors.route_not_found()
        if path == "/openapi/v2":
            content_type = openapi_v2.negotiate(request.headers.get("Accept"))
            if content_type is None:
                return web.Response(status=406, headers={"Vary": "Accept"})
            # The first build takes most of a second: off the event loop, so watches keep flowing.
            loop = asyncio.get_running_loop()
            etag, body = await loop.run_in_executor(None, openapi_v2.json_body)
            if content_type != JSON:
                body = await loop.run_in_executor(None, openapi_v2.protobuf_body)
            return self._cached(request, body, content_type, etag)
        if not path.startswith("/openapi/v3"):
            raise errors.route_not_found()
        rest = path[len("/openapi/v3"):].strip("/")
        if not rest:
            return web.Response(body=encode(openapi.openapi_v3_index()), content_type=JSON)
        entry = openapi.openapi_v3_entry(rest)
        if entry is None:
            raise errors.route_not_found()
        digest, body = entry
        asked = request.query.get("hash")
        if asked and asked != digest:
            # kube-openapi's v3 handler: an old hash is redirected to the current document.
            raise web.HTTPMovedPermanently(f"/openapi/v3/{rest}?hash={digest}")
        response = self._cached(request, body, JSON, digest)
        if asked:
            # A document asked for by its current hash never changes: cache it for a year.
            response.headers["Cache-Control"] = "public, immutable"
            response.headers["Expires"] = time.strftime("%a, %d %b %Y %H:%M:%S GMT",
                                                        time.gmtime(time.time() + 365 * 86400))
        return response

    @staticmethod
    def _cached(request: web.Request, body: bytes, content_type: str, etag: str) -> web.Response:
        """A document with its quoted ETag, varying on Accept; 304 when If-None-Match names it."""
        quoted = f'"{etag}"'
        headers = {"ETag": quoted, "Vary": "Accept", "Last-Modified": STARTED}
        match = request.headers.get("If-None-Match", "")
        if match == "*" or quoted in (m.strip() for m in match.split(",")):
            return web.Response(status=304, headers=headers)
        response = web.Response(body=body, headers=headers, content_type=content_type.split(";")[0])
        return response

    # ----- resources -------------------------------------------------------------------------
    async def _resource(self, request: web.Request, target: Target) -> web.StreamResponse:
        """Dispatch a resource request by verb and subresource."""
        method, res, sub = request.method, target.res, target.sub
        query = request.query
        if res.deprecated:
            request[DEPRECATION] = res.deprecated
        if sub is None and _verb(method, target.name is not None, _bool(query, "watch")) not in res.verbs:
            raise errors.method_not_allowed(method)
        serve = strategy_for(res).serve
        if serve is not None:
            if sub is not None:
                raise ApiError(404, "NotFound", "the server could not find the requested resource")
            return await serve(self, request, target)
        dry_run = self._dry_run(query)
        if method in ("POST", "PUT", "PATCH"):
            managedfields.current_manager.set(self._field_manager(request, target))
        if target.namespace_given and method in ("POST", "PUT", "PATCH"):
            self.registry.require_namespace(target.namespace)
        if target.name is None:
            if method == "GET":
                if _bool(query, "watch"):
                    return await self._watch(request, target)
                return self._list(request, target)
            if method == "POST":
                computed = await strategy_for(res).serve_create(self, request, target)
                if computed is not None:
                    return computed
                body = await self.object_body(request)
                warnings: list[str] = []
                obj = await self.registry.create(res, target.namespace, body, dry_run=dry_run,
                                                 field_validation=self._field_validation(query),
                                                 warnings=warnings)
                return self._object_response(obj, status=201, warnings=warnings)
            if method == "DELETE":
                return await self._delete_collection(request, target, dry_run=dry_run)
            raise errors.method_not_allowed(method)
        name = target.name
        if sub is None:
            return await self._object(request, target, dry_run=dry_run)
        subresource = res.subresource(sub)
        if subresource is None:
            raise errors.route_not_found()
        if subresource.handler is not None:
            if not subresource.allows(method):
                raise errors.method_not_allowed(method)
            return await subresource.handler(self, request, target)
        if sub == "scale":
            if method == "GET":
                return self._object_response(self.registry.get_scale(res, target.namespace, name))
            if method == "PUT":
                body = await self.object_body(request)
                scale = await self.registry.update_scale(res, target.namespace, name, body, dry_run=dry_run)
                return self._object_response(scale)
            if method == "PATCH":
                ctype = self._patch_type(request)
                patch = await self._read_body(request)
                return self._object_response(await self.registry.patch_scale(
                    res, target.namespace, name, ctype, patch, dry_run=dry_run))
            raise errors.method_not_allowed(method)
        return await self._object(request, target, dry_run=dry_run)

    @staticmethod
    def _field_validation(query: Mapping[str, str]) -> str:
        """`fieldValidation`: Ignore, Warn (the default) or Strict."""
        mode = query.get("fieldValidation") or "Warn"
        if mode not in FIELD_VALIDATION:
            raise errors.bad_request(f'fieldValidation: Unsupported value: "{mode}": supported values: '
                                     '"Ignore", "Warn", "Strict"')
        return mode

    @staticmethod
    def _field_manager(request: web.Request, target: Target) -> str:
        """The write's field manager: `fieldManager`, else the User-Agent's first token (422 when
        too long; `force` is only for apply patches)."""
        query, options = request.query, "PatchOptions" if request.method == "PATCH" else \
            "CreateOptions" if request.method == "POST" else "UpdateOptions"
        given = query.get("fieldManager")
        if given is not None and len(given) > managedfields.MAX_MANAGER_LENGTH:
            detail = f"Too long: may not be more than {managedfields.MAX_MANAGER_LENGTH} bytes"
            raise errors.invalid_options(options, "fieldManager", detail, reason="FieldValueTooLong")
        if "force" in query and request.headers.get("Content-Type", "").split(";")[0].strip() != APPLY_PATCH:
            detail = "Forbidden: may not be specified for non-apply patch"
            raise errors.invalid_options(options, "force", detail, reason="FieldValueForbidden")
        return given or managedfields.manager_from_user_agent(request.headers.get("User-Agent", ""))

    @staticmethod
    def _dry_run(query: MultiMapping[str]) -> bool:
        """`dryRun=All` (the only value Kubernetes accepts)."""
        values = query.getall("dryRun", [])
        for value in values:
            if value != "All":
                raise errors.bad_request(f'Invalid dryRun value: "{value}": supported values: "All"')
        return bool(values)

    async def _object(self, request: web.Request, target: Target, *, dry_run: bool) -> web.StreamResponse:
        """GET/PUT/PATCH/DELETE one object (or its status)."""
        method, res, name, sub = request.method, target.res, target.name, target.sub
        assert name is not None
        if method == "GET":
            negotiated = negotiate(request.headers.get("Accept"), table_ok=sub is None)
            entry = self.registry.get(res, target.namespace, name)
            if negotiated.as_kind == "Table":
                return self._table_response(res, [entry.obj], request,
                                            rv=entry.obj["metadata"]["resourceVersion"])
            if res.storage:
                obj = from_stored(res, entry.obj)
                return self._encoded(encode(obj), obj, negotiated)
            return self._encoded(entry.raw, entry.obj, negotiated)
        if method == "PUT":
            body = await self.object_body(request)
            warnings: list[str] = []
            obj = await self.registry.update(res, target.namespace, name, body, subresource=sub,
                                             dry_run=dry_run, warnings=warnings,
                                             field_validation=self._field_validation(request.query))
            return self._object_response(obj, warnings=warnings)
        if method == "PATCH":
            ctype = self._patch_type(request, apply=True)
            patch = await self._read_body(request)
            if ctype == APPLY_PATCH:
                return await self._apply(request, target, patch, dry_run=dry_run)
            warnings = []
            obj = await self.registry.patch(res, target.namespace, name, ctype, patch, subresource=sub,
                                            dry_run=dry_run, warnings=warnings,
                                            field_validation=self._field_validation(request.query))
            return self._object_response(obj, warnings=warnings)
        if method == "DELETE" and sub is None:
            options = await self._delete_options(request)
            obj, gone = await self.registry.delete(res, target.namespace, name, options, dry_run=dry_run)
            if gone and not strategy_for(res).return_deleted_object:
                details = {"name": name, "kind": res.plural, "uid": obj["metadata"].get("uid")}
                if res.group:
                    details["group"] = res.group
                return self._object_response({"kind": "Status", "apiVersion": "v1", "metadata": {},
                                              "status": "Success", "details": details})
            return self._object_response(obj)
        raise errors.method_not_allowed(method)

    def _patch_type(self, request: web.Request, *, apply: bool = False) -> str:
        """The patch content type (server-side apply only where `apply`), or 415."""
        ctype = request.headers.get("Content-Type", "").split(";")[0].strip().lower()
        accepted = (*PATCH_TYPES, APPLY_PATCH) if apply else PATCH_TYPES
        if ctype not in accepted:
            raise ApiError(415, "UnsupportedMediaType",
                           "the body of the request was in an unknown format - accepted media types include: "
                           + ", ".join(accepted))
        return ctype

    async def _apply(self, request: web.Request, target: Target, body: bytes, *,
                     dry_run: bool) -> web.Response:
        """Server-side apply (`kubectl apply --server-side`): field ownership, conflicts and
        pruning are `managedfields.py`'s; 201 when the object is created."""
        query = request.query
        if not query.get("fieldManager"):
            detail = "Required value: is required for apply patch"
            raise errors.invalid_options("PatchOptions", "fieldManager", detail, reason="FieldValueRequired")
        force = _bool(query, "force")
        applied = parse_body(body, "application/yaml")
        warnings: list[str] = []
        obj, created = await self.registry.apply(
            target.res, target.namespace, target.name or "", applied, manager=query["fieldManager"],
            force=force, subresource=target.sub, dry_run=dry_run,
            field_validation=self._field_validation(query), warnings=warnings)
        return self._object_response(obj, status=201 if created else 200, warnings=warnings)

    async def object_body(self, request: web.Request) -> dict:
        """The request body parsed as an object (JSON when no Content-Type is sent, like the real server)."""
        return parse_body(await self._read_body(request), request.headers.get("Content-Type"))

    async def _read_body(self, request: web.Request) -> bytes:
        """The request body, refusing more than 3 MiB with 413."""
        too_large = ApiError(413, "RequestEntityTooLarge", f"Request entity too large: limit is {MAX_BODY}")
        if request.content_length is not None and request.content_length > MAX_BODY:
            raise too_large
        chunks, size = [], 0
        async for chunk in request.content.iter_any():
            size += len(chunk)
            if size > MAX_BODY:
                raise too_large
            chunks.append(chunk)
        return b"".join(chunks)

    async def _delete_options(self, request: web.Request) -> dict:
        """DeleteOptions from the body and/or query parameters."""
        raw = await self._read_body(request)
        options = parse_body(raw, request.headers.get("Content-Type")) if raw.strip() else {}
        query = request.query
        grace = _int(query, "gracePeriodSeconds", minimum=-(2**31))
        if grace is not None:
            options["gracePeriodSeconds"] = grace
        if "propagationPolicy" in query:
            options["propagationPolicy"] = query["propagationPolicy"]
        if "orphanDependents" in query:
            options["orphanDependents"] = _bool(query, "orphanDependents")
        grace = options.get("gracePeriodSeconds")
        if grace is not None and (isinstance(grace, bool) or not isinstance(grace, int)):
            raise errors.bad_request("gracePeriodSeconds must be an integer")
        if not isinstance(options.get("preconditions") or {}, dict):
            raise errors.bad_request("preconditions must be an object")
        return options

    async def _delete_collection(self, request: web.Request, target: Target, *,
                                 dry_run: bool) -> web.Response:
        """DELETE on a collection: delete every selected object."""
        options = await self._delete_options(request)
        entries, rv = self._select(request, target)
        for entry in entries:
            meta = entry.obj["metadata"]
            try:
                await self.registry.delete(target.res, meta.get("namespace", ""), meta["name"], dict(options),
                                           dry_run=dry_run)
            except ApiError as exc:
                if exc.code != 404:
                    raise
        return self._list_response(target.res, [e.obj for e in entries], rv)

    # ----- encoding --------------------------------------------------------------------------
    def _object_response(self, obj: dict, *, status: int = 200, warnings: Sequence[str] = ()) -> web.Response:
        """A JSON object response, with `Warning: 299` headers like the real server's."""
        response = web.Response(status=status, body=encode(obj), content_type=JSON)
        for warning in warnings:
            response.headers.add("Warning", "299 - " + json.dumps(warning))
        return response

    def _encoded(self, raw: bytes, obj: dict, negotiated: Negotiated) -> web.Response:
        """One object in the negotiated form (JSON, YAML or PartialObjectMetadata)."""
        if negotiated.as_kind == "PartialObjectMetadata":
            obj = _partial(obj)
            raw = encode(obj)
        if negotiated.yaml:
            return web.Response(text=yaml.safe_dump(obj, sort_keys=False), content_type="application/yaml")
        return web.Response(body=raw, content_type=JSON)

    def _table(self, res: Resource, objects: list[dict], request: web.Request, *, rv: str) -> dict:
        """A meta.k8s.io/v1 Table for objects, with the real server's columns (`tables.py`)."""
        include = request.query.get("includeObject", "Metadata")
        if include not in ("None", "Metadata", "Object"):
            raise errors.bad_request(f'includeObject: Unsupported value: "{include}": supported values: '
                                     '"None", "Metadata", "Object"')
        return tables.table_for(res.plural, objects, wide=True, include_object=include, resource_version=rv)

    def _table_response(self, res: Resource, objects: list[dict], request: web.Request, *, rv: str,
                        cont: str = "", remaining: int | None = None) -> web.Response:
        """A Table response."""
        table = self._table(res, objects, request, rv=rv)
        if cont:
            table["metadata"]["continue"] = cont
            if remaining is not None:
                table["metadata"]["remainingItemCount"] = remaining
        return self._object_response(table)

    # ----- list ------------------------------------------------------------------------------
    def _filter(self, request: web.Request, res: Resource) -> Callable[[dict], bool] | None:
        """The label+field selector predicate of a list or watch (400 when malformed)."""
        query = request.query
        try:
            labels = parse_label_selector(query.get("labelSelector"))
            fields = parse_field_selector(query.get("fieldSelector"), res)
        except SelectorError as exc:
            raise errors.bad_request(str(exc)) from None
        if not labels and not fields:
            return None
        return make_filter(labels, fields, strategy_for(res).field_value)

    def _select(self, request: web.Request, target: Target, *, at: int | None = None,
                start: tuple[str, str] = ("", "")) -> tuple[list[Entry], int]:
        """Selected entries of a list (one namespace or all) and the list's resourceVersion;
        ``at``: as of that resourceVersion (a continue page: 410 Expired, with a token to go on
        from ``start`` at the latest version, once the history no longer reaches back)."""
        predicate = self._filter(request, target.res)
        namespace = target.namespace if target.namespace_given else None
        if at is None or at < 0:
            entries = self.store.entries(target.res.key, namespace)
        else:
            try:
                entries = self.store.entries_at(target.res.key, namespace, at)
            except Expired:
                raise ApiError(410, "Expired", INCONSISTENT_CONTINUE,
                               metadata={"continue": _continue_token(-1, start)}) from None
            return [e for e in entries if predicate is None or predicate(e.obj)], at
        if predicate is not None:
            entries = [e for e in entries if predicate(e.obj)]
        return entries, self.store.resource_version

    def _list(self, request: web.Request, target: Target) -> web.Response:
        """LIST with selectors and limit/continue pagination."""
        negotiated = negotiate(request.headers.get("Accept"), table_ok=True)
        query = request.query
        limit = _int(query, "limit")
        token = query.get("continue")
        if token:
            pinned, start = _parse_continue(token)
            entries, rv = self._select(request, target, at=pinned, start=start)
            # Entries are sorted by (namespace, name): bisect to the page's start instead of
            # comparing every entry (a 10,000-pod relist is 20 pages).
            first = bisect.bisect_right(entries, start, key=_entry_position)
            entries = entries[first:]
        else:
            entries, rv = self._select(request, target)
        cont, remaining = "", None
        if limit and len(entries) > limit:
            last = entries[limit - 1].obj["metadata"]
            cont = _continue_token(rv, (last.get("namespace", ""), last["name"]))
            remaining = len(entries) - limit
            entries = entries[:limit]
        if negotiated.as_kind == "Table":
            return self._table_response(target.res, [e.obj for e in entries], request, rv=str(rv), cont=cont,
                                        remaining=remaining)
        meta: dict = {"resourceVersion": str(rv)}
        if cont:
            meta["continue"] = cont
            meta["remainingItemCount"] = remaining
        res = target.res
        if negotiated.as_kind in ("PartialObjectMetadataList", "PartialObjectMetadata"):
            items = [_partial(from_stored(res, e.obj)) for e in entries]
            return self._object_response({"kind": "PartialObjectMetadataList", "apiVersion": "meta.k8s.io/v1",
                                          "metadata": meta, "items": items})
        if negotiated.yaml:
            document = {"kind": f"{res.kind}List", "apiVersion": res.api_version, "metadata": meta,
                        "items": [from_stored(res, e.obj) for e in entries]}
            return web.Response(text=yaml.safe_dump(document, sort_keys=False),
                                content_type="application/yaml")
        head = encode({"kind": f"{res.kind}List", "apiVersion": res.api_version, "metadata": meta})[:-1]
        raws = [encode(from_stored(res, e.obj)) for e in entries] if res.storage else [e.raw for e in entries]
        body = b"".join((head, b',"items":[', b",".join(raws), b"]}"))
        return web.Response(body=body, content_type=JSON)

    def _list_response(self, res: Resource, objects: list[dict], rv: int) -> web.Response:
        """A plain list response of some (stored) objects, at ``res``'s version."""
        return self._object_response({"kind": f"{res.kind}List", "apiVersion": res.api_version,
                                      "metadata": {"resourceVersion": str(rv)},
                                      "items": [from_stored(res, o) for o in objects]})

    # ----- watch -----------------------------------------------------------------------------
    async def _watch(self, request: web.Request, target: Target) -> web.StreamResponse:
        """A watch stream: newline-delimited events until timeout, client close or shutdown."""
        res, query = target.res, request.query
        negotiated = negotiate(request.headers.get("Accept"), table_ok=True)
        predicate = self._filter(request, res)
        timeout = _int(query, "timeoutSeconds")
        if timeout is None:
            timeout = int(DEFAULT_WATCH_TIMEOUT * (1 + random.random()))
        bookmarks = _bool(query, "allowWatchBookmarks")
        send_initial = query.get("sendInitialEvents")
        rv_param = query.get("resourceVersion", "")
        match = query.get("resourceVersionMatch", "")
        if send_initial is not None:
            if match != "NotOlderThan" or not bookmarks:
                raise errors.invalid_options("ListOptions", "sendInitialEvents",
                                             "Forbidden: sendInitialEvents is only supported with "
                                             "resourceVersionMatch=NotOlderThan and allowWatchBookmarks=true",
                                             reason="FieldValueForbidden")
        elif match:
            raise errors.bad_request("resourceVersionMatch is forbidden for watch unless sendInitialEvents "
                                     "is provided")
        initial_events = _bool(query, "sendInitialEvents") or (send_initial is None and rv_param in ("", "0"))
        if rv_param in ("", "0"):
            since = self.store.resource_version
        else:
            try:
                since = int(rv_param)
            except ValueError:
                raise errors.bad_request(f'invalid resource version: "{rv_param}"') from None
        namespace = target.namespace if target.namespace_given else None
        initial: list[Entry] = []
        if initial_events:
            initial = self.store.entries(res.key, namespace)
            if predicate is not None:
                initial = [e for e in initial if predicate(e.obj)]
            since = self.store.resource_version
        response = web.StreamResponse(status=200, headers={"Content-Type": JSON,
                                                           "Cache-Control": "no-cache, private"})
        response.enable_chunked_encoding()
        try:
            watcher = self.store.watch(res.key, namespace=namespace, predicate=predicate, since=since,
                                       initial=initial)
        except Expired as exc:
            await response.prepare(request)
            expired = ApiError(410, "Expired", str(exc))
            await response.write(b'{"type":"ERROR","object":' + encode(expired.status()) + b"}\n")
            return response
        task = asyncio.current_task()
        assert task is not None
        self.streams.add(task)
        try:
            await response.prepare(request)
            await self._pump(response, watcher, res, request, negotiated, timeout=timeout,
                             bookmarks=bookmarks,
                             initial_end=len(initial) if _bool(query, "sendInitialEvents") else None)
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            self.store.unwatch(watcher)
            self.streams.discard(task)
        return response

    def _bookmark(self, res: Resource, rv: int, *, initial_end: bool = False) -> bytes:
        """A BOOKMARK event line."""
        meta: dict = {"resourceVersion": str(rv)}
        if initial_end:
            meta["annotations"] = {"k8s.io/initial-events-end": "true"}
        return encode({"type": "BOOKMARK", "object": {"kind": res.kind, "apiVersion": res.api_version,
                                                       "metadata": meta}}) + b"\n"

    async def _pump(self, response: web.StreamResponse, watcher: Watcher, res: Resource, request: web.Request,
                    negotiated: Negotiated, *, timeout: int, bookmarks: bool,
                    initial_end: int | None) -> None:
        """Copy events from a watcher to the response until it ends."""
        deadline = time.monotonic() + timeout
        next_bookmark = time.monotonic() + self.bookmark_interval
        last_rv = self.store.resource_version if initial_end is not None else 0
        pending_initial = initial_end
        first_table = True
        if pending_initial == 0:
            await response.write(self._bookmark(res, self.store.resource_version, initial_end=True))
            pending_initial = None
        while True:
            wait = min(deadline, next_bookmark) - time.monotonic()
            if wait <= 0:
                if time.monotonic() >= deadline:
                    if bookmarks:
                        await response.write(self._bookmark(res, max(last_rv, self._watch_rv(watcher))))
                    return
                if bookmarks:
                    await response.write(self._bookmark(res, max(last_rv, self._watch_rv(watcher))))
                next_bookmark = time.monotonic() + self.bookmark_interval
                continue
            if watcher.queue.empty():
                try:
                    async with asyncio.timeout(wait):
                        event = await watcher.queue.get()
                except TimeoutError:
                    continue
            else:
                event = watcher.queue.get_nowait()
            batch = [event]
            while not watcher.queue.empty() and len(batch) < 500:
                batch.append(watcher.queue.get_nowait())
            lines = []
            for item in batch:
                if item is None:
                    break
                last_rv = max(last_rv, item.rv)
                lines.append(self._event_line(item, res, request, negotiated, first_table))
                first_table = False
                if pending_initial is not None:
                    pending_initial -= 1
                    if pending_initial == 0:
                        lines.append(self._bookmark(res, self.store.resource_version, initial_end=True))
                        pending_initial = None
            if lines:
                await response.write(b"".join(lines))
            if any(item is None for item in batch):
                return

    def _watch_rv(self, watcher: Watcher) -> int:
        """The resourceVersion a bookmark can safely report for an idle watcher."""
        return self.store.resource_version if watcher.queue.empty() else 0

    def _event_line(self, event: Event, res: Resource, request: web.Request, negotiated: Negotiated,
                    first_table: bool) -> bytes:
        """One watch event as a JSON line, in the negotiated form."""
        if negotiated.as_kind == "Table":
            table = self._table(res, [event.obj], request, rv=str(event.rv))
            if not first_table:
                table["columnDefinitions"] = None  # a real server sends null after the first event
            return encode({"type": event.type, "object": table}) + b"\n"
        if negotiated.as_kind in ("PartialObjectMetadata", "PartialObjectMetadataList"):
            return encode({"type": event.type, "object": _partial(from_stored(res, event.obj))}) + b"\n"
        raw = encode(from_stored(res, event.obj)) if res.storage else event.raw
        return b'{"type":"' + event.type.encode() + b'","object":' + raw + b"}\n"
