"""Django app config of the lessons rail (its models: per-user progress and the command log)."""

from __future__ import annotations

from django.apps import AppConfig


class LessonsConfig(AppConfig):
    """The ``lessons`` app inside the dashboard project."""

    name = "dashboard.lessons"
    label = "lessons"
    default_auto_field = "django.db.models.BigAutoField"
