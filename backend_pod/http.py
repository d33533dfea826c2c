"""A small, strict HTTP/1.x request parser for backend_pod.

The backend must start in well under half a second, stay small (the sandbox runs 20+ copies)
and serve thousands of requests per second on one core, so it speaks HTTP itself on top of
`asyncio.Protocol` instead of importing a framework. This module owns the wire format of
requests: request line, header fields, Content-Length and chunked bodies, keep-alive rules of
HTTP/1.0 and 1.1. Every malformed or oversized input raises `HttpError` carrying the status to
answer (400, 413, 431, 501, 505, ...); the caller answers it and closes the connection.

The parser is incremental in the simple way: `parse_head` and `read_body` return None until the
buffer holds the whole part, and the caller calls again when more bytes arrive. Heads are small
(<= 16 KiB) and bodies bounded (<= 1 MiB), so re-scanning a partial buffer costs little.
"""

from __future__ import annotations

import re

MAX_HEAD_BYTES = 16 * 1024
MAX_HEADERS = 100
MAX_BODY_BYTES = 1024 * 1024

_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+\Z")
# Bytes allowed in a head: visible ASCII, space, HTAB, obs-text (0x80-0xff) and line ends. Other
# control characters are never valid, and CR only as part of CRLF (checked separately).
_HEAD_BYTES = bytes(range(0x20, 0x7f)) + b"\t\r\n" + bytes(range(0x80, 0x100))
# Field names and methods seen valid before; clients repeat the same few, so the token check
# usually is one set lookup. Bounded so a client cannot grow it.
_KNOWN_TOKENS: set[str] = {"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"}
_KNOWN_TOKENS_MAX = 512
_VERSION = re.compile(r"HTTP/(\d)\.(\d)\Z")
_CHUNK_SIZE = re.compile(rb"([0-9a-fA-F]{1,8})[ \t]*(?:;[^\r\n]*)?\r?\n")

REASONS = {
    100: "Continue", 200: "OK", 201: "Created", 202: "Accepted", 203: "Non-Authoritative Information",
    204: "No Content", 205: "Reset Content", 206: "Partial Content", 300: "Multiple Choices",
    301: "Moved Permanently", 302: "Found", 303: "See Other", 304: "Not Modified", 307: "Temporary Redirect",
    308: "Permanent Redirect", 400: "Bad Request", 401: "Unauthorized", 402: "Payment Required",
    403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed", 406: "Not Acceptable",
    407: "Proxy Authentication Required", 408: "Request Timeout", 409: "Conflict", 410: "Gone",
    411: "Length Required", 412: "Precondition Failed", 413: "Content Too Large", 414: "URI Too Long",
    415: "Unsupported Media Type", 416: "Range Not Satisfiable", 417: "Expectation Failed",
    418: "I'm a teapot", 421: "Misdirected Request", 422: "Unprocessable Content", 423: "Locked",
    424: "Failed Dependency", 425: "Too Early", 426: "Upgrade Required", 428: "Precondition Required",
    429: "Too Many Requests", 431: "Request Header Fields Too Large", 451: "Unavailable For Legal Reasons",
    500: "Internal Server Error", 501: "Not Implemented", 502: "Bad Gateway", 503: "Service Unavailable",
    504: "Gateway Timeout", 505: "HTTP Version Not Supported", 506: "Variant Also Negotiates",
    507: "Insufficient Storage", 508: "Loop Detected", 510: "Not Extended",
    511: "Network Authentication Required",
}


def reason(status: int) -> str:
    """The reason phrase of ``status`` (a generic one for unregistered codes)."""
    text = REASONS.get(status)
    if text is not None:
        return text
    classes = {2: "Success", 3: "Redirection", 4: "Client Error", 5: "Server Error"}
    return classes.get(status // 100, "Unknown")


class HttpError(Exception):
    """The request cannot be served; answer ``status`` with ``message`` and close the connection."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class Request:
    """One parsed request. ``body`` is None until `read_body` has read all of it."""

    __slots__ = ("body", "chunked", "content_length", "expect_continue", "headers", "keep_alive",
                 "method", "path", "query", "target", "version")

    def __init__(self, method: str, target: str, path: str, query: str, version: int,
                 headers: dict[str, str]) -> None:
        self.method = method
        self.target = target
        self.path = path
        self.query = query
        self.version = version  # 10 or 11
        self.headers = headers
        self.body: bytes | None = None
        self.chunked = False
        self.content_length = 0
        self.expect_continue = False
        self.keep_alive = True


def _is_token(text: str) -> bool:
    """Whether ``text`` is an RFC 9110 token (method or field name)."""
    if text in _KNOWN_TOKENS:
        return True
    if not _TOKEN.match(text):
        return False
    if len(_KNOWN_TOKENS) < _KNOWN_TOKENS_MAX:
        _KNOWN_TOKENS.add(text)
    return True


def _tokens(value: str) -> set[str]:
    """The lower-cased tokens of a comma-separated header value."""
    return {item.strip().lower() for item in value.split(",")}


def _split_target(target: str) -> tuple[str, str]:
    """(path, query) of an origin-form ("/a?b") or absolute-form ("http://h/a?b") target."""
    if not target.startswith("/"):
        scheme, sep, rest = target.partition("://")
        if not sep or scheme.lower() not in ("http", "https"):
            raise HttpError(400, "request target must be an absolute path like /healthz")
        cut = min((i for i in (rest.find("/"), rest.find("?")) if i >= 0), default=len(rest))
        target = rest[cut:]
        if not target.startswith("/"):
            target = "/" + target
    path, _sep, query = target.partition("?")
    if "#" in target:
        raise HttpError(400, "request target must not contain a fragment (#)")
    return path, query


def find_head_end(buf: bytes, pos: int) -> tuple[int, int]:
    """Index of the newline that starts the blank line ending the head, and the index after it,
    or (-1, -1). Accepts CRLF and bare LF line ends (RFC 9112 section 2.2)."""
    crlf = buf.find(b"\n\r\n", pos)
    lf = buf.find(b"\n\n", pos, crlf if crlf >= 0 else len(buf))
    if lf >= 0:
        return lf, lf + 2
    if crlf >= 0:
        return crlf, crlf + 3
    return -1, -1


def parse_head(buf: bytes, pos: int) -> tuple[Request, int] | None:
    """Parse the request line and headers starting at ``pos``; None if the head is incomplete.

    Returns the request and the offset of its body. The caller skips empty lines before a request.
    """
    end, body_start = find_head_end(buf, pos)
    if end < 0:
        if len(buf) - pos > MAX_HEAD_BYTES:
            raise HttpError(431, f"request head exceeds {MAX_HEAD_BYTES} bytes")
        return None
    if end - pos > MAX_HEAD_BYTES:
        raise HttpError(431, f"request head exceeds {MAX_HEAD_BYTES} bytes")
    head = buf[pos:end + 1]  # ends with the line end of the last field line
    if head.translate(None, _HEAD_BYTES) or head.count(b"\r") != head.count(b"\r\n"):
        raise HttpError(400, "request head contains control characters")
    text = head[:-1].decode("latin-1")
    if "\r" in text:
        text = text.replace("\r\n", "\n").rstrip("\r")
    lines = text.split("\n")
    parts = lines[0].split(" ")
    if len(parts) != 3:
        raise HttpError(400, "malformed request line: expected 'METHOD /path HTTP/1.1'")
    method, target, proto = parts
    if not _is_token(method):
        raise HttpError(400, "malformed request line: invalid method")
    if proto == "HTTP/1.1":
        version = 11
    elif proto == "HTTP/1.0":
        version = 10
    else:
        match = _VERSION.match(proto)
        if match is None:
            raise HttpError(400, "malformed request line: invalid HTTP version")
        if match.group(1) == "1":
            version = 11  # a future HTTP/1.x is answered as 1.1 (RFC 9110 section 6.2)
        else:
            raise HttpError(505, f"{proto} is not supported; use HTTP/1.1 or HTTP/1.0")
    if not target:
        raise HttpError(400, "malformed request line: empty target")
    path, query = _split_target(target)
    if len(lines) - 1 > MAX_HEADERS:
        raise HttpError(431, f"more than {MAX_HEADERS} header fields")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep or not _is_token(name):
            if line[:1] in (" ", "\t"):
                raise HttpError(400, "obsolete header line folding is not accepted")
            raise HttpError(400, "malformed header field line")
        name = name.lower()
        value = value.strip(" \t")
        old = headers.get(name)
        if old is None:
            headers[name] = value
        elif name in ("host", "content-length"):
            if name == "host" or old != value:
                raise HttpError(400, f"conflicting duplicate {name} header")
        else:
            headers[name] = f"{old}, {value}"
    request = Request(method, target, path, query, version, headers)
    _framing(request)
    return request, body_start


def _framing(request: Request) -> None:
    """Decide keep-alive and how the body is delimited, rejecting ambiguous framing."""
    headers = request.headers
    connection = headers.get("connection")
    if request.version == 11:
        if "host" not in headers:
            raise HttpError(400, "HTTP/1.1 requests need a Host header")
        request.keep_alive = connection is None or "close" not in _tokens(connection)
    else:
        request.keep_alive = connection is not None and "keep-alive" in _tokens(connection)
    encoding = headers.get("transfer-encoding")
    length = headers.get("content-length")
    if encoding is not None:
        if length is not None:
            raise HttpError(400, "Content-Length and Transfer-Encoding must not both be sent")
        if request.version == 10:
            raise HttpError(400, "Transfer-Encoding is not allowed in HTTP/1.0")
        codings = [item.strip().lower() for item in encoding.split(",")]
        if codings != ["chunked"]:
            raise HttpError(501, "only Transfer-Encoding: chunked is supported")
        request.chunked = True
    elif length is not None:
        if not length.isdigit() or not length.isascii() or len(length) > 12:
            raise HttpError(400, "invalid Content-Length")
        request.content_length = int(length)
        if request.content_length > MAX_BODY_BYTES:
            raise HttpError(413, f"request body exceeds {MAX_BODY_BYTES} bytes")
    expect = headers.get("expect")
    if expect is not None:
        if expect.lower() != "100-continue":
            raise HttpError(417, "only Expect: 100-continue is supported")
        request.expect_continue = request.version == 11 and (request.chunked or request.content_length > 0)


def read_body(request: Request, buf: bytes, pos: int) -> int | None:
    """Read the body starting at ``pos`` into ``request.body``; return the offset after it, or
    None while it is incomplete."""
    if request.chunked:
        return _read_chunked(request, buf, pos)
    end = pos + request.content_length
    if len(buf) < end:
        return None
    request.body = buf[pos:end]
    return end


def _read_chunked(request: Request, buf: bytes, pos: int) -> int | None:
    """Decode a chunked body (RFC 9112 section 7.1); trailer fields are read and ignored."""
    parts: list[bytes] = []
    total = 0
    while True:
        match = _CHUNK_SIZE.match(buf, pos)
        if match is None:
            newline = buf.find(b"\n", pos)
            if newline < 0 and len(buf) - pos < 256:
                return None
            raise HttpError(400, "malformed chunk size line")
        size = int(match.group(1), 16)
        pos = match.end()
        if size == 0:
            break
        total += size
        if total > MAX_BODY_BYTES:
            raise HttpError(413, f"request body exceeds {MAX_BODY_BYTES} bytes")
        if len(buf) < pos + size + 1:
            return None
        parts.append(buf[pos:pos + size])
        pos += size
        if buf.startswith(b"\r\n", pos):
            pos += 2
        elif buf.startswith(b"\n", pos):
            pos += 1
        elif len(buf) - pos < 2 and buf.endswith(b"\r"):
            return None
        else:
            raise HttpError(400, "chunk data not followed by a line end")
    # Trailer section: header-like lines until an empty line.
    while True:
        newline = buf.find(b"\n", pos)
        if newline < 0:
            if len(buf) - pos > MAX_HEAD_BYTES:
                raise HttpError(431, "chunked trailer section too large")
            return None
        line = buf[pos:newline]
        pos = newline + 1
        if line in (b"", b"\r"):
            break
    request.body = b"".join(parts)
    return pos
