"""What backend_pod answers: the routes, the runtime switches and the state they change.

`State` holds everything a request can see or change at run time (readiness, liveness,
connection recycling, counters for /metrics); the handlers turn a parsed request plus the
connection it came on into a response. The wire protocol lives in `http.py` and connection
handling in `server.py`, so this module reads like the endpoint list in the README:

    GET  /                  who served this: pod identity + connection identity (HTML for browsers)
    GET  /healthz, /readyz  probes (503 with a reason when failing / not ready)
    POST /readyz/disable|enable, /healthz/fail|recover   runtime switches
    GET|POST /config        connection recycling and access log, changeable at run time
    GET  /delay?ms=N        answer after N ms (0..30000)
    GET  /work?ms=N         burn N ms of CPU (0..1000), then answer: load for the autoscaling lesson
    GET  /status/{code}     answer with that status (200..599)
    ANY  /echo              the identity plus the request as received (method, target, headers)
    GET  /metrics           Prometheus text format
"""

from __future__ import annotations

import base64
import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Union
from urllib.parse import parse_qsl

from backend_pod.config import (
    MAX_SECONDS,
    ConfigError,
    Settings,
    parse_access_log,
    parse_count,
    parse_seconds,
)
from backend_pod.http import Request, reason
from backend_pod.log import Log, timestamp

if TYPE_CHECKING:
    from backend_pod.server import Connection

MAX_DELAY_MS = 30_000
MAX_WORK_MS = 1_000
# /work gives up after this many times the asked CPU time in wall-clock time, so a starved pod
# (a loaded machine, a CPU limit) answers late rather than never.
WORK_WALL_FACTOR = 20
JSON = "application/json"
HTML = "text/html; charset=utf-8"
PROMETHEUS = "text/plain; version=0.0.4; charset=utf-8"

# (status, content type, body, extra header lines each ending in CRLF)
Response = tuple[int, str, bytes, str]


@dataclass(slots=True)
class Deferred:
    """A response that is built after ``seconds`` (the connection stays busy meanwhile)."""

    seconds: float
    build: Callable[[], Response]


Result = Union[Response, Deferred]  # noqa: UP007 - a runtime alias, kept readable


def json_response(status: int, payload: object, extra: str = "") -> Response:
    """A JSON response."""
    return status, JSON, json.dumps(payload, separators=(",", ":")).encode(), extra


def error(status: int, message: str, extra: str = "") -> Response:
    """A JSON error body: {"error": message, "status": status}."""
    return json_response(status, {"error": message, "status": status}, extra)


class State:
    """The process-wide state that requests read and switches change; one per process."""

    def __init__(self, settings: Settings, log: Log, *, now: float) -> None:
        self.settings = settings
        self.log = log
        self.boot_id = os.urandom(4).hex()
        self.started = now
        self.started_wall = time.time()
        self.starting = settings.start_delay > 0
        self.readiness_disabled = False
        self.liveness_failing = False
        self.draining = False
        self.max_conn_requests = settings.max_conn_requests
        self.max_conn_age = settings.max_conn_age
        self.access_log = settings.access_log
        self.connections: set[Connection] = set()
        self.conn_counter = 0
        self.accepted = 0
        self.closed: dict[str, int] = {}
        self.requests: dict[tuple[int, str], int] = {}
        self._ready = self.not_ready_reason() is None
        self._pod_json: dict[str, str] = {}
        self.page_style = page_style(settings.color)

    # -- identity -------------------------------------------------------------------------------

    def pod_ip(self, local_ip: str) -> str:
        """POD_IP if set, else the address the connection arrived on."""
        return self.settings.pod_ip or local_ip

    def pod_json(self, local_ip: str) -> str:
        """The pod identity object as JSON text (cached per local address)."""
        cached = self._pod_json.get(local_ip)
        if cached is None:
            s = self.settings
            cached = json.dumps({"name": s.pod_name, "ip": self.pod_ip(local_ip), "node": s.node_name,
                                 "namespace": s.namespace, "version": s.version, "color": s.color},
                                separators=(",", ":"))
            self._pod_json[local_ip] = cached
        return cached

    def next_conn_id(self) -> str:
        """A connection id unique across pods and restarts: random boot id + counter."""
        self.conn_counter += 1
        return f"{self.boot_id}-{self.conn_counter}"

    # -- readiness and liveness -----------------------------------------------------------------

    def not_ready_reason(self) -> str | None:
        """Why /readyz fails right now, or None when ready."""
        if self.draining:
            return "draining after SIGTERM"
        if self.readiness_disabled:
            return "disabled by POST /readyz/disable"
        if self.starting:
            return f"starting (START_DELAY {self.settings.start_delay:g} s)"
        return None

    @property
    def ready(self) -> bool:
        """Whether /readyz answers 200."""
        return self._ready

    def readiness_changed(self) -> None:
        """Log a ready/unready line when the readiness outcome flips."""
        why = self.not_ready_reason()
        ready = why is None
        if ready != self._ready:
            self._ready = ready
            if ready:
                self.log.event("ready")
            else:
                self.log.event("unready", reason=why)

    def start_delay_over(self) -> None:
        """Called once START_DELAY has passed."""
        self.starting = False
        self.readiness_changed()

    # -- counters ---------------------------------------------------------------------------------

    def count_closed(self, why: str) -> None:
        """Count a closed connection by reason."""
        self.closed[why] = self.closed.get(why, 0) + 1


# -- handlers ---------------------------------------------------------------------------------------


def identity_body(state: State, conn: Connection, req: Request, extra: str = "") -> bytes:
    """The JSON of GET /: pod, connection, request id, time; ``extra`` adds ',"k":v' members."""
    age_ms = int((conn.loop.time() - conn.opened) * 1000)
    return (
        f'{{"pod":{conn.pod_json},"connection":{{"id":"{conn.cid}","seq":{conn.seq},"age_ms":{age_ms},'
        f'"client":"{conn.peer}","keep_alive":{"true" if req.keep_alive else "false"}}},'
        f'"request_id":"{conn.request_id}","served_at":"{timestamp()}"{extra}}}'
    ).encode()


def page_style(color: str) -> str:
    """The stylesheet of the HTML page, in the pod's colour (validated at start-up)."""
    return (
        "body{margin:0;min-height:100vh;display:grid;place-items:center;background:#f6f7f9;"
        "color:#1d2330;font:16px/1.5 system-ui,sans-serif}main{text-align:center;padding:2rem}"
        f"h1{{margin:.2em 0;font-size:clamp(2rem,9vw,5.5rem);line-height:1.1;color:{color};"
        "word-break:break-all}dl{display:grid;grid-template-columns:auto auto;gap:.2rem 1rem;"
        "justify-content:center;text-align:left}dt{color:#5b6475}dd{margin:0;font-family:monospace}"
        ".hint{color:#5b6475;max-width:36rem}"
    )


def escape(text: str) -> str:
    """HTML-escape text for element content and quoted attributes (as html.escape, whose module
    would cost half a MiB of entity tables in every pod)."""
    return (text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
            .replace("'", "&#x27;"))


def identity_page(state: State, conn: Connection, req: Request) -> Response:
    """The small page a browser gets: the pod name large in the version's colour.

    A Content-Security-Policy nonce allows exactly its one inline style block; the empty icon
    link keeps browsers from asking for /favicon.ico, so each reload is one request and the
    connection's request number goes up by one.
    """
    s = state.settings
    nonce = base64.b64encode(os.urandom(12)).decode()
    esc = escape
    rows = [("Pod IP", state.pod_ip(conn.local_ip)), ("Node", s.node_name or "-"),
            ("Namespace", s.namespace or "-"), ("Version", s.version),
            ("Connection", f"{conn.cid} (request #{conn.seq} on it)"), ("Request id", conn.request_id),
            ("Served at", timestamp())]
    items = "".join(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in rows)
    body = (
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">"
        "<link rel=\"icon\" href=\"data:,\">"
        f"<title>{esc(s.pod_name)} ({esc(s.version)})</title>"
        f"<style nonce=\"{nonce}\">{state.page_style}</style></head>"
        f"<body><main><p>served by pod</p><h1>{esc(s.pod_name)}</h1><dl>{items}</dl>"
        "<p class=\"hint\">Reload the page: while the browser keeps its TCP connection open (keep-alive) "
        "the same pod answers and the request number goes up. A Service balances connections, "
        "not requests.</p></main></body></html>"
    ).encode()
    headers = (f"Content-Security-Policy: default-src 'none'; style-src 'nonce-{nonce}'; img-src data:\r\n"
               "Vary: Accept\r\nX-Content-Type-Options: nosniff\r\n")
    return 200, HTML, body, headers


def root(state: State, conn: Connection, req: Request) -> Result:
    """GET /: identity as JSON, or as an HTML page for browsers."""
    if "text/html" in req.headers.get("accept", ""):
        return identity_page(state, conn, req)
    return 200, JSON, identity_body(state, conn, req), "Vary: Accept\r\n"


def healthz(state: State, conn: Connection, req: Request) -> Result:
    """GET /healthz: liveness; 503 after POST /healthz/fail."""
    if state.liveness_failing:
        return json_response(503, {"status": "failing", "reason": "failed by POST /healthz/fail"})
    return json_response(200, {"status": "ok"})


def readyz(state: State, conn: Connection, req: Request) -> Result:
    """GET /readyz: readiness; 503 with the reason while starting, disabled or draining."""
    why = state.not_ready_reason()
    if why is not None:
        return json_response(503, {"ready": False, "reason": why})
    return json_response(200, {"ready": True})


def _readiness_switch(disabled: bool) -> Callable[[State, Connection, Request], Result]:
    """A handler for POST /readyz/disable (``disabled``) or /readyz/enable."""

    def switch(state: State, conn: Connection, req: Request) -> Result:
        if state.readiness_disabled != disabled:
            state.readiness_disabled = disabled
            state.log.event("readiness_switch", enabled=not disabled, by=conn.peer)
            state.readiness_changed()
        return json_response(200, {"ready": state.ready, "reason": state.not_ready_reason(),
                                   "readiness_disabled": disabled})
    switch.__doc__ = f"POST /readyz/{'disable' if disabled else 'enable'}: switch readiness."
    return switch


def _liveness_switch(failing: bool) -> Callable[[State, Connection, Request], Result]:
    """A handler for POST /healthz/fail (``failing``) or /healthz/recover."""

    def switch(state: State, conn: Connection, req: Request) -> Result:
        if state.liveness_failing != failing:
            state.liveness_failing = failing
            state.log.event("liveness_switch", healthy=not failing, by=conn.peer)
        return json_response(200, {"healthy": not failing})
    switch.__doc__ = f"POST /healthz/{'fail' if failing else 'recover'}: switch liveness."
    return switch


def _query(req: Request, allowed: tuple[str, ...]) -> dict[str, str] | Response:
    """Query parameters, or a 400 response for malformed, repeated or unknown ones."""
    try:
        pairs = parse_qsl(req.query, keep_blank_values=True, strict_parsing=bool(req.query),
                          max_num_fields=20)
    except ValueError:
        return error(400, "malformed query string")
    params: dict[str, str] = {}
    for key, value in pairs:
        if key not in allowed:
            return error(400, f"unknown parameter {key!r}; allowed: {', '.join(allowed)}")
        if key in params:
            return error(400, f"parameter {key!r} given more than once")
        params[key] = value
    return params


def delay(state: State, conn: Connection, req: Request) -> Result:
    """GET /delay?ms=N: answer with the identity after N milliseconds (0..30000)."""
    params = _query(req, ("ms",))
    if isinstance(params, tuple):
        return params
    raw = params.get("ms")
    if raw is None:
        return error(400, "missing parameter ms (milliseconds, 0..30000)")
    if not raw.isdigit() or not raw.isascii() or len(raw) > 6 or int(raw) > MAX_DELAY_MS:
        return error(400, f"ms must be an integer from 0 to {MAX_DELAY_MS}, got {raw[:20]!r}")
    ms = int(raw)
    return Deferred(ms / 1000, lambda: (200, JSON, identity_body(state, conn, req, f',"delay_ms":{ms}'), ""))


def burn_cpu(ms: int) -> float:
    """Spin on this thread until it has used ``ms`` milliseconds of CPU (bounded in wall time).

    Returns the CPU milliseconds actually used. CPU time, not wall time, is what the kubelet's
    metrics and so the HPA see: on a busy machine the same request takes longer but costs the
    same CPU."""
    start_cpu = time.thread_time()
    target = start_cpu + ms / 1000
    deadline = time.monotonic() + WORK_WALL_FACTOR * ms / 1000
    x = 0
    while time.thread_time() < target and time.monotonic() < deadline:
        for _ in range(2000):
            x = (x * 1103515245 + 12345) & 0xFFFFFFFF
    return (time.thread_time() - start_cpu) * 1000


def work(state: State, conn: Connection, req: Request) -> Result:
    """GET /work?ms=N: burn N ms of CPU (0..1000) on the server, then answer with the identity.

    The server is single-threaded, like many real services: while one request burns, the pod
    serves nothing else, so a pod saturates at about 1000/N requests per second."""
    params = _query(req, ("ms",))
    if isinstance(params, tuple):
        return params
    raw = params.get("ms", "20")
    if not raw.isdigit() or not raw.isascii() or len(raw) > 6 or int(raw) > MAX_WORK_MS:
        return error(400, f"ms must be an integer from 0 to {MAX_WORK_MS}, got {raw[:20]!r}")
    ms = int(raw)
    used = burn_cpu(ms) if ms else 0.0
    return 200, JSON, identity_body(state, conn, req, f',"work_ms":{ms},"cpu_ms":{used:.1f}'), ""


def echo(state: State, conn: Connection, req: Request) -> Result:
    """ANY /echo: the identity plus the request as the pod received it (like traefik/whoami).

    Behind a Service the client address is the proxy's, and an L4 proxy adds no headers: what
    arrives here is what the client sent.
    """
    request = {"method": req.method, "target": req.target,
               "http_version": "1.1" if req.version == 11 else "1.0", "headers": req.headers,
               "body_bytes": len(req.body or b"")}
    extra = f',"request":{json.dumps(request, separators=(",", ":"))}'
    return 200, JSON, identity_body(state, conn, req, extra), ""


def status(state: State, conn: Connection, req: Request) -> Result:
    """GET /status/{code}: answer with that status code (200..599) and the identity."""
    raw = req.path[len("/status/"):]
    if not raw.isdigit() or not raw.isascii() or len(raw) != 3 or not 200 <= int(raw) <= 599:
        return error(400, f"status code must be a number from 200 to 599, got {raw[:20]!r}")
    code = int(raw)
    if code in (204, 304):
        return code, JSON, b"", ""
    extra = f',"status":{code},"reason":{json.dumps(reason(code))}'
    return code, JSON, identity_body(state, conn, req, extra), ""


def config_view(state: State) -> dict[str, object]:
    """The runtime-changeable settings, plus the fixed shutdown behaviour for reference."""
    return {"max_conn_requests": state.max_conn_requests, "max_conn_age": state.max_conn_age,
            "access_log": state.access_log, "shutdown_mode": state.settings.shutdown_mode,
            "drain_seconds": state.settings.drain_seconds, "start_delay": state.settings.start_delay}


_CONFIG_KEYS = ("max_conn_requests", "max_conn_age", "access_log")


def _config_from_json(body: bytes) -> dict[str, str] | Response:
    """Settings from a JSON body, as text for the same parsers the query form goes through."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        return error(400, "body is not valid JSON")
    if not isinstance(data, dict):
        return error(400, 'body must be a JSON object like {"max_conn_requests": 10}')
    changes: dict[str, str] = {}
    for key, value in data.items():
        if key not in _CONFIG_KEYS:
            return error(400, f"unknown setting {key!r}; allowed: {', '.join(_CONFIG_KEYS)}")
        if key == "access_log":
            if not isinstance(value, str):
                return error(400, "access_log must be one of off, conn, all")
            changes[key] = value
        elif isinstance(value, bool) or not isinstance(value, int | float):
            return error(400, f"{key} must be a number")
        elif isinstance(value, float) and not math.isfinite(value):
            return error(400, f"{key} must be a finite number")
        elif key == "max_conn_requests" and value != int(value):
            return error(400, "max_conn_requests must be a whole number")
        else:
            changes[key] = str(int(value)) if key == "max_conn_requests" else str(value)
    return changes


def config(state: State, conn: Connection, req: Request) -> Result:
    """GET /config shows, POST /config changes recycling and access log (JSON body or query)."""
    if req.method != "POST":
        if req.query:
            return error(400, "GET /config takes no parameters; use POST to change settings")
        return json_response(200, config_view(state))
    body = req.body or b""
    form = req.headers.get("content-type", "").startswith("application/x-www-form-urlencoded")
    if body.strip() and not form:
        if req.query:
            return error(400, "send settings either as a JSON body or as query parameters, not both")
        changes = _config_from_json(body)
    else:
        if form:
            req.query = "&".join(part for part in (req.query, body.decode("latin-1")) if part)
        changes = _query(req, _CONFIG_KEYS)
    if isinstance(changes, tuple):
        return changes
    if not changes:
        return error(400, "no settings given; use max_conn_requests, max_conn_age or access_log")
    try:
        parsed = {
            key: (parse_count(value, name=key) if key == "max_conn_requests"
                  else parse_seconds(value, name=key, maximum=MAX_SECONDS) if key == "max_conn_age"
                  else parse_access_log(value, name=key))
            for key, value in changes.items()
        }
    except ConfigError as exc:
        return error(400, str(exc))
    for key, value in parsed.items():
        setattr(state, key, value)
    state.log.event("config_changed", by=conn.peer, **{k: parsed[k] for k in sorted(parsed)})
    return json_response(200, config_view(state))


def _label(value: str) -> str:
    """Escape a Prometheus label value."""
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def metrics(state: State, conn: Connection, req: Request) -> Result:
    """GET /metrics: Prometheus text exposition format 0.0.4."""
    s = state.settings
    lines = [
        "# HELP backend_http_requests_total HTTP responses sent, by status code and handler.",
        "# TYPE backend_http_requests_total counter",
    ]
    lines += [f'backend_http_requests_total{{code="{code}",handler="{name}"}} {count}'
              for (code, name), count in sorted(state.requests.items())]
    busy = sum(1 for c in state.connections if c.busy)
    lines += [
        "# HELP backend_connections_accepted_total TCP connections accepted.",
        "# TYPE backend_connections_accepted_total counter",
        f"backend_connections_accepted_total {state.accepted}",
        "# HELP backend_connections_closed_total TCP connections closed, by reason.",
        "# TYPE backend_connections_closed_total counter",
    ]
    lines += [f'backend_connections_closed_total{{reason="{why}"}} {count}'
              for why, count in sorted(state.closed.items())]
    lines += [
        "# HELP backend_open_connections TCP connections open now.",
        "# TYPE backend_open_connections gauge",
        f"backend_open_connections {len(state.connections)}",
        "# HELP backend_in_flight_requests Requests being served now (e.g. waiting in /delay).",
        "# TYPE backend_in_flight_requests gauge",
        f"backend_in_flight_requests {busy}",
        "# HELP backend_ready 1 when /readyz answers 200.",
        "# TYPE backend_ready gauge",
        f"backend_ready {int(state.ready)}",
        "# HELP backend_healthy 1 when /healthz answers 200.",
        "# TYPE backend_healthy gauge",
        f"backend_healthy {int(not state.liveness_failing)}",
        "# HELP backend_draining 1 after SIGTERM while the pod drains.",
        "# TYPE backend_draining gauge",
        f"backend_draining {int(state.draining)}",
        "# HELP backend_max_conn_requests Connection recycling after N requests (0 = off).",
        "# TYPE backend_max_conn_requests gauge",
        f"backend_max_conn_requests {state.max_conn_requests}",
        "# HELP backend_max_conn_age_seconds Connection recycling after an age (0 = off).",
        "# TYPE backend_max_conn_age_seconds gauge",
        f"backend_max_conn_age_seconds {state.max_conn_age:g}",
        "# HELP backend_info Identity of this backend; always 1.",
        "# TYPE backend_info gauge",
        f'backend_info{{pod="{_label(s.pod_name)}",namespace="{_label(s.namespace)}",'
        f'node="{_label(s.node_name)}",version="{_label(s.version)}",color="{_label(s.color)}"}} 1',
        "# HELP process_start_time_seconds Start time of the process since the Unix epoch.",
        "# TYPE process_start_time_seconds gauge",
        f"process_start_time_seconds {state.started_wall:.3f}",
    ]
    rss = _rss_bytes()
    if rss is not None:
        lines += ["# HELP process_resident_memory_bytes Resident memory size in bytes.",
                  "# TYPE process_resident_memory_bytes gauge",
                  f"process_resident_memory_bytes {rss}"]
    return 200, PROMETHEUS, ("\n".join(lines) + "\n").encode(), ""


def _rss_bytes() -> int | None:
    """Resident memory of this process (Linux), or None where /proc is missing."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


Handler = Callable[["State", "Connection", Request], Result]
READ = ("GET", "HEAD")

# path -> (handler name for metrics, allowed methods, handler)
ROUTES: dict[str, tuple[str, tuple[str, ...], Handler]] = {
    "/": ("root", READ, root),
    "/healthz": ("healthz", READ, healthz),
    "/readyz": ("readyz", READ, readyz),
    "/readyz/disable": ("readyz_disable", ("POST",), _readiness_switch(True)),
    "/readyz/enable": ("readyz_enable", ("POST",), _readiness_switch(False)),
    "/healthz/fail": ("healthz_fail", ("POST",), _liveness_switch(True)),
    "/healthz/recover": ("healthz_recover", ("POST",), _liveness_switch(False)),
    "/config": ("config", ("GET", "HEAD", "POST"), config),
    "/delay": ("delay", ("GET", "HEAD", "POST"), delay),
    "/work": ("work", ("GET", "HEAD", "POST"), work),
    "/metrics": ("metrics", READ, metrics),
    "/echo": ("echo", ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"), echo),
}
STATUS_ROUTE = ("status", ("GET", "HEAD", "POST"), status)


def dispatch(state: State, conn: Connection, req: Request) -> tuple[str, Result]:
    """Route a request: (handler name, response or Deferred)."""
    route = ROUTES.get(req.path)
    if route is None:
        if not req.path.startswith("/status/"):
            return "not_found", error(404, f"no such path {req.path[:200]!r}; try / /healthz /readyz "
                                           "/metrics /config /echo /delay?ms=100 /status/503")
        route = STATUS_ROUTE
    name, methods, handler = route
    if req.method not in methods:
        return name, error(405, f"{req.method} is not allowed on {req.path}; use {', '.join(methods)}",
                           f"Allow: {', '.join(methods)}\r\n")
    return name, handler(state, conn, req)
