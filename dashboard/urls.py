"""HTTP routes of the dashboard."""

from __future__ import annotations

from django.contrib.auth import views as auth_views
from django.urls import include, path

from dashboard import podsearch, views
from dashboard.auth import ThrottledLoginView

handler403 = "dashboard.views.forbidden"

urlpatterns = [
    path("", views.index, name="index"),
    path("healthz", views.healthz, name="healthz"),
    path("login/", ThrottledLoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(next_page="login"), name="logout"),
    path("actions/scale", views.deployment_scale, name="deployment-scale"),
    path("actions/pod/delete", views.pod_delete, name="pod-delete"),
    path("actions/pod/readiness", views.pod_readiness, name="pod-readiness"),
    path("pods/more", podsearch.more, name="pods-more"),
    path("pods/find", podsearch.find, name="pods-find"),
    path("traffic/", include("dashboard.traffic.urls")),
    path("lessons/", include("dashboard.lessons.urls")),
]
