"""HTTP routes of the dashboard."""

from __future__ import annotations

from django.urls import path

from dashboard import views

urlpatterns = [
    path("healthz", views.healthz, name="healthz"),
]
