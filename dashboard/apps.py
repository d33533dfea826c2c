"""Django app configuration for the dashboard."""

from __future__ import annotations

from django.apps import AppConfig


class DashboardConfig(AppConfig):
    """The lb-demo dashboard app."""

    name = "dashboard"
    default_auto_field = "django.db.models.BigAutoField"
