"""HTTP endpoints of the traffic lab: the form's options, start and stop. Thin on purpose.

Async views on the dashboard's event loop: the target Services come from the watch hub's
cache and the only I/O (a TCP probe of the target address) is asyncio with a timeout, so no
request ever waits on a Kubernetes API call or on a worker thread. Every endpoint needs a
logged-in user (the one guard, dashboard.auth.login_required_view); start and stop are POSTs
protected by Django's CSRF middleware. Errors answer like the actions do, ``{"error": "..."}``:
bad input 400, a run already going 409, the total load cap 429, a cluster not reachable 503;
nothing is started.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.http import require_GET, require_POST

from dashboard.auth import error_response, login_required_view
from dashboard.hub import Hub, get_hub
from dashboard.traffic.engine import LoadSpec, SpecError
from dashboard.traffic.runs import (
    LoadCapReached,
    RunConflict,
    parse_run_form,
    registry,
    run_start,
    traffic_limits,
)
from dashboard.traffic.targets import ResolvedTarget, target_options

log = logging.getLogger(__name__)

# How long a request waits for the hub's first LIST of Services (a fresh dashboard process).
FIRST_SYNC_WAIT = 5.0


async def _owner(request: HttpRequest) -> str:
    """The run owner key of the logged-in user."""
    return f"user:{(await request.auser()).pk}"


async def _services(hub: Hub) -> list[dict]:
    """The namespace's Services from the hub's cache, once it has listed them."""
    await hub.wait_synced(FIRST_SYNC_WAIT)
    return hub.cache.list("Service")


@require_GET
@login_required_view(api=True)
async def traffic_options(request: HttpRequest) -> HttpResponse:
    """Targets the form may choose from, the caps, and the user's current run."""
    error, services, ingresses = "", [], []
    if not settings.LBDEMO_TRAFFIC_URL:
        hub = get_hub()
        services, ingresses = await _services(hub), hub.cache.list("Ingress")
        if not hub.healthy:
            error = "reaching the cluster…; the list may be out of date"
    run = registry.get(await _owner(request))
    targets = target_options(services, ingresses)
    return JsonResponse({"targets": [{"id": o.id, "label": o.label} for o in targets],
                         "error": error, "limits": traffic_limits(), "namespace": settings.LBDEMO_NAMESPACE,
                         "run": run.meta() if run else None})


@require_POST
@login_required_view(api=True)
async def traffic_start(request: HttpRequest) -> HttpResponse:
    """Validate the form, resolve the target Service and start the user's run."""
    owner = await _owner(request)
    try:
        target_id, spec = parse_run_form(request.POST)
    except SpecError as error:
        return error_response(str(error), 400)
    current = registry.get(owner)
    if current is not None and current.active:
        return error_response("A traffic run is already in progress; stop it first.", 409)
    if settings.LBDEMO_TRAFFIC_URL:  # the operator's address; the hub only if marks need a Service
        hub = get_hub() if settings.LBDEMO_SERVICE else None
    else:
        hub = get_hub()
        await _services(hub)
        if not hub.reachable or "Service" not in hub.cache.synced:
            return error_response("Cannot read the target Service from the cluster right now "
                                  "(its API server is not answering); try again in a moment.", 503)
    try:
        run = await run_start(owner=owner, target_id=target_id, spec=spec, hub=hub, runs=registry)
    except SpecError as error:
        return error_response(str(error), 400)
    except RunConflict as error:
        return error_response(str(error), 409)
    except LoadCapReached as error:
        return error_response(str(error), 429)
    await _log_run(owner, run.resolved, spec)
    return JsonResponse({"run": run.meta()}, status=202)


async def _log_run(owner: str, resolved: ResolvedTarget, spec: LoadSpec) -> None:
    """The lessons' command log: the run as the traffic engine's own command line."""
    from dashboard.lessons.commandlog import command_log_append_async
    from dashboard.lessons.commands import service_url, traffic_command
    from dashboard.lessons.engine import current_engine

    engine = current_engine()
    url = (service_url(engine.hub.cache, resolved.option.service) if engine and resolved.option.service
           else f"http://{resolved.target.host}:{resolved.target.port}{resolved.target.path}")
    await command_log_append_async(user_id=int(owner.split(":", 1)[1]), command=traffic_command(
        url, mode=spec.mode, conns=spec.conns, rps=spec.rps or 0, duration=spec.duration or 0,
        max_per_conn=spec.max_per_conn))


@require_POST
@login_required_view(api=True)
async def traffic_stop(request: HttpRequest) -> HttpResponse:
    """Stop the user's run, if one is going."""
    return JsonResponse({"stopped": registry.stop(await _owner(request))})
