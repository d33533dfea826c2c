"""Django app configuration for the dashboard: checks the cluster scope settings at start-up."""

from __future__ import annotations

from django.apps import AppConfig
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from dashboard.objects import SelectorError, parse_selector


def check_selector(value: str) -> None:
    """Refuse an LBDEMO_SELECTOR that is not a label selector, or selects every pod (it scopes
    what the actions may change, so "everything" is never meant)."""
    try:
        selector = parse_selector(value)
    except SelectorError as exc:
        raise ImproperlyConfigured(f"LBDEMO_SELECTOR {value!r} is not a label selector: {exc}") from None
    if not selector.requirements:
        raise ImproperlyConfigured("LBDEMO_SELECTOR is empty: set it to the backend pods' labels, "
                                   "e.g. app=backend")


class DashboardConfig(AppConfig):
    """The lb-demo dashboard app."""

    name = "dashboard"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        """Called once Django is set up: validate the settings every page relies on."""
        check_selector(settings.LBDEMO_SELECTOR)
