"""HTTP endpoints of the lessons rail: start a lesson, answer its question, press its buttons, reset.

Thin async views (the engine and the cache live on the event loop; blocking Kubernetes calls and
the image-load command run in the lessons' own bounded pool of API threads, :func:`blocking` —
never in the loop's default executor, so a slow API server or a 30 s image load queues the
lessons' actions, never anything else that uses that executor, such as rendering the rail).
Every POST is CSRF-protected by Django's middleware and needs a logged-in user; actions share
the dashboard's per-user rate limit. They answer 202 at once — what happened comes back
through the watch, and the rail follows — or an error status with a JSON ``error`` the page
shows in a toast.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.http import require_GET, require_POST

from dashboard import actions
from dashboard.actions import ActionError
from dashboard.lessons import actions as lesson_actions
from dashboard.lessons import commands
from dashboard.lessons.definitions import BY_ID, Action
from dashboard.lessons.engine import get_engine
from dashboard.objects import parse_selector, pod_ready

log = logging.getLogger(__name__)

API_THREADS = 4  # at most this many lesson actions talk to the cluster at once; more wait their turn
_T = TypeVar("_T")
_api_threads = concurrent.futures.ThreadPoolExecutor(
    max_workers=API_THREADS, thread_name_prefix="lessons-api"
)


async def blocking(function: Callable[..., _T], /, **kwargs: Any) -> _T:
    """Run a blocking action (Kubernetes calls, the image-load command) in the lessons' API
    threads and wait for it on the loop."""
    call = functools.partial(function, **kwargs)
    return await asyncio.get_running_loop().run_in_executor(_api_threads, call)


async def _user_id(request: HttpRequest) -> int | None:
    user = await request.auser()
    return int(user.pk) if user.is_authenticated else None


def _error(status: int, message: str) -> JsonResponse:
    return JsonResponse({"error": message}, status=status)


def _lesson_field(request: HttpRequest) -> str:
    lesson = (request.POST.get("lesson") or "").strip()
    if lesson not in BY_ID:
        raise ActionError(400, "unknown lesson")
    return lesson


async def _respond(
    request: HttpRequest, run: Callable[[int], Awaitable[Any]], *, limited: bool
) -> HttpResponse:
    """Authenticate, rate-limit, run, and answer 202 or the ActionError's status."""
    user_id = await _user_id(request)
    if user_id is None:
        return _error(403, "Log in first.")
    if limited and not actions.rate_limiter.allow(
        str(user_id), per_minute=settings.LBDEMO_ACTIONS_PER_MINUTE
    ):
        return _error(429, "too many actions; wait a moment")
    try:
        result = await run(user_id)
    except ActionError as exc:
        return _error(exc.status, exc.message)
    return JsonResponse({"ok": True, "result": result}, status=202)


@require_POST
async def lesson_start(request: HttpRequest) -> HttpResponse:
    """POST lesson=ID: start (or restart) a lesson; its checks observe from now on."""

    async def run(user_id: int) -> str:
        lesson = _lesson_field(request)
        await get_engine().start(user_id, lesson)
        return lesson

    return await _respond(request, run, limited=False)


@require_POST
async def lesson_answer(request: HttpRequest) -> HttpResponse:
    """POST lesson=ID choice=N: keep the learner's prediction."""

    async def run(user_id: int) -> int:
        lesson = _lesson_field(request)
        raw = (request.POST.get("choice") or "").strip()
        if not raw.isdigit() or int(raw) >= len(BY_ID[lesson].question.choices):
            raise ActionError(400, "choose one of the answers")
        await get_engine().answer(user_id, lesson, int(raw))
        return int(raw)

    return await _respond(request, run, limited=False)


@require_POST
async def lesson_action(request: HttpRequest) -> HttpResponse:
    """POST lesson=ID index=N [yaml=TEXT]: press one of the lesson's buttons."""

    async def run(user_id: int) -> object:
        lesson = BY_ID[_lesson_field(request)]
        raw = (request.POST.get("index") or "").strip()
        if not raw.isdigit() or int(raw) >= len(lesson.actions):
            raise ActionError(400, "unknown action")
        action = lesson.actions[int(raw)]
        result, command = await perform(action, user_id=user_id, yaml_text=request.POST.get("yaml") or "")
        await get_engine().log_command(user_id, command)
        return result

    return await _respond(request, run, limited=True)


@require_POST
async def sample_app_reset(request: HttpRequest) -> HttpResponse:
    """POST: put the sample app back to its starting state (and stop the user's traffic run)."""

    async def run(user_id: int) -> object:
        from dashboard.traffic.runs import registry

        registry.stop(f"user:{user_id}")
        result = await blocking(lesson_actions.sample_app_reset)
        await get_engine().log_command(
            user_id,
            f"kubectl{commands.namespace_flag()} apply -f k8s/backend.yaml && "
            f"kubectl{commands.namespace_flag()} delete pod -l app=debug",
        )
        return result

    return await _respond(request, run, limited=True)


@require_GET
async def deployment_yaml(request: HttpRequest) -> HttpResponse:
    """GET: the Deployment's desired state as YAML (the declarative lesson's editor reloads it)."""
    if await _user_id(request) is None:
        return _error(403, "Log in first.")
    try:
        text = await blocking(lesson_actions.deployment_yaml)
    except ActionError as exc:
        return _error(exc.status, exc.message)
    return HttpResponse(text, content_type="text/yaml; charset=utf-8")


# --- the buttons ------------------------------------------------------------------------------------
def _backend_pods(*, ready: bool | None = None) -> list[dict[str, Any]]:
    """Backend pods from the cache (on the loop), not terminating, oldest first; ``ready``
    filters by the Ready condition (None: any)."""
    cache = get_engine().hub.cache
    selector = parse_selector(settings.LBDEMO_SELECTOR)
    pods = [
        p
        for p in cache.list("Pod")
        if selector.selects(p)
        and not (p.get("metadata") or {}).get("deletionTimestamp")
        and (p.get("status") or {}).get("phase") == "Running"
    ]
    if ready is not None:
        pods = [p for p in pods if pod_ready(p) == ready]
    return sorted(pods, key=lambda p: str((p.get("metadata") or {}).get("creationTimestamp") or ""))


def _pick(pods: list[dict[str, Any]], count: int, what: str) -> list[dict[str, Any]]:
    if len(pods) < count:
        raise ActionError(409, f"there is no {what} right now")
    return pods[:count]


async def perform(action: Action, *, user_id: int, yaml_text: str = "") -> tuple[object, str]:
    """Carry out one lesson button; returns (result, the command that does the same)."""
    kind, params = action.kind, action.params
    cache = get_engine().hub.cache
    if kind == "kill":
        names = [
            p["metadata"]["name"] for p in _pick(_backend_pods(), int(params["count"]), "running backend pod")
        ]
        for name in names:
            await blocking(actions.pod_delete, name=name)
        return names, commands.delete_command(names)
    if kind == "scale":
        replicas = int(params["replicas"])
        await blocking(actions.deployment_scale, replicas=replicas)
        return replicas, commands.scale_command(replicas)
    if kind == "relabel":
        name = _pick(_backend_pods(ready=True), 1, "ready backend pod")[0]["metadata"]["name"]
        await blocking(lesson_actions.pod_relabel, name=name)
        return name, lesson_actions.pod_relabel_command(name=name)
    if kind == "readiness":
        ready = params["ready"] == "true"
        pod = _pick(
            _backend_pods(ready=not ready), 1, "ready backend pod" if not ready else "unready backend pod"
        )[0]
        name = pod["metadata"]["name"]
        await blocking(actions.pod_readiness_set, name=name, ready=ready)
        return name, commands.readiness_command(name, ready)
    if kind == "traffic":
        return await start_traffic(user_id, params)
    if kind == "set-image":
        image = str(params["image"])
        await blocking(lesson_actions.deployment_image_set, image=image)
        deployment = cache.get("Deployment", settings.LBDEMO_DEPLOYMENT) or {}
        containers = deployment.get("spec", {}).get("template", {}).get("spec", {}).get("containers") or [{}]
        return image, commands.set_image_command(str(containers[0].get("name") or "backend"), image)
    if kind == "load-image":
        image = str(params["image"])
        await blocking(lesson_actions.image_load, image=image)
        return image, lesson_actions.image_load_command(image=image)
    if kind == "apply":
        replicas = await blocking(lesson_actions.deployment_apply, text=yaml_text)
        return replicas, lesson_actions.deployment_apply_command(text=yaml_text)
    if kind == "break-probe":
        path = await blocking(lesson_actions.deployment_probe_break)
        return path, action.command % {
            "ns": commands.namespace_flag(),
            "deployment": settings.LBDEMO_DEPLOYMENT,
        }
    if kind == "undo":
        revision = await blocking(lesson_actions.deployment_rollback)
        return (
            revision,
            f"kubectl{commands.namespace_flag()} rollout undo deployment/{settings.LBDEMO_DEPLOYMENT}",
        )
    raise ActionError(400, "this step has no button: run its command")


async def start_traffic(user_id: int, params: dict[str, str | int]) -> tuple[object, str]:
    """A traffic run for the user against the configured Service, like the traffic panel's."""
    from dashboard.traffic.engine import LoadSpec, SpecError
    from dashboard.traffic.runs import LoadCapReached, RunConflict, run_start, traffic_limits

    hub = get_engine().hub
    cache = hub.cache
    service = cache.get("Service", settings.LBDEMO_SERVICE)
    if service is None:
        raise ActionError(404, f"the Service {settings.LBDEMO_SERVICE!r} does not exist")
    port = ((service.get("spec") or {}).get("ports") or [{}])[0].get("port", 80)
    via_ingress = params.get("target") == "ingress"
    ingress = commands.ingress_name(cache) if via_ingress else None
    if via_ingress and ingress is None:
        raise ActionError(404, f"no Ingress in front of {settings.LBDEMO_SERVICE!r} in this namespace: "
                               "kubectl apply -f k8s/ingress.yaml")
    path = str(params.get("path") or "/")
    limits = traffic_limits()
    try:
        spec = LoadSpec(
            mode=str(params["mode"]),
            conns=int(params["conns"]),
            rps=float(params["rps"]),
            duration=float(params["seconds"]),
            timeout=5.0,
        ).check(max_rps=limits["max_rps"], max_conns=limits["max_conns"], max_seconds=limits["max_seconds"])
        target_id = f"ingress/{ingress}" if ingress else f"{settings.LBDEMO_SERVICE}:{port}"
        run = await run_start(owner=f"user:{user_id}", target_id=target_id, spec=spec, hub=hub, path=path)
    except RunConflict as exc:
        raise ActionError(409, str(exc)) from exc
    except LoadCapReached as exc:
        raise ActionError(429, str(exc)) from exc
    except SpecError as exc:
        raise ActionError(400, str(exc)) from exc
    url = commands.ingress_url(cache) if ingress else commands.service_url(cache)
    command = commands.traffic_command(
        url.rstrip("/") + path,
        mode=spec.mode,
        conns=spec.conns,
        rps=spec.rps or 0,
        duration=spec.duration or 0,
    )
    return run.id, command
