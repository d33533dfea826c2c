"""HTTP routes of the lessons rail, mounted under ``lessons/``."""

from __future__ import annotations

from django.urls import path

from dashboard.lessons import views

urlpatterns = [
    path("start", views.lesson_start, name="lesson-start"),
    path("answer", views.lesson_answer, name="lesson-answer"),
    path("action", views.lesson_action, name="lesson-action"),
    path("reset", views.sample_app_reset, name="lesson-reset"),
    path("deployment.yaml", views.deployment_yaml, name="lesson-deployment-yaml"),
]
