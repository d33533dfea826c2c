"""/ws/traffic/ through a real daphne socket (the dashboard as `make demo` starts it): 2,000
fuzzed frames — binary, empty text, deeply nested JSON, junk — each get an error message or
the documented 4400 close; none gets 1011, and the dashboard logs no traceback."""

from __future__ import annotations

import http.cookiejar
import random
import urllib.request
from urllib.parse import urlsplit

import pytest
import websocket

pytestmark = pytest.mark.sandbox
FRAMES = 2000


def session_cookie(login_url: str) -> str:
    """Log in with the lab's one-time token; the session cookie as a Cookie header value."""
    jar = http.cookiejar.CookieJar()
    urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar)).open(login_url, timeout=30).read()
    return "; ".join(f"{c.name}={c.value}" for c in jar)


def fuzzed(rng: random.Random, i: int) -> tuple[int, bytes]:
    """(opcode, payload) of the i-th frame."""
    kind = i % 8
    if kind == 0:
        return websocket.ABNF.OPCODE_BINARY, rng.randbytes(rng.randint(0, 64))
    text = [
        "",
        "[" * 500 + "]" * 500,
        "[" * 5000,
        '{"type": ' * 100 + "1" + "}" * 100,
        "".join(chr(rng.randint(32, 0x2FFF)) for _ in range(rng.randint(1, 40))),
        '{"type": "resync", "pad": "' + "a" * 2000 + '"}',
        rng.choice(['"resync"', "null", "[]", '{"type": 1}', '{"type": "start", "url": "http://x/"}', "{"]),
    ][kind - 1]
    return websocket.ABNF.OPCODE_TEXT, text.encode("utf-8", "surrogatepass")


def test_fuzzed_frames_get_an_error_or_a_4400_close_never_1011(sample_lab, tmp_path) -> None:
    url = urlsplit(sample_lab.url)
    cookie = session_cookie(sample_lab.login_url)
    origin = f"{url.scheme}://{url.netloc}"
    rng = random.Random(11)
    counts = {"error reply": 0, "4400 close": 0, "other": 0}
    ws = None
    for i in range(FRAMES):
        if ws is None:
            ws = websocket.create_connection(
                f"ws://{url.netloc}/ws/traffic/", cookie=cookie, origin=origin, timeout=20
            )
            assert '"idle"' in ws.recv()
        opcode, payload = fuzzed(rng, i)
        ws.send(payload, opcode=opcode)
        frame = ws.recv_frame()  # raw: the library would answer a close itself
        while frame.opcode in (websocket.ABNF.OPCODE_PING, websocket.ABNF.OPCODE_PONG):
            frame = ws.recv_frame()
        if frame.opcode == websocket.ABNF.OPCODE_TEXT and b'"type":"error"' in frame.data:
            counts["error reply"] += 1
        elif frame.opcode == websocket.ABNF.OPCODE_CLOSE and int.from_bytes(frame.data[:2], "big") == 4400:
            counts["4400 close"] += 1
            ws.shutdown()
            ws = None
        else:
            counts["other"] += 1
            ws.shutdown()
            ws = None
    if ws is not None:
        ws.close()
    log_file = tmp_path / "lab" / "dashboard.log"  # where sample_lab's dashboard logs
    log = log_file.read_text()
    tracebacks = log.count("Traceback")
    print(f"{FRAMES} fuzzed frames through daphne: {counts}, tracebacks in the dashboard log: {tracebacks}")
    assert counts["other"] == 0 and tracebacks == 0
    assert counts["4400 close"] >= FRAMES // 4 and counts["error reply"] >= FRAMES // 2
