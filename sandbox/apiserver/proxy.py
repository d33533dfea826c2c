"""`pods/proxy` and `services/proxy`: the API server as an HTTP reverse proxy to a pod.

`GET|POST|PUT|PATCH|DELETE|HEAD /api/v1/namespaces/NS/pods/[SCHEME:]NAME[:PORT]/proxy/PATH` is
forwarded to `SCHEME://podIP:PORT/PATH` with the query string, the method, the headers (less
the hop-by-hop ones and the caller's `Authorization`) and the body, streamed both ways
(`aiohttp`'s client; nothing is buffered). This is what `kubectl proxy` + `curl
localhost:8001/api/v1/namespaces/default/pods/NAME:8080/proxy/` of the Kubernetes Basics
tutorial uses. The API server dials the pod itself: pods share the host network on their own
loopback IPs (kube-apiserver does the same with the pod IP, over its egress network).

As kube-apiserver's `pod.ResourceLocation` and `service.ResourceLocation` do:

* a pod without a port uses the first declared containerPort (none: port 80 of the scheme); a
  named port is looked up among the pod's containerPorts (a superset: kube-apiserver would
  try to dial the name);
* a Service port is given by number or name (`backend-service:80`, `backend-service:http`);
  `no service port 81 found for service "x"` (503) otherwise; the Endpoints' subset port of
  that name gives the target, one ready address picked at random; `no endpoints available
  for service "x"` (503) when none is ready;
* a pod without an IP is refused with 400 `address not allowed`; a failed dial is 503
  `error trying to reach service: dial tcp IP:PORT: connect: connection refused`;
* `.../proxy` without a trailing path is redirected (301) to `.../proxy/`, like the
  UpgradeAwareHandler.

Loopback pod IPs are not refused (kube-apiserver's `IsProxyableIP` would): every sandbox pod
has one. WebSocket upgrades through the proxy are not forwarded.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

import aiohttp
from aiohttp import web
from multidict import CIMultiDict

from . import errors
from .errors import ApiError

if TYPE_CHECKING:
    from .server import ApiServer, Target

HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te",
                        "trailer", "transfer-encoding", "upgrade", "host", "content-length"})
SESSION_KEY = "proxy-session"


def split_name(raw: str) -> tuple[str, str, str]:
    """`[scheme:]name[:port]` → (scheme, name, port), as `net.SplitSchemeNamePort`."""
    parts = raw.split(":")
    if len(parts) == 1:
        return "", parts[0], ""
    if len(parts) == 2:
        return "", parts[0], parts[1]
    if len(parts) == 3 and parts[0] in ("http", "https"):
        return parts[0], parts[1], parts[2]
    raise errors.bad_request(f"invalid request {raw}")


def proxy_path(request: web.Request, plural: str) -> str | None:
    """The (still escaped) path after `/<plural>/<name>/proxy`, or None when there is nothing
    after `proxy` (not even a slash)."""
    raw = request.raw_path.split("?", 1)[0]
    start = raw.find(f"/{plural}/")
    index = raw.find("/proxy", start + len(plural) + 2)
    rest = raw[index + len("/proxy"):]
    return rest if rest else None


def _pod_port(pod: dict, port: str) -> str:
    """A pod proxy port: the given number, a containerPort's name, or the first containerPort."""
    containers = pod.get("spec", {}).get("containers") or []
    if port.isdigit():
        return port
    for container in containers:
        for declared in container.get("ports") or []:
            if not port or declared.get("name") == port:
                return str(declared.get("containerPort"))
    return port


async def serve_pod_proxy(api: ApiServer, request: web.Request, target: Target) -> web.StreamResponse:
    """`pods/proxy`."""
    scheme, name, port = split_name(target.name or "")
    pod = api.registry.get(target.res, target.namespace, name).obj
    ip = pod.get("status", {}).get("podIP") or ""
    if not ip:
        raise errors.bad_request("address not allowed")
    port = _pod_port(pod, port)
    return await forward(api, request, target, scheme or "http", ip, port)


async def serve_service_proxy(api: ApiServer, request: web.Request, target: Target) -> web.StreamResponse:
    """`services/proxy`: one ready endpoint of the Service port."""
    from .kinds import endpoints

    scheme, name, port = split_name(target.name or "")
    service = api.registry.get(target.res, target.namespace, name).obj
    spec = service.get("spec", {})
    if spec.get("type") == "ExternalName":
        raise errors.bad_request(f"externalName services cannot be proxied: {target.namespace}/{name}")
    port_name = port
    if port.isdigit():
        found = [p for p in spec.get("ports") or [] if str(p.get("port")) == port]
        if not found:
            raise ApiError(503, "ServiceUnavailable", f'no service port {port} found for service "{name}"')
        port_name = found[0].get("name") or ""
    elif port and not any(p.get("name") == port for p in spec.get("ports") or []):
        raise ApiError(503, "ServiceUnavailable", f'no service port "{port}" found for service "{name}"')
    eps = api.registry.get(endpoints.RESOURCE, target.namespace, name).obj
    subsets = list(eps.get("subsets") or [])
    random.shuffle(subsets)
    for subset in subsets:
        for subset_port in subset.get("ports") or []:
            if (subset_port.get("name") or "") == port_name and subset.get("addresses"):
                address = random.choice(subset["addresses"])
                return await forward(api, request, target, scheme or "http", address["ip"],
                                     str(subset_port["port"]))
    raise ApiError(503, "ServiceUnavailable", f'no endpoints available for service "{name}"')


def _session(api: ApiServer) -> aiohttp.ClientSession:
    session: aiohttp.ClientSession | None = getattr(api, "_proxy_session", None)
    if session is None or session.closed:
        session = aiohttp.ClientSession(auto_decompress=False, timeout=aiohttp.ClientTimeout(
            total=None, connect=10, sock_read=None), connector=aiohttp.TCPConnector(ssl=False))
        api._proxy_session = session  # type: ignore[attr-defined]
    return session


async def close(api: ApiServer) -> None:
    """Close the proxy's client session (server shutdown)."""
    session: aiohttp.ClientSession | None = getattr(api, "_proxy_session", None)
    if session is not None:
        await session.close()


async def forward(api: ApiServer, request: web.Request, target: Target, scheme: str, ip: str,
                  port: str) -> web.StreamResponse:
    """Send the request on to `scheme://ip:port/<rest>` and stream the answer back."""
    rest = proxy_path(request, target.res.plural)
    if rest is None:
        location = request.raw_path.split("?", 1)[0] + "/"
        if request.query_string:
            location += "?" + request.query_string
        raise web.HTTPMovedPermanently(location)
    host = f"{ip}:{port}" if port else ip
    url = f"{scheme}://{host}{rest}"
    if request.query_string:
        url += "?" + request.query_string
    headers = CIMultiDict((k, v) for k, v in request.headers.items()
                          if k.lower() not in HOP_BY_HOP and k.lower() != "authorization")
    data = request.content if request.body_exists else None
    try:
        upstream = await _session(api).request(request.method, aiohttp.client.URL(url, encoded=True),
                                               headers=headers, data=data, allow_redirects=False,
                                               skip_auto_headers=("User-Agent", "Accept-Encoding"))
    except aiohttp.ClientConnectorError as exc:
        reason = exc.os_error.strerror if exc.os_error and exc.os_error.strerror else str(exc)
        if isinstance(exc.os_error, ConnectionRefusedError):
            reason = "connect: connection refused"
        raise ApiError(503, "ServiceUnavailable",
                       f"error trying to reach service: dial tcp {host}: {reason}") from None
    except aiohttp.ClientError as exc:
        raise ApiError(503, "ServiceUnavailable", f"error trying to reach service: {exc}") from None
    async with upstream:
        response = web.StreamResponse(status=upstream.status, reason=upstream.reason)
        for key, value in upstream.headers.items():
            if key.lower() not in HOP_BY_HOP:
                response.headers.add(key, value)
        if upstream.content_length is not None:
            response.content_length = upstream.content_length
        await response.prepare(request)
        if request.method != "HEAD":
            async for chunk in upstream.content.iter_any():
                await response.write(chunk)
        await response.write_eof()
    return response
