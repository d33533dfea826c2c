"""The dashboard's HTTP edge: malformed requests, login throttling, where a login lands, response
headers, production start-up checks, private files and a demo that logs no secret."""

from __future__ import annotations

import logging
import os
import re
import signal
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from django.contrib.auth import get_user_model
from django.http import HttpResponse
from django.test import Client

from dashboard import auth
from lab.launcher import free_port
from tests import polling
from tests.conftest import REPO
from tests.dashboard.fakeapi import FakeApi

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse battery staple"


@pytest.fixture(autouse=True)
def fresh_throttle(settings: object) -> None:
    settings.LBDEMO_TOKEN = "operator-token-for-tests"  # type: ignore[attr-defined]
    settings.LBDEMO_LOGIN_FAILURES_PER_ACCOUNT = 5  # type: ignore[attr-defined]
    settings.LBDEMO_LOGIN_FAILURES_PER_CLIENT = 8  # type: ignore[attr-defined]
    auth.failures.clear()
    auth._login_token_spent = False


def login(client: Client, username: str, password: str, **extra: str) -> HttpResponse:
    return client.post("/login/", {"username": username, "password": password}, **extra)


def test_a_form_login_without_next_lands_on_the_dashboard() -> None:
    get_user_model().objects.create_user("ada", password=PASSWORD)
    response = login(Client(), "ada", PASSWORD)
    assert response.status_code == 302 and response["Location"] == "/"


def test_failed_logins_are_throttled_per_account_before_the_password_is_checked(
        monkeypatch: pytest.MonkeyPatch) -> None:
    get_user_model().objects.create_user("ada", password=PASSWORD)
    for i in range(5):  # from five different addresses: the account's limit, not the client's
        assert login(Client(REMOTE_ADDR=f"10.0.0.{i}"), "ada", "wrong").status_code == 200
    checked: list[str] = []
    monkeypatch.setattr("django.contrib.auth.authenticate", lambda *a, **k: checked.append("x"))
    refused = login(Client(REMOTE_ADDR="10.0.0.99"), "ADA", PASSWORD)
    assert refused.status_code == 429 and int(refused["Retry-After"]) > 0
    assert b"Too many failed login attempts" in refused.content
    assert checked == []  # no PBKDF2 burnt for a refused attempt


def test_failed_logins_are_throttled_per_client() -> None:
    client = Client(REMOTE_ADDR="10.1.1.1")
    for i in range(8):
        assert login(client, f"user{i}", "wrong").status_code == 200
    assert login(client, "someone-else", "wrong").status_code == 429
    assert login(Client(REMOTE_ADDR="10.1.1.2"), "someone-else", "wrong").status_code == 200


def test_token_guesses_are_throttled_and_a_good_login_resets_nothing() -> None:
    client = Client(REMOTE_ADDR="10.2.2.2")
    for i in range(5):
        assert client.get(f"/?token=guess{i}").status_code == 403
    refused = client.get("/?token=operator-token-for-tests")
    assert refused.status_code == 429 and "Retry-After" in refused


def test_the_throttle_forgets_failures_after_the_window() -> None:
    throttle = auth.FailureThrottle(max_keys=3)
    keys = {"client:a": 2}
    throttle.fail(keys, now=0.0)
    throttle.fail(keys, now=1.0)
    assert throttle.retry_after(keys, window=10, now=2.0) == 8  # the first failure ages out at 10
    assert throttle.retry_after(keys, window=10, now=11.5) == 0
    for i in range(10):  # bounded memory
        throttle.fail({f"client:{i}": 1}, now=20.0)
    assert len(throttle._failures) == 3


def test_a_malformed_body_is_a_400_with_one_log_line(caplog: pytest.LogCaptureFixture) -> None:
    client = Client(raise_request_exception=False)
    client.get("/login/")
    with caplog.at_level(logging.INFO):
        for charset in ("utf-16", "utf-7", "utf-32", "cp1026"):
            response = client.post("/login/", data=b"username=a&password=b",
                                   content_type=f"application/x-www-form-urlencoded; charset={charset}")
            assert response.status_code == 400, charset
    records = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(records) == 4 and not any(r.exc_info for r in records)
    assert all("400 malformed POST request" in r.getMessage() for r in records)


def test_answers_carry_a_self_only_connect_src_and_no_store() -> None:
    response = Client().get("/login/")
    csp = response["Content-Security-Policy"]
    assert "connect-src 'self'" in csp and "ws:" not in csp and "wss:" not in csp
    assert "no-store" in response["Cache-Control"]


def production(env: dict[str, str], code: str) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, "DJANGO_SETTINGS_MODULE": "dashboard.settings_production",
            "LBDEMO_SECRET_KEY": "k" * 20 + "abcdefghijklmnopqrstuvwxyz0123456789", **env}
    return subprocess.run([sys.executable, "-c", f"import django; django.setup(); {code}"], cwd=REPO,
                          env=full, capture_output=True, text=True, timeout=120)


def test_production_refuses_a_weak_operator_token_and_trusts_no_proxy_header_by_default() -> None:
    for weak in ("short", "a" * 40, "abababababababababababababababababab"):
        result = production({"LBDEMO_TOKEN": weak}, "pass")
        assert result.returncode != 0 and "LBDEMO_TOKEN is too weak" in result.stderr
    strong = production({"LBDEMO_TOKEN": "Xq3v9LrT0p-2mZb7Kw8sYd4Hf6Jc1Ng5Ua_e"},
                        "from django.conf import settings; print(settings.SECURE_PROXY_SSL_HEADER)")
    assert strong.returncode == 0 and strong.stdout.strip() == "None", strong.stderr
    opted = production({"LBDEMO_TRUST_X_FORWARDED_PROTO": "true"},
                       "from django.conf import settings; print(settings.SECURE_PROXY_SSL_HEADER)")
    assert "HTTP_X_FORWARDED_PROTO" in opted.stdout


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_demo_keeps_its_files_private_and_logs_no_token(tmp_path: Path) -> None:
    api = FakeApi()
    state = tmp_path / "state"
    port = free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("LBDEMO_DB_PATH", None)
    demo = subprocess.Popen([sys.executable, "manage.py", "demo", "--kubeconfig",
                             str(api.kubeconfig(tmp_path / "kubeconfig")), "--port", str(port),
                             "--state-dir", str(state)], cwd=REPO, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        assert demo.stdout is not None
        url = ""
        for line in demo.stdout:
            found = re.search(r"Dashboard: (\S+\?token=\S+)", line)
            if found:
                url = found.group(1)
                break
        assert url, "the demo printed no login URL"
        token = url.split("token=", 1)[1]
        response = requests.get(url, timeout=60, allow_redirects=False)
        assert response.status_code == 302
        requests.get(url, timeout=60, allow_redirects=False)  # spent: refused, and logged
        log = state / "dashboard.log"
        polling.wait_until(lambda: log.read_text().count("[redacted]") >= 2, timeout=30,
                           what="the access log lines")
    finally:
        os.killpg(demo.pid, signal.SIGINT)
        demo.wait(timeout=60)
        api.stop()
    for name in ("dashboard.log", "dashboard.sqlite3"):
        assert mode(state / name) == 0o600, name
    for path in state.iterdir():
        if path.is_file():
            assert token not in path.read_text(errors="replace"), path.name
