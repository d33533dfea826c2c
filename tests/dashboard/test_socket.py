"""The dashboard's socket and HTTP edge through a real daphne (autobahn, twisted, TCP), watching
an in-memory fake API: close codes, origins, bad frames, slow readers, impossible acks,
snapshots above daphne's 1 MiB message limit, malformed requests and secrets in the log."""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import encodings.aliases
import json
import random
import re
import time
from collections import Counter
from collections.abc import Iterator

import aiohttp
import pytest
import requests

from tests import polling
from tests.dashboard.canned import pod
from tests.dashboard.socketlab import (
    SocketLab,
    frames_until,
    is_live,
    last_seq,
    masked_frame,
    node_obj,
    raw_websocket,
    socket_closed,
)

pytestmark = [pytest.mark.timeout(600)]

MIB = 1024 * 1024
SLOW, ACK = 2, 3
MAX_UNACKED = 64 * 1024


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SocketLab]:
    """One daphne for the module, with short slow-client timeouts and a small byte window."""
    running = SocketLab(tmp_path_factory.mktemp("socket-lab"), env={
        "LBDEMO_WS_SLOW_CLIENT_SECONDS": str(SLOW), "LBDEMO_WS_ACK_TIMEOUT_SECONDS": str(ACK),
        "LBDEMO_WS_MAX_UNACKED_BYTES": str(MAX_UNACKED)})
    running.api.put("Node", node_obj("node-1"))
    running.api.put_many("Pod", [pod(f"backend-{i}", "1") for i in range(3)])
    yield running
    running.stop()


def tracebacks(lab: SocketLab) -> int:
    return lab.log().count("Traceback")


def fat_pod(name: str) -> dict:
    """A pod whose card is ~8 KB (long labels), to fill socket buffers quickly."""
    return pod(name, "1", labels={"app": "backend", **{f"k{i}": "v" * 60 for i in range(100)}})


async def close_code(ws: aiohttp.ClientWebSocketResponse, timeout: float = 30) -> int | None:
    """Read until the socket closes; its close code."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        message = await ws.receive(timeout=max(0.1, deadline - time.monotonic()))
        if message.type in {aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING}:
            return ws.close_code
        if message.type == aiohttp.WSMsgType.ERROR:
            return ws.close_code
    raise AssertionError("the socket stayed open")


async def test_unknown_paths_close_with_4404_without_a_traceback(lab: SocketLab) -> None:
    before = tracebacks(lab)
    async with aiohttp.ClientSession() as session:
        for cookie in (False, True):
            for path in ("/ws/nope/", "/ws/", "/ws/cluster/extra", "/%2e%2e/"):
                ws = await lab.ws(session, path, cookie=cookie)
                assert await close_code(ws) == 4404, path
    assert tracebacks(lab) == before


async def test_a_foreign_origin_is_refused_by_scheme_host_and_port(lab: SocketLab) -> None:
    port = lab.port
    async with aiohttp.ClientSession() as session:
        ws = await lab.ws(session)
        assert is_live((await frames_until(ws, is_live))[-1])
        await ws.close()
        for origin in (f"http://127.0.0.1:{port + 1}", "http://127.0.0.1:9999", f"https://127.0.0.1:{port}",
                       "https://127.0.0.1", f"http://[::1]:{port}", f"http://localhost:{port}",
                       "http://evil.example", "null", f"http://127.0.0.1:{port}@evil.example"):
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await lab.ws(session, origin=origin)
            assert refused.value.status == 403, origin


async def test_bad_frames_get_the_documented_close_and_no_traceback(lab: SocketLab) -> None:
    before = tracebacks(lab)
    cases: list[tuple[bytes, int, set[int | None]]] = [
        (b"\x00\x01binary", 0x2, {4400}),
        (b"", 0x1, {4400}),
        (b"[" * 500 + b"]" * 500, 0x1, {4400}),
        (b'{"a":' * 200 + b"1" + b"}" * 200, 0x1, {4400}),
        (b"[" * 100_000, 0x1, {4400}),
        (b"x" * 5000, 0x1, {4400}),
        (json.dumps({"type": "ack", "seq": 1.5}).encode(), 0x1, {4400}),
        (json.dumps({"type": "ack", "seq": True}).encode(), 0x1, {4400}),
        (json.dumps({"type": "hello"}).encode(), 0x1, {4400}),
        # autobahn's own answers (before the application sees anything): invalid UTF-8 and a
        # message over daphne's 1 MiB limit drop the connection (or close with 1007 / 1009).
        (b"\xff\xfe invalid utf-8", 0x1, {1007, None}),
        (b"y" * (2 * MIB), 0x1, {1009, None}),
    ]
    for payload, opcode, codes in cases:
        sock = raw_websocket(lab.port, cookie=lab.cookie(), origin=lab.origin(), rcvbuf=1 << 20)
        try:
            sock.sendall(masked_frame(payload, opcode=opcode))
        except (ConnectionResetError, BrokenPipeError):
            code = None  # autobahn dropped the connection while the 2 MiB frame was still going out
        else:
            code = read_close_code(sock)
        sock.close()
        assert code in codes, (payload[:40], code)
    assert tracebacks(lab) == before


def read_close_code(sock: object, timeout: float = 30) -> int | None:
    """Read server frames from a raw websocket until its close frame; the close code."""
    import socket as socketlib

    assert isinstance(sock, socketlib.socket)
    sock.settimeout(timeout)
    buffer = b""

    def need(n: int) -> bytes:
        nonlocal buffer
        while len(buffer) < n:
            chunk = sock.recv(1 << 20)
            if not chunk:
                raise EOFError
            buffer += chunk
        out, buffer = buffer[:n], buffer[n:]
        return out

    try:
        while True:
            head = need(2)
            opcode, n = head[0] & 0x0F, head[1] & 0x7F
            if n == 126:
                n = int.from_bytes(need(2), "big")
            elif n == 127:
                n = int.from_bytes(need(8), "big")
            payload = need(n)
            if opcode == 0x8:
                return int.from_bytes(payload[:2], "big") if len(payload) >= 2 else None
    except (EOFError, ConnectionResetError):
        return None


async def test_fuzzed_frames_never_cause_1011_or_a_traceback(lab: SocketLab) -> None:
    rng = random.Random(1015)
    before = tracebacks(lab)
    alphabet = '[]{}":,0123456789.-eEtruefalsnl \\x"ackseqtyperesync'

    def fuzz() -> tuple[bytes, int]:
        kind = rng.randrange(6)
        if kind == 0:
            return rng.randbytes(rng.randrange(0, 300)), 0x2
        if kind == 1:
            return "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 200))).encode(), 0x1
        if kind == 2:
            depth = rng.randrange(1, 3000)
            return (rng.choice(["[", '{"a":']) * depth).encode(), 0x1
        if kind == 3:
            seq: object = rng.choice([-1, 0, 2**63, 10**400, "1", None, [], {}, 1.0, True])
            return json.dumps({"type": rng.choice(["ack", "resync", "x", 1, None]), "seq": seq}).encode(), 0x1
        if kind == 4:
            return rng.randbytes(rng.randrange(1, 64)), 0x1
        return json.dumps(rng.choice([[], {}, 1, "s", None, {"type": []}])).encode(), 0x1

    codes: Counter[int | None] = Counter()
    inputs = 300
    for _ in range(inputs):
        payload, opcode = fuzz()
        sock = raw_websocket(lab.port, cookie=lab.cookie(), origin=lab.origin(), rcvbuf=1 << 20)
        sock.sendall(masked_frame(payload, opcode=opcode))
        with contextlib.suppress(OSError):  # then a normal close (1000), unless already closed
            sock.sendall(masked_frame(b"\x03\xe8", opcode=0x8))
        codes[read_close_code(sock)] += 1
        sock.close()
    assert set(codes) <= {4400, 1000, 1007, 1002, None}, codes
    assert 1011 not in codes
    assert tracebacks(lab) == before


async def test_a_reader_that_stops_reading_is_closed_within_bounded_time(lab: SocketLab) -> None:
    sock = raw_websocket(lab.port, cookie=lab.cookie(), origin=lab.origin(), rcvbuf=4096)
    started = time.monotonic()
    stop = time.monotonic() + SLOW + ACK + 10
    i = 0
    while time.monotonic() < stop and i < 400:  # changes keep coming; the page never reads
        lab.api.put("Pod", fat_pod(f"backend-fat-{i % 20}"))
        i += 1
        await asyncio.sleep(0.05)
    assert socket_closed(sock, timeout=30)
    sock.close()
    elapsed = time.monotonic() - started
    assert elapsed < SLOW + ACK + 45
    log = lab.log()
    assert "dropping a cluster websocket that stopped reading" in log
    assert "invalid close code" not in log


async def test_an_impossible_ack_opens_no_window_and_bytes_are_bounded(lab: SocketLab) -> None:
    async with aiohttp.ClientSession() as session:
        ws = await lab.ws(session)
        first = await ws.receive(timeout=30)
        await ws.send_str(json.dumps({"type": "ack", "seq": 10**15}))
        await ws.send_str(json.dumps({"type": "ack", "seq": last_seq(first.data) + 10**6}))
        received, total = 1, len(first.data.encode())
        for i in range(40):
            lab.api.put("Pod", fat_pod(f"backend-fat-{i % 20}"))
            await asyncio.sleep(0.05)
        while True:
            message = await ws.receive(timeout=30)
            if message.type != aiohttp.WSMsgType.TEXT:
                break
            received += 1
            total += len(message.data.encode())
        assert ws.close_code == 4013
    # Never more than the byte window, plus the one message always allowed when none is in flight.
    assert total <= MAX_UNACKED + MIB
    assert received <= 8


async def test_a_malformed_replicaset_never_breaks_the_page_or_the_stream(lab: SocketLab) -> None:
    lab.api.put("Deployment", {"kind": "Deployment", "apiVersion": "apps/v1",
                               "metadata": {"name": "backend", "uid": "dep-1"},
                               "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "backend"}}}})
    lab.api.put("ReplicaSet", {"kind": "ReplicaSet", "apiVersion": "apps/v1", "metadata": {
        "name": "backend-abc", "uid": "rs-uid-1",
        "annotations": {"deployment.kubernetes.io/revision": "abc",
                        "deployment.kubernetes.io/desired-replicas": "x"},
        "ownerReferences": [{"kind": "Deployment", "name": "backend", "uid": "dep-1", "controller": True}]},
        "spec": {"replicas": "three"}, "status": {"replicas": None}})
    page = requests.get(lab.url + "/", headers={"Cookie": lab.cookie()}, timeout=60)
    assert page.status_code == 200
    assert 'id="replicasets"' in page.text and 'id="nodes"' in page.text
    assert "no-store" in page.headers["Cache-Control"]
    assert "connect-src 'self'" in page.headers["Content-Security-Policy"]
    async with aiohttp.ClientSession() as session:
        ws = await lab.ws(session)
        await frames_until(ws, is_live)
        lab.api.put("Pod", pod("backend-after-rs", "1"))
        await frames_until(ws, lambda html: "backend-after-rs" in html)
        await ws.close()
    lab.api.delete("ReplicaSet", "backend-abc")


async def test_no_login_token_reaches_the_log(lab: SocketLab) -> None:
    wrong = "guess-" + lab.token[6:]
    requests.get(f"{lab.url}/?token={lab.token}", allow_redirects=False, timeout=60)
    requests.get(f"{lab.url}/?tab=x&token={lab.token}&y=1", allow_redirects=False, timeout=60)
    requests.get(f"{lab.url}/login/?next=%2F%3Ftoken%3D{lab.token}", timeout=60)
    requests.get(f"{lab.url}/?token={wrong}", allow_redirects=False, timeout=60)
    requests.get(f"{lab.url}/nowhere?TOKEN={lab.token}", timeout=60)

    def written() -> bool:
        return lab.log().count("token=[redacted]") + lab.log().count("TOKEN=[redacted]") >= 4

    polling.wait_until(written, timeout=30, what="the access log lines")
    log = lab.log()
    assert lab.token not in log and lab.token[6:] not in log


def charsets() -> list[str]:
    """Every codec Python knows by any alias, plus names it does not know."""
    names = sorted(set(encodings.aliases.aliases) | set(encodings.aliases.aliases.values()))
    known = []
    for name in names:
        try:
            codecs.lookup(name)
        except LookupError:
            continue
        known.append(name)
    return [*known, "bogus", "utf-8'", "", "\u00e9", "x" * 300]


POST_ROUTES = ["/login/", "/logout/", "/actions/scale", "/actions/pod/delete", "/actions/pod/readiness",
               "/traffic/start", "/traffic/stop", "/"]


def test_malformed_requests_get_400_and_one_log_line_never_a_500(lab: SocketLab) -> None:
    before = tracebacks(lab)
    session = requests.Session()
    session.get(f"{lab.url}/login/", timeout=60)
    csrf = session.cookies.get("csrftoken", "")
    statuses: Counter[int] = Counter()
    origin = {"Origin": lab.origin(), "X-CSRFToken": csrf or ""}
    bodies = [b"", b"a=b&replicas=2", "name=\u00e9\u4e2d".encode("utf-16"), b"\xff\xfe\x00=\x00", b"%" * 50]
    for route in POST_ROUTES:
        no_cookie: dict[str, str] = {}
        for cookie in (no_cookie, {"Cookie": f"{lab.cookie()}; csrftoken={csrf}"}):
            for charset in charsets():
                body = bodies[len(charset) % len(bodies)]
                headers = {**origin, **cookie,
                           "Content-Type": f"application/x-www-form-urlencoded; charset={charset}"}
                try:
                    response = session.post(lab.url + route, data=body, headers=headers, timeout=60,
                                            allow_redirects=False)
                except requests.exceptions.InvalidHeader:
                    continue  # a charset requests itself refuses to send
                statuses[response.status_code] += 1
            for content_type in ("multipart/form-data", "multipart/form-data; boundary=x",
                                 "multipart/form-data; boundary=" + "b" * 5000,
                                 "application/json; charset=utf-32",
                                 "text/plain; charset=utf-7", "application/x-www-form-urlencoded; charset"):
                response = session.post(lab.url + route, data=b"--x\r\nbroken\r\n" * 3,
                                        headers={**origin, **cookie, "Content-Type": content_type},
                                        timeout=60, allow_redirects=False)
                statuses[response.status_code] += 1
    for host in ("evil.example", "127.0.0.1:1:2", "[::1", "a" * 300, "exa mple"):
        response = requests.get(lab.url + "/healthz", headers={"Host": host}, timeout=60)
        statuses[response.status_code] += 1
    assert sum(statuses.values()) > 1000
    assert not [s for s in statuses if s >= 500], statuses
    assert statuses[400] > 0
    assert tracebacks(lab) == before
    assert len(re.findall(r"400 malformed", lab.log())) >= statuses[400] // 2


ACTION_ROUTES = ["/actions/scale", "/actions/pod/delete", "/actions/pod/readiness", "/traffic/start",
                 "/traffic/stop", "/lessons/start", "/lessons/answer", "/lessons/action", "/lessons/reset"]


def test_a_refused_csrf_check_answers_the_json_error_format_to_htmx_and_html_to_a_form(
        lab: SocketLab) -> None:
    """The page's htmx actions show ``error`` in a toast: a POST without the CSRF token (a stale
    page, a cross-site form) must answer in that format, not with Django's HTML page."""
    logged_in = {"Cookie": lab.fresh_cookie(), "Origin": lab.origin()}
    for route in ACTION_ROUTES:
        refused = requests.post(lab.url + route, data={"replicas": "2", "name": "backend-0"},
                                headers={**logged_in, "HX-Request": "true"}, timeout=60,
                                allow_redirects=False)
        assert refused.status_code == 403, (route, refused.status_code)
        assert refused.headers["Content-Type"] == "application/json", route
        assert "CSRF" in refused.json()["error"] and "reload the page" in refused.json()["error"], route
        fetched = requests.post(lab.url + route, data={}, timeout=60, allow_redirects=False,
                                headers={**logged_in, "Accept": "application/json"})
        assert fetched.status_code == 403 and "CSRF" in fetched.json()["error"], route
    form = requests.post(lab.url + "/actions/scale", data={"replicas": "2"}, headers=logged_in, timeout=60,
                         allow_redirects=False)
    assert form.status_code == 403 and form.headers["Content-Type"].startswith("text/html")
    assert "CSRF verification failed" in form.text
    # With the token the same request passes the check (and the fake API refuses the write).
    session = requests.Session()
    session.get(f"{lab.url}/login/", timeout=60)
    token = session.cookies.get("csrftoken") or ""
    passed = requests.post(lab.url + "/actions/scale", data={"replicas": "2"}, timeout=60, headers={
        **logged_in, "HX-Request": "true", "X-CSRFToken": token,
        "Cookie": f"{lab.cookie()}; csrftoken={token}"})
    assert passed.status_code != 403 and "CSRF" not in passed.text


def status_text(html: str) -> str:
    """The text of a message's last status element."""
    tail = html[html.rindex('id="status"'):]
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", tail.split("</div>", 1)[0])).strip()


async def test_the_status_tells_a_failing_watch_from_a_silent_api(lab: SocketLab) -> None:
    """A watch answered with an HTTP error says so, with the status; an API server that answers
    nothing at all (frozen) is "silent"; neither says "live"; both recover to "live"."""
    lab.fresh_cookie()
    async with aiohttp.ClientSession() as session:
        ws = await lab.ws(session)
        await frames_until(ws, is_live)
        try:
            lab.api.failing = 500
            lab.api.end_watches()
            seen = await frames_until(ws, lambda html: "the watch is failing" in status_text(html))
            assert "HTTP error 500" in status_text(seen[-1]), status_text(seen[-1])
            assert "silent" not in status_text(seen[-1]) and not is_live(seen[-1])
            lab.api.failing = None
            await frames_until(ws, is_live)
            lab.api.silent.set()
            seen = await frames_until(ws, lambda html: "the API is silent" in status_text(html))
            assert "failing" not in status_text(seen[-1]) and not is_live(seen[-1])
            async with session.get(lab.url + "/", headers={"Cookie": lab.cookie()}) as response:
                page = await response.text()
            assert "the API is silent" in page and ">live<" not in page
        finally:
            lab.api.failing = None
            lab.api.silent.clear()
        await frames_until(ws, is_live)
        await ws.close()


# --- 10,000 pods ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SocketLab]:
    """A daphne watching 10,000 pods on two nodes (the default 1 MiB message limit)."""
    running = SocketLab(tmp_path_factory.mktemp("socket-big"))
    running.api.put_many("Node", [node_obj("node-1"), node_obj("node-2")])
    running.api.put_many("Pod", [pod(f"backend-{i:05d}", "1", node=f"node-{1 + i % 2}")
                                 for i in range(9000)]
                         + [pod(f"other-{i:05d}", "1", labels={"app": "other"}) for i in range(1000)])
    yield running
    running.stop()


async def test_a_10000_pod_snapshot_arrives_in_messages_below_1_mib_and_resyncs(big: SocketLab) -> None:
    async with aiohttp.ClientSession() as session:
        ws = await big.ws(session)
        messages = await frames_until(ws, is_live, timeout=180)
        sizes = [len(m.encode()) for m in messages]
        assert max(sizes) <= MIB, sizes
        assert not any(is_live(m) for m in messages[:-1])  # never "live" before the end
        whole = "".join(messages)
        # Groups show their first cards and count the rest (dashboard.podgroups).
        assert "4500 pods" in whole and "1000 pods" in whole and 'class="pod-card' in whole
        await ws.send_str(json.dumps({"type": "resync"}))
        again = await frames_until(ws, is_live, timeout=180)
        assert "".join(again).count('class="pod-card') == whole.count('class="pod-card')
        assert max(len(m.encode()) for m in again) <= MIB
        big.api.put("Pod", pod("backend-04321", "2", node="node-2", phase="Pending", ready=False))
        change = await frames_until(ws, lambda html: 'data-pod="backend-04321"' in html, timeout=60)
        assert len(change[-1].encode()) < 64 * 1024
        # A Node heartbeat re-sends no pod section.
        big.api.put("Node", node_obj("node-1", heartbeat="2026-11-24T21:30:00Z"))
        big.api.put("Pod", pod("backend-00001", "3", node="node-2", phase="Pending", ready=False))
        after = await frames_until(ws, lambda html: 'data-pod="backend-00001"' in html, timeout=60)
        assert all(len(m.encode()) < 64 * 1024 for m in after)
        await ws.close()
    assert "PayloadExceededError" not in big.log() and "Traceback" not in big.log()
