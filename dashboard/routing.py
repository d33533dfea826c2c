"""Websocket routes of the dashboard."""

from __future__ import annotations

from dashboard.traffic.routing import websocket_urlpatterns as traffic_websocket_urlpatterns

websocket_urlpatterns: list = [
    *traffic_websocket_urlpatterns,
]
