"""The panel's HTTP endpoints: logged-in only, CSRF on POST, bad input -> 400 and nothing started."""

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
    assert client.get("/traffic/options").status_code == 403
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
        ({"target": "http://evil.example/"}, "only the operator's configured target"),
    ],
)
def test_bad_forms_get_400_and_start_nothing(three_pods, registry, user_client, change, message) -> None:
    with override_settings(LBDEMO_TRAFFIC_URL=three_pods.url, LBDEMO_SERVICE=""):
        response = post(user_client, "/traffic/start", {**FORM, **change})
    assert response.status_code == 400
    assert message in response.content.decode()
    assert registry.active_runs() == []


def test_start_stop_and_one_run_per_user(three_pods, registry, user_client) -> None:
    with override_settings(LBDEMO_TRAFFIC_URL=three_pods.url, LBDEMO_SERVICE=""):
        started = post(user_client, "/traffic/start", FORM)
        assert started.status_code == 202, started.content
        assert started.json()["run"]["state"] == "running"
        again = post(user_client, "/traffic/start", FORM)
        assert again.status_code == 409
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


def test_an_unreachable_cluster_is_a_503_and_starts_nothing(registry, user_client, settings) -> None:
    from dashboard import kube

    settings.LBDEMO_TRAFFIC_URL = ""
    settings.LBDEMO_KUBECONFIG = ""  # no kubeconfig and not in a cluster: no API to ask
    kube.cluster_configuration.cache_clear()
    try:
        response = post(user_client, "/traffic/start", {**FORM, "target": "backend-service:80"})
    finally:
        kube.cluster_configuration.cache_clear()
    assert response.status_code == 503
    assert "Cannot read the target Service" in response.content.decode()
    assert registry.active_runs() == []
