"""`python -m sandbox up` as a user runs it: one sandbox per state directory."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from lab.launcher import free_port

REPO = Path(__file__).resolve().parents[2]


def test_a_second_sandbox_on_the_same_state_dir_is_refused(sandbox_factory: Callable, tmp_path: Path) -> None:
    running = sandbox_factory(state_dir=tmp_path / "state")
    kubeconfig_before = running.kubeconfig.read_text()
    second = subprocess.run(
        [sys.executable, "-m", "sandbox", "up", "--state-dir", str(tmp_path / "state"),
         "--api-port", str(free_port())],
        cwd=REPO, capture_output=True, text=True, timeout=60,
    )
    assert second.returncode == 1
    assert "in use by another sandbox (pid" in second.stderr
    assert running.kubeconfig.read_text() == kubeconfig_before, "the running sandbox's kubeconfig is kept"
