"""Thin HTTP views: each one validates input and hands off to a plain function."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_GET


@require_GET
def healthz(request: HttpRequest) -> HttpResponse:
    """Liveness probe for the dashboard's own Deployment: the process answers HTTP."""
    return HttpResponse("ok", content_type="text/plain")
