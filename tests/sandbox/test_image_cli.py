"""`python -m sandbox image load/ls` refuse a state directory that holds no sandbox (loading
there would silently feed no node) and work on a stopped sandbox's state directory."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.sandbox.conftest import Kube, wait_until

pytestmark = pytest.mark.sandbox


def sandbox_cli(*args: str) -> subprocess.CompletedProcess[str]:
    """Run ``python -m sandbox ARGS``."""
    return subprocess.run(
        [sys.executable, "-m", "sandbox", *args], cwd=REPO, capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize("command", [["image", "load", "lb-demo:v3"], ["image", "ls"]])
@pytest.mark.parametrize("existing", [False, True], ids=["missing-dir", "empty-dir"])
def test_image_commands_refuse_a_directory_without_sandbox(
    tmp_path: Path, command: list[str], existing: bool
) -> None:
    """No sandbox store in DIR: exit 1 with the way to start one, and nothing written."""
    state_dir = tmp_path / "not-a-sandbox"
    if existing:
        state_dir.mkdir()
    proc = sandbox_cli(*command, "--state-dir", str(state_dir))
    assert proc.returncode == 1
    hint = f"start one with: python -m sandbox up --state-dir {state_dir}"
    assert proc.stderr.strip() == f"error: no sandbox state in {state_dir} ({hint})"
    assert proc.stdout == ""
    assert (list(state_dir.iterdir()) == []) if existing else not state_dir.exists()


def test_image_load_works_on_a_stopped_sandbox(sandbox_factory) -> None:
    """A stopped sandbox's state directory takes `image load`; `image ls` lists the image."""
    box = sandbox_factory(nodes=1)
    kube = Kube(box)
    wait_until(lambda: kube.get("nodes")["items"], timeout=60, what="the node to register")
    box.stop()
    state_dir = str(box.state_dir)
    assert "lb-demo:v3" not in sandbox_cli("image", "ls", "--state-dir", state_dir).stdout
    loaded = sandbox_cli("image", "load", "lb-demo:v3", "--state-dir", state_dir)
    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stdout.startswith("Loaded image lb-demo:v3")
    listed = sandbox_cli("image", "ls", "--state-dir", state_dir)
    assert listed.returncode == 0, listed.stderr
    names = [line.split("\t")[0] for line in listed.stdout.splitlines()]
    assert "docker.io/library/lb-demo:v3" in names
    assert "docker.io/library/lb-demo:latest" in names
