"""Per-user lesson progress and command log, kept in the dashboard's small database so they
survive reloads and restarts of `make demo` (the cluster itself is never stored here)."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class LessonProgress(models.Model):
    """One user's state in one lesson: not started, in progress or done, the answer they gave
    before acting, and each check's outcome with its measured figure."""

    class State(models.TextChoices):
        PENDING = "pending", "not started"
        ACTIVE = "active", "in progress"
        DONE = "done", "done"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="lessons")
    lesson = models.CharField(max_length=40)
    state = models.CharField(max_length=10, choices=State.choices, default=State.PENDING)
    answer = models.IntegerField(null=True, blank=True)
    started_at = models.FloatField(null=True, blank=True)  # unix seconds, like the watch's observations
    finished_at = models.FloatField(null=True, blank=True)
    checks = models.JSONField(default=dict)  # check id -> {"state": ..., "figure": ..., "at": ...}
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "lesson"], name="one_progress_per_lesson")]

    def __str__(self) -> str:
        return f"{self.user_id}:{self.lesson}:{self.state}"


class CommandLogEntry(models.Model):
    """An action taken on the page, as the command that does the same from a terminal."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="commands")
    at = models.FloatField()  # unix seconds
    command = models.TextField()

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.command[:60]
