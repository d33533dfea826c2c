"""Unit tests of backend_pod's HTTP/1.x parser: framing rules, limits, and that no input escapes
as anything but HttpError (property-based)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backend_pod.http import MAX_BODY_BYTES, HttpError, Request, parse_head, read_body

SIMPLE = b"GET /a?b=1 HTTP/1.1\r\nHost: x\r\nX-Thing:  spaced value \r\nAccept: a\r\nAccept: b\r\n\r\n"


def head(data: bytes, pos: int = 0) -> tuple[Request, int]:
    """Parse a complete request head or fail the test."""
    parsed = parse_head(data, pos)
    assert parsed is not None, "the head is incomplete"
    return parsed


def parse_all(data: bytes) -> tuple[Request, int]:
    """Parse a complete request (head and body) or fail the test."""
    parsed = parse_head(data, 0)
    assert parsed is not None
    req, pos = parsed
    if req.chunked or req.content_length:
        end = read_body(req, data, pos)
        assert end is not None
        return req, end
    req.body = b""
    return req, pos


def test_parses_request_line_and_headers() -> None:
    req, end = parse_all(SIMPLE)
    assert (req.method, req.target, req.path, req.query, req.version) == ("GET", "/a?b=1", "/a", "b=1", 11)
    assert req.headers == {"host": "x", "x-thing": "spaced value", "accept": "a, b"}
    assert req.keep_alive and end == len(SIMPLE)


def test_every_prefix_is_incomplete_not_an_error() -> None:
    data = SIMPLE.replace(b"GET", b"POST").replace(b"\r\n\r\n", b"\r\nContent-Length: 5\r\n\r\nhello")
    for cut in range(len(data)):
        parsed = parse_head(data[:cut], 0)
        if parsed is not None:
            req, pos = parsed
            assert read_body(req, data[:cut], pos) is None
    req, end = parse_all(data)
    assert req.body == b"hello" and end == len(data)


def test_pipelined_requests_parse_one_after_another() -> None:
    data = SIMPLE + b"GET /second HTTP/1.1\nHost: y\n\n" + SIMPLE
    first, pos = head(data, 0)
    second, pos2 = head(data, pos)
    third, pos3 = head(data, pos2)
    assert (first.path, second.path, third.path) == ("/a", "/second", "/a")
    assert pos3 == len(data)


@pytest.mark.parametrize(("headers", "keep"), [
    (b"HTTP/1.1\r\nHost: x\r\n", True),
    (b"HTTP/1.1\r\nHost: x\r\nConnection: Keep-Alive, Close\r\n", False),
    (b"HTTP/1.0\r\n", False),
    (b"HTTP/1.0\r\nConnection: keep-alive\r\n", True),
])
def test_keep_alive_rules(headers: bytes, keep: bool) -> None:
    req, _ = head(b"GET / " + headers + b"\r\n", 0)
    assert req.keep_alive is keep


def test_chunked_body_with_extensions_and_trailers() -> None:
    data = (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"4;name=v\r\nWiki\r\n5\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\nTrailer: 1\r\n\r\nNEXT")
    req, end = parse_all(data)
    assert req.body == b"Wikipedia in\r\n\r\nchunks." and data[end:] == b"NEXT"


def test_body_limit() -> None:
    with pytest.raises(HttpError) as info:
        parse_head(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % (MAX_BODY_BYTES + 1), 0)
    assert info.value.status == 413
    req, _ = head(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % MAX_BODY_BYTES, 0)
    assert req.content_length == MAX_BODY_BYTES


def test_absolute_form_target() -> None:
    req, _ = head(b"GET http://example.test:8080/readyz?x=1 HTTP/1.1\r\nHost: example.test\r\n\r\n", 0)
    assert (req.path, req.query) == ("/readyz", "x=1")
    req, _ = head(b"GET http://example.test HTTP/1.1\r\nHost: example.test\r\n\r\n", 0)
    assert req.path == "/"


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=400))
def test_arbitrary_bytes_never_raise_anything_but_http_error(data: bytes) -> None:
    for blob in (data, b"GET / HTTP/1.1\r\n" + data, data + b"\r\n\r\n"):
        try:
            parsed = parse_head(blob, 0)
            if parsed is not None:
                req, pos = parsed
                read_body(req, blob, pos)
        except HttpError as exc:
            assert 400 <= exc.status <= 505 and exc.message


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.from_regex(r"[A-Za-z][A-Za-z0-9-]{0,15}", fullmatch=True),
                          st.from_regex(r"[ -~]{0,30}", fullmatch=True)), max_size=10),
       st.binary(max_size=200))
def test_well_formed_requests_round_trip(fields: list[tuple[str, str]], body: bytes) -> None:
    names = {"host", "content-length", "transfer-encoding", "connection", "expect"}
    fields = [(n, v) for n, v in fields if n.lower() not in names]
    head = "".join(f"{n}: {v}\r\n" for n, v in fields)
    data = f"PUT /x HTTP/1.1\r\nHost: h\r\nContent-Length: {len(body)}\r\n{head}\r\n".encode() + body
    req, end = parse_all(data)
    assert req.body == body and end == len(data)
    for name, value in fields:
        assert value.strip(" \t") in req.headers[name.lower()]
