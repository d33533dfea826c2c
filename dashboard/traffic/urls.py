"""HTTP routes of the traffic lab, mounted under ``traffic/``."""

from __future__ import annotations

from django.urls import path

from dashboard.traffic import views

urlpatterns = [
    path("options", views.traffic_options, name="traffic-options"),
    path("start", views.traffic_start, name="traffic-start"),
    path("stop", views.traffic_stop, name="traffic-stop"),
]
