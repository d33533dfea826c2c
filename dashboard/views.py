"""Thin HTTP views: the page, and the actions, each validating input and calling a plain function.

Actions answer at once (202 with a short JSON body); the change itself reaches the page
through the watch. Errors answer with the ActionError's status and a JSON ``error`` message
the page shows in a toast — refusals made before a view runs too (a failed CSRF check, a
PermissionDenied): :func:`csrf_failure` and :func:`forbidden` answer ``{"error": …}`` to a client
that asked for JSON (htmx's ``HX-Request``, ``Accept: application/json``, an XHR) and Django's
HTML page to a browser's plain form post.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from asgiref.sync import async_to_sync
from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views import csrf, defaults
from django.views.decorators.csrf import ensure_csrf_cookie
from django.views.decorators.http import require_GET, require_POST

from dashboard import actions, collector, presenters
from dashboard.actions import ActionError
from dashboard.auth import error_response, login_required_view
from dashboard.hub import get_hub
from dashboard.lessons import commands
from dashboard.lessons.commandlog import command_log_append
from dashboard.stream import UNHEALTHY, ViewInput, health_of, page_sections, settings_scope

log = logging.getLogger(__name__)

# How long the first page load waits for the hub's first LIST of every kind.
FIRST_SYNC_WAIT = 5.0


def wants_json(request: HttpRequest) -> bool:
    """Whether the client reads JSON errors (htmx, fetch/XHR asking for JSON), not an HTML page."""
    accept = request.headers.get("Accept", "")
    return (bool(request.headers.get("HX-Request")) or "application/json" in accept
            or request.headers.get("X-Requested-With") == "XMLHttpRequest")


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """CSRF_FAILURE_VIEW: a refused POST answers in the actions' error format when asked for JSON."""
    if wants_json(request):
        return error_response(f"Refused by the CSRF check ({reason.rstrip('.')}): reload the page "
                              "and try again.", 403)
    return csrf.csrf_failure(request, reason)


def forbidden(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """handler403: a PermissionDenied answers in the actions' error format when asked for JSON."""
    if wants_json(request):
        return error_response(str(exception or "") or "Forbidden.", 403)
    return defaults.permission_denied(request, exception)


@require_GET
def healthz(request: HttpRequest) -> HttpResponse:
    """Liveness probe for the dashboard's own Deployment: the process answers HTTP."""
    return HttpResponse("ok", content_type="text/plain")


async def page_state() -> tuple[ViewInput, str]:
    """Read the cache on the event loop that owns it; also return the ``<hub epoch>-<seq>`` the
    page hands to its websocket (no resend of an unchanged state)."""
    hub = get_hub()
    synced = await hub.wait_synced(FIRST_SYNC_WAIT)
    seq, objects = hub.cache.snapshot()
    health = health_of(hub) if synced else UNHEALTHY
    view = ViewInput(objects, seq=seq, scope=settings_scope(), now=presenters.utcnow(),
                     timeline=hub.timeline.visible(time.time()), synced=not health, trouble=health,
                     source=hub.epoch)
    return view, f"{hub.epoch}-{seq}"


def page_facts(view: ViewInput) -> dict[str, object]:
    """The few values the page's frame shows outside the sections (each guarded: a broken
    Deployment or Service must not take the page down with it)."""
    facts: dict[str, object] = {"namespace": view.scope.namespace, "deployment": view.scope.deployment,
                                "desired": 0}
    try:
        facts["desired"] = presenters.deployment_view(view.list("Deployment"), name=view.scope.deployment,
                                                      max_replicas=view.scope.max_replicas).desired
    except Exception:
        log.warning("cannot read the Deployment's desired replicas for the scale slider")
    return facts


@login_required_view
@require_GET
@ensure_csrf_cookie
def index(request: HttpRequest) -> HttpResponse:
    """The live cluster page, fully rendered from the cache; the websocket keeps it current.

    Each section renders on its own (dashboard.stream.page_sections): one that fails shows an
    error box and is named in the status; the page itself still answers 200."""
    view, since = async_to_sync(page_state)()
    collector.install_for(len(view.list("Pod")))  # short collector pauses with a big cache
    sections, status = page_sections(view)
    context = {"page": page_facts(view), "sections": sections, "status": status, "since": since,
               "max_replicas": settings.LBDEMO_MAX_REPLICAS}
    return render(request, "dashboard/index.html", context)


def _action(request: HttpRequest, run: Callable[[], object], command: Callable[[], str]) -> HttpResponse:
    """Apply the per-user rate limit, run an action, log its command (the lessons' command log),
    and answer 202 or the action's error."""
    if not actions.rate_limiter.allow(str(request.user.pk), per_minute=settings.LBDEMO_ACTIONS_PER_MINUTE):
        return JsonResponse({"error": "too many actions; wait a moment"}, status=429)
    try:
        result = run()
    except ActionError as exc:
        return JsonResponse({"error": exc.message}, status=exc.status)
    command_log_append(user_id=int(request.user.pk), command=command())
    return JsonResponse({"ok": True, "result": result}, status=202)


def _field(request: HttpRequest, name: str) -> str:
    """A required form field, or a 400."""
    value = request.POST.get(name)
    if value is None or value.strip() == "":
        raise ActionError(400, f"the {name!r} field is required")
    return value.strip()


@login_required_view
@require_POST
def deployment_scale(request: HttpRequest) -> HttpResponse:
    """POST replicas=N [deployment=NAME]: scale the backend Deployment."""
    def run() -> int:
        replicas = actions.whole_number(_field(request, "replicas"), field="replicas")
        return actions.deployment_scale(replicas=replicas, deployment=request.POST.get("deployment"))
    return _action(request, run, lambda: commands.scale_command(int(request.POST["replicas"].strip())))


@login_required_view
@require_POST
def pod_delete(request: HttpRequest) -> HttpResponse:
    """POST name=POD: delete a backend pod."""
    return _action(request, lambda: actions.pod_delete(name=_field(request, "name")),
                   lambda: commands.delete_command([_field(request, "name")]))


@login_required_view
@require_POST
def pod_readiness(request: HttpRequest) -> HttpResponse:
    """POST name=POD ready=true|false: flip a backend pod's readiness switch."""
    def run() -> bool:
        raw = _field(request, "ready").lower()
        if raw not in {"true", "false"}:
            raise ActionError(400, "ready must be true or false")
        return actions.pod_readiness_set(name=_field(request, "name"), ready=raw == "true")
    return _action(request, run, lambda: commands.readiness_command(
        _field(request, "name"), _field(request, "ready").lower() == "true"))
