"""`python -m dashboard.traffic`: a hey-like report with the per-pod split; bad flags exit 2."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from lab.launcher import BASE_DIR


def traffic(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dashboard.traffic", *args],
        cwd=BASE_DIR,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_report_shows_every_pod_latency_percentiles_and_statuses(three_pods) -> None:
    result = traffic(three_pods.url, "--mode", "new-conn", "-c", "3", "-n", "90")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    for pod in ("pod-a", "pod-b", "pod-c"):
        assert pod in out
    assert "Requests:\t90 (90 ok)" in out
    assert "Connections:\t90 opened" in out
    assert "99% in" in out and "chance alone gives" in out
    assert "[200]\t90 responses" in out


def test_json_summary_for_scripts(three_pods) -> None:
    result = traffic(three_pods.url, "-c", "1", "-n", "50", "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["requests"] == 50 and summary["connections"] == 1
    assert [row["requests"] for row in summary["pods"]] == [50]
    assert summary["latency_ms"]["p99"] > 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["http://127.0.0.1:1/", "--rps", "5", "--concurrency", "2"], "not allowed with"),
        (["http://127.0.0.1:1/", "-z", "5", "-n", "5"], "not allowed with"),
        (["https://127.0.0.1:1/"], "http://host"),
        (["http://127.0.0.1:1/", "--conns", "0"], "connections must be at least 1"),
        (["http://127.0.0.1:1/", "--mode", "sticky"], "invalid choice"),
        (["http://127.0.0.1:1/", "--rps", "ten"], "invalid float value"),
        (["http://127.0.0.1:1/", "-c", "2", "--concurrency", "3"], "cannot exceed"),
        ([], "required: url"),
    ],
)
def test_bad_flags_exit_2_with_a_message(args: list[str], message: str) -> None:
    result = traffic(*args)
    assert result.returncode == 2
    assert message in result.stderr
    assert result.stdout == ""
