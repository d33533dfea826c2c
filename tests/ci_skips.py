"""pytest plugin: under CI=true a skipped test fails the run.

A skip in CI almost always means a dependency that `make test` failed to install, so it must
not pass silently. Loaded for every run through `-p tests.ci_skips` in pyproject.toml.
"""

from __future__ import annotations

import os

import pytest


def in_ci() -> bool:
    """CI sets CI=true."""
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Under CI, turn a run with skipped tests into a failed run."""
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = len(reporter.stats.get("skipped", [])) if reporter else 0
    if reporter and in_ci() and skipped and session.exitstatus == pytest.ExitCode.OK:
        reporter.write_line(f"CI: {skipped} test(s) skipped; a skip under CI=true fails the run", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
