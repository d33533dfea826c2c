"""What one user's lessons rail shows, built from their lesson state and the informer cache.

Pure presentation (like dashboard.presenters): called on the event loop, it reads the cache and
the engine's per-user state and returns small frozen dataclasses; the partials
``lessons/_rail.html`` and ``lessons/_command_log.html`` render them, on the page's first frame
and after every change of that user's state.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings

from dashboard.cache import ClusterCache
from dashboard.lessons import actions as lesson_actions
from dashboard.lessons.commands import ingress_url, namespace_flag, readiness_command, service_url
from dashboard.lessons.definitions import LESSONS, Lesson
from dashboard.lessons.engine import ACTIVE, DONE, Progress, UserLessons


@dataclass(frozen=True)
class ActionView:
    """A button (or, where the cluster cannot do it from the page, only its command)."""

    index: int
    label: str
    command: str
    button: bool
    note: str = ""


@dataclass(frozen=True)
class CheckView:
    """One check: data-check id, what it looks for, pending/passed/failed and the figure."""

    id: str
    title: str
    state: str
    figure: str


@dataclass(frozen=True)
class LessonView:
    """One lesson in the rail; only the current one is expanded."""

    id: str
    number: int
    title: str
    seed: str
    state: str
    expanded: bool
    question: str
    choices: tuple[str, ...]
    answer: int | None
    agreed: bool | None
    correct: str
    steps: tuple[str, ...]
    actions: tuple[ActionView, ...]
    checks: tuple[CheckView, ...]
    takeaway: str
    yaml: str = ""
    images: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class RailView:
    """The rail: every lesson with its state, and the user's command log."""

    lessons: tuple[LessonView, ...]
    commands: tuple[str, ...]
    done: int


def command_fields(cache: ClusterCache) -> dict[str, str]:
    """The values the lessons' command templates are filled with."""
    deployment = cache.get("Deployment", settings.LBDEMO_DEPLOYMENT) or {}
    containers = (((deployment.get("spec") or {}).get("template") or {}).get("spec") or {}).get(
        "containers"
    ) or []
    return {
        "deployment": settings.LBDEMO_DEPLOYMENT,
        "service": settings.LBDEMO_SERVICE,
        "selector": settings.LBDEMO_SELECTOR,
        "ns": namespace_flag(),
        "url": service_url(cache),
        "ingress_url": ingress_url(cache),
        "container": str(containers[0].get("name")) if containers else "backend",
        "image_load": lesson_actions.image_load_command(image="lb-demo:v3"),
    }


def node_images(cache: ClusterCache) -> tuple[tuple[str, str], ...]:
    """(node, images) as the Nodes publish them in status.images ("" when they publish none)."""
    out = []
    for node in sorted(cache.list("Node"), key=lambda n: str((n.get("metadata") or {}).get("name"))):
        names = sorted(
            {
                name.rsplit("/", 1)[-1]
                for image in (node.get("status") or {}).get("images") or []
                for name in image.get("names") or []
                if "@" not in name
            }
        )
        out.append((str((node.get("metadata") or {}).get("name")), ", ".join(names)))
    return tuple(out)


def action_views(lesson: Lesson, fields: dict[str, str]) -> tuple[ActionView, ...]:
    """The lesson's buttons with their commands filled in."""
    views = []
    for index, action in enumerate(lesson.actions):
        command = action.command % fields if action.command else ""
        if action.kind == "readiness":
            command = readiness_command("<pod>", action.params["ready"] == "true")
        button = action.kind not in {"", "describe"}
        note = ""
        if action.needs == "image-load" and not lesson_actions.image_load_available():
            button, note = False, "this cluster's nodes cannot be loaded from the page: run the command"
        if action.kind == "traffic":
            note = "the checks read the runs started here, not the command's"
        views.append(ActionView(index=index, label=action.label, command=command, button=button, note=note))
    return tuple(views)


def lesson_view(
    lesson: Lesson,
    number: int,
    progress: Progress,
    *,
    expanded: bool,
    fields: dict[str, str],
    cache: ClusterCache,
) -> LessonView:
    """One lesson as the rail shows it."""
    question = lesson.question
    agreed = None
    if progress.state == DONE and progress.answer is not None:
        agreed = progress.answer == question.answer
    checks = tuple(
        CheckView(
            id=check.id,
            title=check.title,
            state=progress.check_state(check.id),
            figure=str(progress.checks.get(check.id, {}).get("figure", "")),
        )
        for check in lesson.checks
    )
    yaml_text = ""
    if expanded and any(a.kind == "apply" for a in lesson.actions):
        deployment = cache.get("Deployment", settings.LBDEMO_DEPLOYMENT)
        yaml_text = lesson_actions.desired_state_yaml(deployment) if deployment else ""
    images = node_images(cache) if expanded and lesson.id == "image" else ()
    return LessonView(
        id=lesson.id,
        number=number,
        title=lesson.title,
        seed=lesson.seed,
        state=progress.state if progress.state in {ACTIVE, DONE} else "pending",
        expanded=expanded,
        question=question.text,
        choices=question.choices,
        answer=progress.answer,
        agreed=agreed,
        correct=question.choices[question.answer],
        steps=lesson.steps,
        actions=action_views(lesson, fields) if expanded else (),
        checks=checks,
        takeaway=lesson.takeaway,
        yaml=yaml_text,
        images=images,
    )


def rail_view(user: UserLessons, cache: ClusterCache) -> RailView:
    """The whole rail of one user."""
    fields = command_fields(cache)
    lessons = tuple(
        lesson_view(
            lesson,
            number,
            user.progress[lesson.id],
            expanded=lesson.id == user.current,
            fields=fields,
            cache=cache,
        )
        for number, lesson in enumerate(LESSONS, start=1)
    )
    return RailView(
        lessons=lessons,
        commands=tuple(command for _, command in user.commands),
        done=sum(1 for lesson in lessons if lesson.state == DONE),
    )
