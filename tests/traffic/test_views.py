"""The panel's HTTP endpoints: logged-in only (the one guard), CSRF on POST, errors in the
actions' JSON format: bad input 400, a run going 409, the total cap 429, no cluster 503 — and
nothing started."""

from __future__ import annotations

import time

import pytest
from django.contrib.auth import get_user_model
from django.test import Client, override_settings

from dashboard.traffic import views
from dashboard.traffic.runs import RunRegistry

pytestmark = pytest.mark.django_db
CSRF = "a" * 32
FORM = {
    "target": "operator",
    "mode": "keepalive",
    "conns": "2",
    "rps": "50",
    "duration": "20",
    "max_per_conn": "0",
}


@pytest.fixture
def registry(monkeypatch: pytest.MonkeyPatch):
    fresh = RunRegistry()
    monkeypatch.setattr(views, "registry", fresh)
    yield fresh
    fresh.stop_all()


@pytest.fixture
def user_client() -> Client:
    client = Client(enforce_csrf_checks=True)
    client.force_login(get_user_model().objects.create_user("learner"))
    client.cookies["csrftoken"] = CSRF
    return client


def post(client: Client, url: str, data: dict[str, str]):
    return client.post(url, data, HTTP_X_CSRFTOKEN=CSRF)


def test_anonymous_users_get_nothing(registry: RunRegistry) -> None:
    client = Client()
    refused = client.get("/traffic/options")
    assert refused.status_code == 403 and refused.json() == {"error": "Log in first."}
    client.cookies["csrftoken"] = CSRF
    assert post(client, "/traffic/start", FORM).status_code == 403
    assert registry.active_runs() == []


def test_start_needs_a_csrf_token(registry: RunRegistry, user_client: Client) -> None:
    response = user_client.post("/traffic/start", FORM)
    assert response.status_code == 403
    assert registry.active_runs() == []


def test_start_is_post_only(registry: RunRegistry, user_client: Client) -> None:
    assert user_client.get("/traffic/start").status_code == 405


def test_options_offer_only_the_operator_target_when_it_is_set(three_pods, registry, user_client) -> None:
    with override_settings(LBDEMO_TRAFFIC_URL=three_pods.url, LBDEMO_SERVICE=""):
        body = user_client.get("/traffic/options").json()
    assert [target["id"] for target in body["targets"]] == ["operator"]
    assert body["limits"] == {"max_rps": 2000, "max_conns": 64, "max_seconds": 120}
    assert body["run"] is None


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"rps": "5000"}, "at most 2000"),
        ({"conns": "x"}, "whole number"),
        ({"conns": "²"}, "connections must be a whole number (digits 0-9)"),
        ({"rps": "1" * 400}, "rate must be a whole number of at most 7 digits, not one of 400 digits"),
        ({"target": "http://evil.example/"}, "only the operator's configured target"),
    ],
)
def test_bad_forms_get_400_and_start_nothing(three_pods, registry, user_client, change, message) -> None:
    with override_settings(LBDEMO_TRAFFIC_URL=three_pods.url, LBDEMO_SERVICE=""):
        response = post(user_client, "/traffic/start", {**FORM, **change})
    assert response.status_code == 400
    assert message in response.json()["error"]
    assert registry.active_runs() == []


def test_start_stop_and_one_run_per_user(three_pods, registry, user_client) -> None:
    with override_settings(LBDEMO_TRAFFIC_URL=three_pods.url, LBDEMO_SERVICE=""):
        started = post(user_client, "/traffic/start", FORM)
        assert started.status_code == 202, started.content
        assert started.json()["run"]["state"] == "running"
        again = post(user_client, "/traffic/start", FORM)
        assert again.status_code == 409 and "already in progress" in again.json()["error"]
        run = registry.active_runs()[0]
        deadline = time.monotonic() + 30
        while run.stats.ok < 5:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert user_client.get("/traffic/options").json()["run"]["id"] == run.id
        assert post(user_client, "/traffic/stop", {}).json() == {"stopped": True}
        run.join(30)
    assert run.state == "stopped"
    assert run.stats.ok >= 5


@override_settings(LBDEMO_TRAFFIC_TOTAL_RPS=60)
def test_the_total_load_cap_is_a_429_saying_why(three_pods, registry, user_client) -> None:
    with override_settings(LBDEMO_TRAFFIC_URL=three_pods.url, LBDEMO_SERVICE=""):
        refused = post(user_client, "/traffic/start", {**FORM, "rps": "61"})
    assert refused.status_code == 429
    assert (
        "at most 60 requests/s in all; 0 other run(s) already use 0: ask for at most 60"
        in refused.json()["error"]
    )
    assert registry.active_runs() == []


def test_an_unreachable_cluster_is_a_503_and_starts_nothing(registry, user_client, settings) -> None:
    from dashboard import hub, kube

    settings.LBDEMO_TRAFFIC_URL = ""
    settings.LBDEMO_KUBECONFIG = ""  # no kubeconfig and not in a cluster: no API to ask
    kube.cluster_configuration.cache_clear()
    try:
        response = post(user_client, "/traffic/start", {**FORM, "target": "backend-service:80"})
    finally:
        kube.cluster_configuration.cache_clear()
        broken = hub._hub
        if broken is not None:
            broken.stop(timeout=1)
        hub.install_hub(None)
    assert response.status_code == 503
    assert "Cannot read the target Service" in response.json()["error"]
    assert registry.active_runs() == []
