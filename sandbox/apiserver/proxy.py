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
has one.

Upgrades (WebSocket above all: a dashboard behind `kubectl proxy`) are tunnelled as the
UpgradeAwareHandler does: a request with `Connection: Upgrade` goes to the pod on a connection
of its own with its upgrade headers; when the pod answers `101 Switching Protocols`, that answer
goes back to the client and from then on the bytes flow both ways untouched until either side
closes; any other answer is relayed as a normal response (the pod's body, decoded by httptools
and re-framed), then the connection ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from typing import TYPE_CHECKING

import aiohttp
import httptools
from aiohttp import web
from multidict import CIMultiDict

from . import errors
from .errors import ApiError
from .upgraded import take_over

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
    if is_upgrade(request) and scheme == "http":
        return await forward_upgrade(request, ip, int(port or 80), rest)
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
        raise dial_error(host, exc.os_error or OSError(str(exc))) from None
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


def is_upgrade(request: web.Request) -> bool:
    """`httpstream.IsUpgradeRequest`: a `Connection` header naming `upgrade`."""
    tokens = (token.strip().lower() for value in request.headers.getall("Connection", [])
              for token in value.split(","))
    return "upgrade" in tokens and bool(request.headers.get("Upgrade"))


def dial_error(host: str, exc: OSError) -> ApiError:
    """503 as kube-apiserver words a failed dial."""
    reason = "connect: connection refused" if isinstance(exc, ConnectionRefusedError) else (
        exc.strerror or str(exc) or type(exc).__name__)
    return ApiError(503, "ServiceUnavailable", f"error trying to reach service: dial tcp {host}: {reason}")


class _Head:
    """httptools callbacks for the pod's answer: status, headers, then body pieces."""

    def __init__(self) -> None:
        self.reason = ""
        self.headers: list[tuple[str, str]] = []
        self.complete = False
        self.body: asyncio.Queue[bytes | None] = asyncio.Queue()

    def on_status(self, status: bytes) -> None:
        self.reason += status.decode("latin-1")

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name.decode("latin-1"), value.decode("latin-1")))

    def on_headers_complete(self) -> None:
        self.complete = True

    def on_body(self, body: bytes) -> None:
        self.body.put_nowait(bytes(body))

    def on_message_complete(self) -> None:
        self.body.put_nowait(None)


async def forward_upgrade(request: web.Request, ip: str, port: int, rest: str) -> web.StreamResponse:
    """Tunnel an upgrade request to ``ip:port`` (see the module docstring)."""
    host = f"{ip}:{port}"
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(ip, port), timeout=10)
    except (OSError, TimeoutError) as exc:
        raise dial_error(host, exc if isinstance(exc, OSError) else OSError("i/o timeout")) from None
    try:
        target = rest + ("?" + request.query_string if request.query_string else "")
        lines = [f"{request.method} {target} HTTP/1.1", f"Host: {host}"]
        lines += [f"{k}: {v}" for k, v in request.headers.items()
                  if k.lower() not in ("host", "authorization", "content-length", "transfer-encoding")]
        body = await request.read() if request.body_exists else b""
        if body:
            lines.append(f"Content-Length: {len(body)}")
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
        head = _Head()
        parser = httptools.HttpResponseParser(head)
        leftover: bytes | None = None
        while not head.complete:
            chunk = await reader.read(65536)
            if not chunk:
                raise ApiError(503, "ServiceUnavailable",
                               f"error trying to reach service: {host} closed the connection")
            try:
                parser.feed_data(chunk)
            except httptools.HttpParserUpgrade as upgrade:
                leftover = chunk[upgrade.args[0]:]
            except httptools.HttpParserError as exc:
                raise ApiError(503, "ServiceUnavailable", f"error trying to reach service: {exc}") from None
        status = parser.get_status_code()
        response = web.StreamResponse(status=status, reason=head.reason or None)
        hop = HOP_BY_HOP - {"connection", "upgrade"} if status == 101 else HOP_BY_HOP
        for key, value in head.headers:
            if key.lower() not in hop:
                response.headers.add(key, value)
        if status != 101:
            return await _relay_answer(request, response, head, parser, reader)
        await response.prepare(request)
        upgraded = take_over(request, response)
        if leftover:
            await upgraded.send(leftover)

        async def client_to_pod() -> None:
            async for chunk in upgraded.chunks:
                writer.write(chunk)
                await writer.drain()
            with contextlib.suppress(OSError):
                writer.write_eof()

        async def pod_to_client() -> None:
            while chunk := await reader.read(65536):
                await upgraded.send(chunk)

        pumps = [asyncio.create_task(client_to_pod()), asyncio.create_task(pod_to_client())]
        try:
            await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for pump in pumps:
                pump.cancel()
            await asyncio.gather(*pumps, return_exceptions=True)
            upgraded.close()
        return response
    finally:
        writer.close()


async def _relay_answer(request: web.Request, response: web.StreamResponse, head: _Head,
                        parser: httptools.HttpResponseParser,
                        reader: asyncio.StreamReader) -> web.StreamResponse:
    """A pod that did not switch protocols: its answer as a normal response."""
    await response.prepare(request)
    while True:
        while not head.body.empty():
            piece = head.body.get_nowait()
            if piece is None:
                await response.write_eof()
                return response
            await response.write(piece)
        chunk = await reader.read(65536)
        if not chunk:
            with contextlib.suppress(httptools.HttpParserError):
                parser.feed_data(b"")  # a body that ends with the connection
            await response.write_eof()
            return response
        parser.feed_data(chunk)
