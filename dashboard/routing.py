"""Websocket routes of the dashboard."""

from __future__ import annotations

from django.urls import path

from dashboard.consumers import ClusterConsumer
from dashboard.lessons.routing import websocket_urlpatterns as lessons_websocket_urlpatterns
from dashboard.traffic.routing import websocket_urlpatterns as traffic_websocket_urlpatterns

websocket_urlpatterns: list = [
    path("ws/cluster/", ClusterConsumer.as_asgi()),
    *traffic_websocket_urlpatterns,
    *lessons_websocket_urlpatterns,
]
