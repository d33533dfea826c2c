"""What the dashboard does to every HTTP request and answer, before and after the views.

- :class:`MalformedRequestMiddleware` (first in the chain): a request whose host, query string
  or body cannot be parsed — an unknown or non-UTF-8 charset, a broken multipart body, too many
  fields, a Host header outside ALLOWED_HOSTS — is answered ``400 Bad Request`` with one log
  line, before any other middleware (CSRF reads the body, SecurityMiddleware the host) could
  turn it into a 500 or a logged traceback.
- :class:`ContentSecurityPolicyMiddleware` (last): a strict Content-Security-Policy on every
  answer, and ``Cache-Control: no-store`` on every page and action answer (they show or change
  the cluster for a logged-in user; static files keep WhiteNoise's caching, they answer before
  this middleware runs).

The page runs only the vendored htmx, its ws extension and our own static scripts; no inline
script or style exists anywhere, so the policy can forbid both. htmx's own indicator styles are
turned off in the page's ``htmx-config`` meta tag because they would be injected inline.
``connect-src 'self'`` covers the page's own websocket (CSP Level 3 matches ws:/wss: to the
page's host and port), and nothing else.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.core.exceptions import BadRequest, SuspiciousOperation
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.http.multipartparser import MultiPartParserError
from django.utils.cache import patch_cache_control

log = logging.getLogger(__name__)

CONTENT_SECURITY_POLICY = "; ".join([
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "connect-src 'self'",
    "img-src 'self' data:",
    "frame-ancestors 'none'",
    "base-uri 'self'",
    "form-action 'self'",
])

# Everything Django's request parsing raises for input it cannot make sense of.
MALFORMED = (BadRequest, SuspiciousOperation, MultiPartParserError, UnicodeError, LookupError, ValueError)
BODY_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


def _client(request: HttpRequest) -> str:
    return str(request.META.get("REMOTE_ADDR") or "-")


class MalformedRequestMiddleware:
    """Parse the host, query string and body up front; answer 400 if any of them is malformed."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        """Called per request: refuse what cannot be parsed, pass the rest on."""
        try:
            request.get_host()
            request.GET  # noqa: B018 - parsing it is the check
            if request.method in BODY_METHODS:
                request.POST  # noqa: B018
                request.FILES  # noqa: B018
        except MALFORMED as exc:
            # One line, no traceback: the request is the client's mistake (or a probe).
            log.warning("400 malformed %s request from %s: %s: %.200s", str(request.method)[:10],
                        _client(request), type(exc).__name__, exc)
            response = HttpResponseBadRequest(f"Malformed request: {type(exc).__name__}.\n",
                                              content_type="text/plain")
            response._has_been_logged = True  # logged above: no second "Bad Request:" line from Django
            return response
        return self.get_response(request)


class ContentSecurityPolicyMiddleware:
    """Set ``Content-Security-Policy`` and ``Cache-Control: no-store`` on every view's answer."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        """Called per request: pass it on, then stamp the headers on the answer."""
        response = self.get_response(request)
        response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        if "Cache-Control" not in response.headers:
            patch_cache_control(response, no_store=True, private=True)
        return response
