"""Websocket routes of the traffic lab (appended to dashboard.routing)."""

from __future__ import annotations

from django.urls import path

from dashboard.traffic.consumers import TrafficConsumer

websocket_urlpatterns = [
    path("ws/traffic/", TrafficConsumer.as_asgi()),
]
