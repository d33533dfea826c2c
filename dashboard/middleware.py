"""Response headers the dashboard adds to every HTTP answer: a strict Content-Security-Policy.

The page runs only the vendored htmx, its ws extension and our own static scripts; no inline
script or style exists anywhere, so the policy can forbid both. htmx's own indicator styles are
turned off in the page's ``htmx-config`` meta tag because they would be injected inline.
"""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

CONTENT_SECURITY_POLICY = "; ".join([
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "connect-src 'self' ws: wss:",
    "img-src 'self' data:",
    "frame-ancestors 'none'",
    "base-uri 'self'",
    "form-action 'self'",
])


class ContentSecurityPolicyMiddleware:
    """Set ``Content-Security-Policy`` on every response that does not already carry one."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        """Called per request: pass it on, then stamp the header on the answer."""
        response = self.get_response(request)
        response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        return response
