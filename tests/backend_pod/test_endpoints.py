"""Every endpoint and runtime switch of backend_pod, against the real process."""

from __future__ import annotations

import re
from collections.abc import Callable

from tests.backend_pod.conftest import Backend, wait_until

IDENTITY_HEADERS = ("X-Pod-Name", "X-Pod-IP", "X-Pod-Version", "X-Conn-Id", "X-Conn-Seq", "X-Request-Id")


def test_root_reports_pod_and_connection_identity(start_backend: Callable[..., Backend]) -> None:
    backend = start_backend(env={"POD_NAME": "backend-7d9f-x2k4q", "POD_IP": "10.1.2.3",
                                 "NODE_NAME": "node-b", "POD_NAMESPACE": "lab", "VERSION": "v2",
                                 "COLOR": "#e8590c"})
    resp = backend.get("/")
    assert resp.status == 200
    assert resp.headers["Content-Type"] == "application/json"
    data = resp.json()
    assert data["pod"] == {"name": "backend-7d9f-x2k4q", "ip": "10.1.2.3", "node": "node-b",
                           "namespace": "lab", "version": "v2", "color": "#e8590c"}
    conn = data["connection"]
    assert conn["seq"] == 1 and conn["age_ms"] >= 0 and conn["keep_alive"] is True
    assert re.fullmatch(r"[0-9a-f]{8}-\d+", conn["id"])
    assert conn["client"].startswith("127.0.0.1:")
    assert data["request_id"] and re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", data["served_at"])
    assert resp.headers["X-Pod-Name"] == "backend-7d9f-x2k4q"
    assert resp.headers["X-Pod-IP"] == "10.1.2.3"
    assert resp.headers["X-Pod-Version"] == "v2"
    assert resp.headers["X-Conn-Id"] == conn["id"]
    assert resp.headers["X-Conn-Seq"] == "1"
    assert resp.headers["X-Request-Id"] == data["request_id"]
    assert resp.headers["Cache-Control"] == "no-store"


def test_identity_defaults_to_hostname_and_connection_address(start_backend: Callable[..., Backend]) -> None:
    backend = start_backend(env={"POD_NAME": "", "HOSTNAME": "from-hostname"})
    data = backend.get("/").json()
    assert data["pod"]["name"] == "from-hostname"
    assert data["pod"]["ip"] == "127.0.0.1"
    assert data["pod"]["version"] == "v1" and data["pod"]["color"] == "#2f7ed8"


def test_identity_headers_on_every_response(backend: Backend) -> None:
    responses = [backend.get(path) for path in ("/", "/healthz", "/readyz", "/metrics", "/config", "/nope",
                                                 "/delay?ms=1", "/delay?ms=x", "/status/503", "/status/204")]
    responses.append(backend.request("HEAD", "/"))
    responses.append(backend.request("DELETE", "/"))
    for resp in responses:
        for name in IDENTITY_HEADERS:
            assert resp.headers[name], (resp.status, name)
        assert resp.headers["X-Pod-Name"] == "backend-test-0"


def test_client_request_id_is_echoed_when_safe(backend: Backend) -> None:
    resp = backend.get("/", headers={"X-Request-Id": "trace-42.a"})
    assert resp.headers["X-Request-Id"] == "trace-42.a" and resp.json()["request_id"] == "trace-42.a"
    unsafe = backend.get("/", headers={"X-Request-Id": 'bad"id<script>'})
    assert unsafe.json()["request_id"] != 'bad"id<script>'
    assert unsafe.json()["request_id"].startswith(unsafe.headers["X-Conn-Id"])


def test_browser_gets_escaped_html_in_the_version_colour(start_backend: Callable[..., Backend]) -> None:
    backend = start_backend(env={"POD_NAME": "<script>alert('x')</script>&", "VERSION": "v2<b>",
                                 "COLOR": "rebeccapurple", "NODE_NAME": '"onmouseover=x'})
    resp = backend.get("/", headers={"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"})
    assert resp.status == 200
    assert resp.headers["Content-Type"] == "text/html; charset=utf-8"
    page = resp.body.decode()
    assert "<script>" not in page and "<b>" not in page and '"onmouseover' not in page
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;&amp;" in page
    assert re.search(r"<h1>&lt;script&gt;.*</h1>", page)
    assert "color:rebeccapurple" in page
    csp = resp.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "script" not in csp
    found = re.search(r"style-src 'nonce-([A-Za-z0-9+/=]{16})'", csp)
    assert found, csp
    nonce = found.group(1)
    assert f'<style nonce="{nonce}">' in page and page.count("<style") == 1
    assert '<link rel="icon" href="data:,">' in page, "no /favicon.ico request after the page"
    # The header carries the raw (header-safe) name; JSON clients still get JSON.
    assert backend.get("/").headers["Content-Type"] == "application/json"


def test_head_has_headers_and_no_body(backend: Backend) -> None:
    resp = backend.request("HEAD", "/")
    assert resp.status == 200 and resp.body == b""
    assert int(resp.headers["Content-Length"]) > 0


def test_healthz_switches(backend: Backend) -> None:
    assert backend.get("/healthz").status == 200
    failed = backend.post("/healthz/fail")
    assert failed.status == 200 and failed.json() == {"healthy": False}
    resp = backend.get("/healthz")
    assert resp.status == 503 and resp.json()["reason"] == "failed by POST /healthz/fail"
    assert backend.get("/readyz").status == 200, "liveness does not change readiness"
    assert backend.metric("backend_healthy") == 0
    assert backend.post("/healthz/recover").json() == {"healthy": True}
    assert backend.get("/healthz").status == 200
    assert "event=liveness_switch" in backend.logs()


def test_readyz_switches(backend: Backend) -> None:
    assert backend.get("/readyz").json() == {"ready": True}
    resp = backend.post("/readyz/disable")
    assert resp.status == 200 and resp.json()["ready"] is False
    resp = backend.get("/readyz")
    assert resp.status == 503
    assert resp.json() == {"ready": False, "reason": "disabled by POST /readyz/disable"}
    assert backend.metric("backend_ready") == 0
    assert backend.get("/").status == 200, "an unready pod still answers whoever reaches it"
    assert backend.post("/readyz/enable").json()["ready"] is True
    assert backend.get("/readyz").status == 200
    logs = backend.wait_log("event=ready\n")
    assert 'event=unready reason="disabled by POST /readyz/disable"' in logs


def test_switches_need_post(backend: Backend) -> None:
    resp = backend.get("/readyz/disable")
    assert resp.status == 405 and resp.headers["Allow"] == "POST"
    assert "GET is not allowed" in resp.json()["error"]
    assert backend.get("/readyz").status == 200


def test_start_delay_keeps_readyz_failing_then_ready(start_backend: Callable[..., Backend]) -> None:
    backend = start_backend(env={"START_DELAY": "4"})
    early = backend.get("/readyz")
    assert early.status == 503 and early.json()["reason"].startswith("starting (START_DELAY 4 s")
    assert backend.get("/healthz").status == 200
    wait_until(lambda: backend.get("/readyz").status == 200, what="readiness after START_DELAY")
    logs = backend.logs()
    assert logs.index("event=listening") < logs.index("event=unready") < logs.index("event=ready")


def test_delay(backend: Backend) -> None:
    resp = backend.get("/delay?ms=150")
    assert resp.status == 200 and resp.json()["delay_ms"] == 150
    assert resp.json()["pod"]["name"] == "backend-test-0"
    for query, message in (("", "missing parameter ms"), ("?ms=-1", "integer from 0 to 30000"),
                           ("?ms=30001", "integer from 0 to 30000"), ("?ms=1e3", "integer"),
                           ("?ms=1&ms=2", "more than once"), ("?sleep=1", "unknown parameter"),
                           ("?ms=99999999999999", "integer from 0 to 30000")):
        bad = backend.get("/delay" + query)
        assert bad.status == 400, query
        assert message in bad.json()["error"], (query, bad.json())


def test_status(backend: Backend) -> None:
    for code in (200, 201, 302, 404, 418, 500, 503, 599):
        resp = backend.get(f"/status/{code}")
        assert resp.status == code
        assert resp.json()["status"] == code and resp.json()["pod"]["name"] == "backend-test-0"
    no_content = backend.get("/status/204")
    assert no_content.status == 204 and no_content.body == b""
    for raw in ("99", "100", "101", "199", "600", "abc", "", "2000", "-200"):
        bad = backend.get(f"/status/{raw}")
        assert bad.status == 400, raw
        assert "from 200 to 599" in bad.json()["error"]


def test_unknown_paths_and_methods(backend: Backend) -> None:
    resp = backend.get("/does/not/exist?x=1")
    assert resp.status == 404 and "/does/not/exist" in resp.json()["error"]
    assert backend.get("/healthz/").status == 404
    resp = backend.request("PUT", "/healthz")
    assert resp.status == 405 and resp.headers["Allow"] == "GET, HEAD"


METRIC_LINE = re.compile(r'[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\\n]|\\.)*",?)*\})? '
                         r"-?[0-9.e+]+")


def test_metrics_prometheus_format(backend: Backend) -> None:
    conn = backend.connection()
    for _ in range(3):
        backend.get("/", conn=conn)
    backend.get("/status/503", conn=conn)
    backend.get("/nope", conn=conn)
    conn.close()
    resp = backend.get("/metrics")
    assert resp.status == 200
    assert resp.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    text = resp.body.decode()
    assert text.endswith("\n")
    typed: set[str] = set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            typed.add(line.split()[2])
        elif not line.startswith("# HELP "):
            assert METRIC_LINE.fullmatch(line), line
            assert line.split("{")[0].split(" ")[0] in typed, f"sample before its TYPE: {line}"
    assert 'backend_http_requests_total{code="200",handler="root"} 3' in text
    assert 'backend_http_requests_total{code="503",handler="status"} 1' in text
    assert 'backend_http_requests_total{code="404",handler="not_found"} 1' in text
    assert "backend_ready 1" in text and "backend_draining 0" in text
    wait_until(lambda: backend.metric("backend_open_connections") == 1, what="one open connection")
    assert backend.metric("backend_connections_accepted_total") >= 2
    assert 'backend_info{pod="backend-test-0"' in text


def test_config_view_and_changes(backend: Backend) -> None:
    view = backend.get("/config").json()
    assert view["max_conn_requests"] == 0 and view["max_conn_age"] == 0 and view["shutdown_mode"] == "drain"
    resp = backend.post("/config", body='{"max_conn_requests": 7, "max_conn_age": 2.5}',
                        headers={"Content-Type": "application/json"})
    assert resp.status == 200
    assert resp.json()["max_conn_requests"] == 7 and resp.json()["max_conn_age"] == 2.5
    assert backend.post("/config?max_conn_requests=3").json()["max_conn_requests"] == 3
    form = backend.post("/config", body="max_conn_age=0&access_log=all",
                        headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert form.json()["max_conn_age"] == 0 and form.json()["access_log"] == "all"
    assert backend.metric("backend_max_conn_requests") == 3
    assert "event=config_changed" in backend.logs()


def test_config_rejects_bad_input_and_changes_nothing(backend: Backend) -> None:
    backend.post("/config?max_conn_requests=4")
    cases = [
        ("/config", '{"max_conn_requests": -1}', "max_conn_requests"),
        ("/config", '{"max_conn_requests": 1.5}', "whole number"),
        ("/config", '{"max_conn_requests": true}', "must be a number"),
        ("/config", '{"max_conn_age": "x"}', "must be a number"),
        ("/config", '{"max_conn_age": 1e9}', "between 0 and"),
        ("/config", '{"max_conn_age": 1' + "0" * 400 + "}", "between 0 and"),
        ("/config", '{"max_conn_requests": 1' + "0" * 400 + "}", "at most"),
        ("/config", '{"bogus": 1}', "unknown setting"),
        ("/config", '{"max_conn_requests": 5, "bogus": 1}', "unknown setting"),
        ("/config", "[1, 2]", "JSON object"),
        ("/config", "{not json", "not valid JSON"),
        ("/config", "[" * 200_000, "not valid JSON"),
        ("/config", b'{"max_conn_age": "\xff"}', "not valid JSON"),
        ("/config", '{"access_log": "loud"}', "access_log"),
        ("/config?max_conn_requests=abc", None, "not a non-negative integer"),
        ("/config?max_conn_age=-3", None, "between 0 and"),
        ("/config?nope=1", None, "unknown parameter"),
        ("/config", None, "no settings given"),
        ("/config?max_conn_age=1", '{"max_conn_requests": 1}', "not both"),
    ]
    for path, body, message in cases:
        resp = backend.post(path, body=body, headers={"Content-Type": "application/json"} if body else None)
        assert resp.status == 400, (path, body)
        assert message in resp.json()["error"], (path, body, resp.json())
    assert backend.get("/config").json()["max_conn_requests"] == 4
    assert backend.get("/config?x=1").status == 400


def test_echo_shows_the_request_as_received(backend: Backend) -> None:
    resp = backend.post("/echo?a=1", body=b"12345",
                        headers={"X-Custom": "hello", "Content-Type": "text/plain"})
    assert resp.status == 200
    data = resp.json()
    assert data["pod"]["name"] == "backend-test-0"
    request = data["request"]
    assert (request["method"], request["target"], request["http_version"]) == ("POST", "/echo?a=1", "1.1")
    assert request["headers"]["x-custom"] == "hello" and request["body_bytes"] == 5
    assert backend.request("DELETE", "/echo").json()["request"]["method"] == "DELETE"
    assert backend.request("TRACE", "/echo").status == 405


def test_work_burns_the_requested_cpu_time(backend: Backend) -> None:
    resp = backend.get("/work?ms=50")
    assert resp.status == 200
    data = resp.json()
    assert data["work_ms"] == 50 and data["pod"]["name"] == "backend-test-0"
    assert 45 <= data["cpu_ms"] <= 1000
    assert backend.get("/work").json()["work_ms"] == 20


def test_work_is_bounded(backend: Backend) -> None:
    for query in ("ms=1001", "ms=-1", "ms=x", "ms=5&ms=6", "cpu=5"):
        resp = backend.get(f"/work?{query}")
        assert resp.status == 400, query
        assert resp.json()["error"], query
    assert backend.get("/work?ms=0").json()["cpu_ms"] == 0
