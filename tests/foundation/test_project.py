"""Foundation contracts: settings from the environment, deploy checks, Dockerfiles, CI rules."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def manage(*args: str, env: dict[str, str] | None = None,
           timeout: float = 120) -> subprocess.CompletedProcess:
    """Run manage.py in a fresh interpreter with the given extra environment."""
    return subprocess.run([sys.executable, "manage.py", *args], cwd=REPO, capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=timeout)


def test_production_settings_pass_check_deploy() -> None:
    result = manage("check", "--deploy", "--fail-level", "WARNING",
                    env={"DJANGO_SETTINGS_MODULE": "dashboard.settings_production",
                         "LBDEMO_SECRET_KEY": "production-secret-key-with-enough-entropy-9f8e7d6c5b4a-x1"})
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_production_settings_refuse_a_missing_secret_key() -> None:
    env = {"DJANGO_SETTINGS_MODULE": "dashboard.settings_production", "LBDEMO_SECRET_KEY": ""}
    result = manage("check", env=env)
    assert result.returncode != 0
    assert "LBDEMO_SECRET_KEY" in result.stderr


def test_debug_is_off_unless_asked(settings_module_env: dict[str, str]) -> None:
    show_debug = "from django.conf import settings; print(settings.DEBUG)"
    off = manage("shell", "-c", show_debug, env=settings_module_env)
    on = manage("shell", "-c", show_debug, env={**settings_module_env, "LBDEMO_DEBUG": "true"})
    assert (off.stdout.split()[-1], on.stdout.split()[-1]) == ("False", "True")


def test_bad_setting_is_a_clear_error(settings_module_env: dict[str, str]) -> None:
    result = manage("check", env={**settings_module_env, "LBDEMO_MAX_REPLICAS": "lots"})
    assert result.returncode != 0
    assert "LBDEMO_MAX_REPLICAS must be an integer" in result.stderr


def test_demo_refuses_bad_flags_before_starting_anything(tmp_path: Path) -> None:
    bad_port = manage("demo", "--port", "0", "--state-dir", str(tmp_path))
    missing = manage("demo", "--kubeconfig", str(tmp_path / "nope"), "--state-dir", str(tmp_path))
    assert bad_port.returncode != 0 and "--port" in bad_port.stderr
    assert missing.returncode != 0 and "does not exist" in missing.stderr


@pytest.fixture
def settings_module_env() -> dict[str, str]:
    """The default (lab) settings, whatever the caller's environment says."""
    return {"DJANGO_SETTINGS_MODULE": "dashboard.settings", "LBDEMO_DEBUG": "", "LBDEMO_MAX_REPLICAS": ""}


@pytest.mark.parametrize("name", ["Dockerfile.backend", "Dockerfile.dashboard"])
def test_dockerfiles_are_pinned_non_root_and_health_checked(name: str) -> None:
    text = (REPO / name).read_text()
    found = re.search(r"^FROM (\S+)", text, re.MULTILINE)
    assert found, f"{name} has no FROM line"
    base = found.group(1)
    assert re.fullmatch(r"python:3\.11\.\d+-slim-\w+", base), f"base image not pinned: {base}"
    assert re.search(r"^USER 10001$", text, re.MULTILINE)
    assert "HEALTHCHECK" in text


def test_ci_runs_make_test() -> None:
    assert "make test" in (REPO / ".ci" / "run").read_text()


def test_a_skip_fails_the_run_under_ci(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    pytester.makepyfile("import pytest\ndef test_x():\n    pytest.skip('chromium missing')\n")
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    monkeypatch.setenv("CI", "true")
    assert pytester.runpytest_subprocess("-p", "tests.ci_skips").ret == pytest.ExitCode.TESTS_FAILED
    monkeypatch.setenv("CI", "")
    assert pytester.runpytest_subprocess("-p", "tests.ci_skips").ret == pytest.ExitCode.OK


def test_kubectl_is_installed_in_the_virtualenv() -> None:
    result = subprocess.run([str(REPO / ".venv" / "bin" / "kubectl"), "version", "--client"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0
    assert "v1.37" in result.stdout
