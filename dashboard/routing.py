"""Websocket routes of the dashboard; any other path is closed with 4404 (no 500, no traceback)."""

from __future__ import annotations

from django.urls import path, re_path

from dashboard.consumers import ClusterConsumer, NotFoundConsumer
from dashboard.lessons.routing import websocket_urlpatterns as lessons_websocket_urlpatterns
from dashboard.traffic.routing import websocket_urlpatterns as traffic_websocket_urlpatterns

websocket_urlpatterns: list = [
    path("ws/cluster/", ClusterConsumer.as_asgi()),
    *traffic_websocket_urlpatterns,
    *lessons_websocket_urlpatterns,
    # Last: whatever no route above serves.
    re_path(r"", NotFoundConsumer.as_asgi()),
]
