"""Login by one-time token, operator token and Django user; CSP on every answer."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AnonymousUser
from django.contrib.sessions.backends.db import SessionStore
from django.http import HttpRequest, HttpResponse
from django.test import Client, RequestFactory

from dashboard import auth
from dashboard.auth import login_required_view

pytestmark = pytest.mark.django_db


@login_required_view
def secret_view(request: HttpRequest) -> HttpResponse:
    """A protected page."""
    return HttpResponse("secret")


@pytest.fixture(autouse=True)
def tokens(settings: object) -> None:
    """A fresh one-time token and an operator token for every test."""
    settings.LBDEMO_LOGIN_TOKEN = "one-time-abc"  # type: ignore[attr-defined]
    settings.LBDEMO_TOKEN = "operator-xyz"  # type: ignore[attr-defined]
    auth._login_token_spent = False


def request_for(path: str, **headers: str) -> HttpRequest:
    """A GET request with an empty session and no user."""
    request = RequestFactory().get(path, **headers)
    request.session = SessionStore()
    request.user = AnonymousUser()
    return request


def test_one_time_token_logs_in_once_and_leaves_the_url() -> None:
    response = secret_view(request_for("/?token=one-time-abc&tab=pods"))
    assert response.status_code == 302
    assert response["Location"] == "/?tab=pods"
    again = secret_view(request_for("/?token=one-time-abc"))
    assert again.status_code == 403
    assert b"already been used" in again.content


def test_operator_token_is_reusable() -> None:
    for _ in range(3):
        response = secret_view(request_for("/?token=operator-xyz"))
        assert response.status_code == 302
        assert response["Location"] == "/"


def test_wrong_or_empty_token_is_refused(settings: object) -> None:
    settings.LBDEMO_TOKEN = ""  # type: ignore[attr-defined]
    assert secret_view(request_for("/?token=nope")).status_code == 403
    assert secret_view(request_for("/?token=")).status_code == 403


def test_anonymous_page_load_redirects_to_login_and_htmx_gets_403() -> None:
    response = secret_view(request_for("/pods"))
    assert response.status_code == 302
    assert response["Location"].startswith("/login/?next=")
    assert secret_view(request_for("/pods", HTTP_HX_REQUEST="true")).status_code == 403


def test_session_survives_after_token_login_with_real_client() -> None:
    client = Client()
    response = client.get("/login/")
    assert response.status_code == 200
    user = get_user_model().objects.create_user("ada", password="correct horse battery staple")
    response = client.post("/login/", {"username": "ada", "password": "correct horse battery staple"})
    assert response.status_code == 302
    assert client.session["_auth_user_id"] == str(user.pk)


def test_token_login_is_recorded_as_the_operator_user() -> None:
    request = request_for("/?token=operator-xyz")
    secret_view(request)
    assert request.user.username == auth.OPERATOR_USERNAME
    assert not request.user.has_usable_password()


def test_every_answer_carries_a_strict_csp() -> None:
    response = Client().get("/healthz")
    csp = response["Content-Security-Policy"]
    assert "script-src 'self'" in csp
    assert "unsafe-inline" not in csp
    assert "frame-ancestors 'none'" in csp
