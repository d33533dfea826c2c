"""Actions through their views against a live sandbox: scope (403), bad input (400), unknown
objects (404), CSRF, login and the per-user rate limit — and that a refusal changes nothing."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from django.contrib.auth import get_user_model
from django.test import AsyncClient, Client
from kubernetes import client, config

from dashboard import actions
from dashboard.kube import cluster_configuration
from tests.dashboard.canned import CannedSource, pod
from tests.dashboard.conftest import CannedHub

pytestmark = pytest.mark.django_db


@pytest.fixture
def live(settings: object, sandbox: object, monkeypatch: pytest.MonkeyPatch) -> Iterator[client.ApiClient]:
    """Point the dashboard at the shared sandbox; yield a direct API client for checks."""
    settings.LBDEMO_KUBECONFIG = str(sandbox.kubeconfig)  # type: ignore[attr-defined]
    monkeypatch.setattr(actions, "rate_limiter", actions.RateLimiter())
    cluster_configuration.cache_clear()
    api = config.new_client_from_config(config_file=str(sandbox.kubeconfig))  # type: ignore[attr-defined]
    yield api
    api.close()
    cluster_configuration.cache_clear()


@pytest.fixture
def browser_client() -> Client:
    user, _ = get_user_model().objects.get_or_create(username="grace")
    web = Client()
    web.force_login(user)
    return web


def state(api: client.ApiClient) -> tuple[int, str]:
    """What a refused action must not change: desired replicas and the frontend pod's uid."""
    replicas = client.AppsV1Api(api).read_namespaced_deployment("backend", "default").spec.replicas
    return replicas, client.CoreV1Api(api).read_namespaced_pod("frontend", "default").metadata.uid


@pytest.mark.sandbox
def test_targets_outside_the_backend_are_refused_with_403(
    live: client.ApiClient, browser_client: Client
) -> None:
    before = state(live)
    for url, data in [
        ("/actions/pod/delete", {"name": "frontend"}),
        ("/actions/pod/readiness", {"name": "frontend", "ready": "false"}),
        ("/actions/scale", {"replicas": "2", "deployment": "frontend"}),
    ]:
        response = browser_client.post(url, data)
        assert response.status_code == 403, (url, response.content)
        assert "error" in response.json()
    assert state(live) == before


@pytest.mark.sandbox
def test_bad_input_is_refused_with_400_and_unknown_pods_with_404(
    live: client.ApiClient, browser_client: Client
) -> None:
    before = state(live)
    for url, data in [
        ("/actions/scale", {"replicas": "-1"}),
        ("/actions/scale", {"replicas": "11"}),
        ("/actions/scale", {"replicas": "three"}),
        ("/actions/scale", {}),
        ("/actions/pod/delete", {"name": "../../etc"}),
        ("/actions/pod/delete", {}),
        ("/actions/pod/readiness", {"name": "frontend", "ready": "maybe"}),
    ]:
        response = browser_client.post(url, data)
        assert response.status_code == 400, (url, data, response.content)
    assert browser_client.post("/actions/pod/delete", {"name": "no-such-pod"}).status_code == 404
    assert state(live) == before


@pytest.mark.sandbox
def test_csrf_login_and_method_are_enforced(live: client.ApiClient, browser_client: Client) -> None:
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(get_user_model().objects.get(username="grace"))
    assert strict.post("/actions/scale", {"replicas": "1"}).status_code == 403
    assert Client().post("/actions/scale", {"replicas": "1"}).status_code == 403
    assert browser_client.get("/actions/scale").status_code == 405


def test_numbers_are_ascii_whole_numbers_with_bounds(
    browser_client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(actions, "rate_limiter", actions.RateLimiter())
    for raw, says in [
        ("²", "not '²'"),
        ("\u0661", "not '\u0661'"),
        ("9" * 400, "at most 6 digits"),
        ("+3", "not '+3'"),
        ("3.0", "not '3.0'"),
    ]:
        response = browser_client.post("/actions/scale", {"replicas": raw})
        assert response.status_code == 400, (raw, response.content)
        assert (
            "replicas must be a whole number" in response.json()["error"] and says in response.json()["error"]
        )


def test_actions_are_rate_limited_per_user(
    settings: object, browser_client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.LBDEMO_ACTIONS_PER_MINUTE = 3  # type: ignore[attr-defined]
    monkeypatch.setattr(actions, "rate_limiter", actions.RateLimiter())
    codes = [browser_client.post("/actions/scale", {"replicas": "x"}).status_code for _ in range(4)]
    assert codes == [400, 400, 400, 429]
    other = get_user_model().objects.create(username="linus")
    second = Client()
    second.force_login(other)
    assert second.post("/actions/scale", {"replicas": "x"}).status_code == 400


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("release_db_thread")
async def test_page_renders_from_the_cache_with_no_inline_script(canned_hub: CannedHub) -> None:
    source = CannedSource()
    frontend = pod("frontend", "2", labels={"app": "frontend"})
    source.script("Pod", lists=[([pod("backend-a", "1"), frontend], "2")])
    canned_hub(source)
    user, _ = await get_user_model().objects.aget_or_create(username="ada")
    web = AsyncClient()
    await web.aforce_login(user)
    response = await web.get("/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "backend-a" in html and 'ws-connect="/ws/cluster/?since=' in html and 'id="traffic-lab"' in html
    assert '<link rel="icon" href="/static/dashboard/favicon.svg" type="image/svg+xml">' in html
    assert not re.search(r"<script(?![^>]*\bsrc=)", html), "inline script"
    assert " style=" not in html and " on" + "click=" not in html
    assert "script-src 'self'" in response["Content-Security-Policy"]
    anonymous = await AsyncClient().get("/")
    assert anonymous.status_code == 302 and anonymous["Location"].startswith("/login/")


def test_actions_answer_503_when_the_cluster_cannot_be_reached(
    settings: object, tmp_path: object, browser_client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lab.launcher import free_port

    kubeconfig = tmp_path / "kubeconfig"  # type: ignore[operator]
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: gone\n"
        f"clusters: [{{name: gone, cluster: {{server: 'http://127.0.0.1:{free_port()}'}}}}]\n"
        "users: [{name: u, user: {token: t}}]\n"
        "contexts: [{name: gone, context: {cluster: gone, user: u}}]\n"
    )
    settings.LBDEMO_KUBECONFIG = str(kubeconfig)  # type: ignore[attr-defined]
    monkeypatch.setattr(actions, "rate_limiter", actions.RateLimiter())
    cluster_configuration.cache_clear()
    try:
        attempts = [("/actions/scale", {"replicas": "2"}), ("/actions/pod/delete", {"name": "backend-x"})]
        for url, data in attempts:
            response = browser_client.post(url, data)
            assert response.status_code == 503, (url, response.content)
            assert "cannot reach the cluster" in response.json()["error"]
    finally:
        cluster_configuration.cache_clear()
