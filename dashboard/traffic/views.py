"""HTTP endpoints of the traffic lab: the form's options, start and stop. Thin on purpose.

Async views, so the blocking Kubernetes calls (listing Services, resolving a target) run in
their own worker threads instead of Django's single shared sync thread. Every endpoint needs a
logged-in user; start and stop are POSTs protected by Django's CSRF middleware. Bad input gets
a 400 with a plain message and starts nothing.
"""

from __future__ import annotations

import asyncio
import logging

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.http import require_GET, require_POST

from dashboard.traffic.engine import LoadSpec, SpecError
from dashboard.traffic.runs import RunConflict, parse_run_form, registry, traffic_limits
from dashboard.traffic.targets import ResolvedTarget, resolve_target, target_options

log = logging.getLogger(__name__)


async def _owner(request: HttpRequest) -> str | None:
    """The run owner key for a logged-in user, None for anonymous requests."""
    user = await request.auser()
    return f"user:{user.pk}" if user.is_authenticated else None


def _refuse(message: str, status: int) -> HttpResponse:
    return HttpResponse(message, status=status, content_type="text/plain; charset=utf-8")


@require_GET
async def traffic_options(request: HttpRequest) -> HttpResponse:
    """Targets the form may choose from, the caps, and the user's current run."""
    owner = await _owner(request)
    if owner is None:
        return _refuse("Log in first.", 403)
    try:
        options = await asyncio.to_thread(target_options)
        error = ""
    except Exception as exc:  # the cluster may be briefly unreachable; the page says so
        options, error = [], f"cannot list services: {exc}"
    run = registry.get(owner)
    return JsonResponse({"targets": [{"id": o.id, "label": o.label} for o in options], "error": error,
                         "limits": traffic_limits(), "namespace": settings.LBDEMO_NAMESPACE,
                         "run": run.meta() if run else None})


@require_POST
async def traffic_start(request: HttpRequest) -> HttpResponse:
    """Validate the form, resolve the target Service and start the user's run."""
    owner = await _owner(request)
    if owner is None:
        return _refuse("Log in first.", 403)
    try:
        target_id, spec = parse_run_form(request.POST)
        resolved = await asyncio.to_thread(resolve_target, target_id)
    except SpecError as error:
        return _refuse(str(error), 400)
    except Exception as error:  # the API server is down or refuses us: say so, start nothing
        log.warning("cannot resolve traffic target: %s", error)
        return _refuse(f"Cannot read the target Service from the cluster right now: {error}", 503)
    current = registry.get(owner)
    if current is not None and current.active:
        return _refuse("A traffic run is already in progress; stop it first.", 409)
    try:
        run = await asyncio.to_thread(registry.start, owner=owner, resolved=resolved, spec=spec,
                                      namespace=settings.LBDEMO_NAMESPACE)
    except RunConflict as error:
        return _refuse(str(error), 409)
    await _log_run(owner, resolved, spec)
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
async def traffic_stop(request: HttpRequest) -> HttpResponse:
    """Stop the user's run, if one is going."""
    owner = await _owner(request)
    if owner is None:
        return _refuse("Log in first.", 403)
    return JsonResponse({"stopped": registry.stop(owner)})
