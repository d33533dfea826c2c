"""Websocket routes of the lessons rail (appended to dashboard.routing)."""

from __future__ import annotations

from django.urls import path

from dashboard.lessons.consumers import LessonsConsumer

websocket_urlpatterns = [
    path("ws/lessons/", LessonsConsumer.as_asgi()),
]
