"""Thin HTTP views: the page, and the actions, each validating input and calling a plain function.

Actions answer at once (202 with a short JSON body); the change itself reaches the page
through the watch. Errors answer with the ActionError's status and a JSON ``error`` message
the page shows in a toast.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from asgiref.sync import async_to_sync
from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.csrf import ensure_csrf_cookie
from django.views.decorators.http import require_GET, require_POST

from dashboard import actions, presenters, topology
from dashboard.actions import ActionError
from dashboard.auth import login_required_view
from dashboard.hub import get_hub
from dashboard.lessons import commands
from dashboard.lessons.commandlog import command_log_append
from dashboard.stream import settings_scope

# How long the first page load waits for the hub's first LIST of every kind.
FIRST_SYNC_WAIT = 5.0


@require_GET
def healthz(request: HttpRequest) -> HttpResponse:
    """Liveness probe for the dashboard's own Deployment: the process answers HTTP."""
    return HttpResponse("ok", content_type="text/plain")


async def page_view() -> tuple[presenters.ClusterView, str, str]:
    """Build the page's view from the cache, on the event loop that owns it; also return the
    ``<hub epoch>-<seq>`` the page hands to its websocket (no resend of an unchanged state) and
    the topology graph of the same state (dashboard.topology)."""
    hub = get_hub()
    synced = await hub.wait_synced(FIRST_SYNC_WAIT)
    seq, objects = hub.cache.snapshot()
    view = presenters.cluster_view(objects, seq=seq, scope=settings_scope(), now=presenters.utcnow(),
                                   timeline=hub.timeline.visible(time.time()), synced=synced and hub.healthy)
    graph = topology.topology_graph(objects, scope=settings_scope())
    return view, f"{hub.epoch}-{seq}", topology.encode(topology.reset_payload(graph, seq=seq))


@login_required_view
@require_GET
@ensure_csrf_cookie
def index(request: HttpRequest) -> HttpResponse:
    """The live cluster page, fully rendered from the cache; the websocket keeps it current."""
    view, since, graph = async_to_sync(page_view)()
    context = {"view": view, "since": since, "max_replicas": settings.LBDEMO_MAX_REPLICAS, "topology": graph}
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
        raw = _field(request, "replicas")
        if not raw.isdigit() or len(raw) > 4:
            raise ActionError(400, "replicas must be a whole number")
        return actions.deployment_scale(replicas=int(raw), deployment=request.POST.get("deployment"))
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
