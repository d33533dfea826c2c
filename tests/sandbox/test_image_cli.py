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
    """A stopped sandbox's state directory takes `image load`; `image ls` lists every image of the
    catalogue with the nodes that hold it."""
    box = sandbox_factory(nodes=2)
    kube = Kube(box)
    wait_until(lambda: len(kube.get("nodes")["items"]) == 2, timeout=60, what="the nodes to register")
    box.stop()
    state_dir = str(box.state_dir)

    def nodes_of() -> dict[str, str]:
        listed = sandbox_cli("image", "ls", "--state-dir", state_dir)
        assert listed.returncode == 0, listed.stderr
        rows = [line.split() for line in listed.stdout.splitlines()[1:]]
        return {row[0]: " ".join(row[3:]) for row in rows}

    before = nodes_of()
    assert set(before) >= {f"docker.io/library/{n}" for n in
                           ("lb-demo:latest", "lb-demo:v2", "lb-demo:v3", "busybox:latest", "nginx:latest",
                            "python:latest")}
    assert before["docker.io/library/lb-demo:latest"] == "sandbox-node-1,sandbox-node-2"
    assert before["docker.io/library/lb-demo:v3"].startswith("<none>")
    loaded = sandbox_cli("image", "load", "lb-demo:v3", "--node", "sandbox-node-2", "--state-dir", state_dir)
    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stdout.startswith("Loaded image lb-demo:v3")
    assert nodes_of()["docker.io/library/lb-demo:v3"] == "sandbox-node-2"
    for name in ("busybox", "nginx", "python", "lb-demo:v3"):
        loaded = sandbox_cli("image", "load", name, "--state-dir", state_dir)
        assert loaded.returncode == 0, loaded.stderr
    after = nodes_of()
    assert all(after[f"docker.io/library/{n}"] == "sandbox-node-1,sandbox-node-2"
               for n in ("busybox:latest", "nginx:latest", "python:latest", "lb-demo:v3"))
    unknown = sandbox_cli("image", "load", "redis", "--state-dir", state_dir)
    assert unknown.returncode == 1 and "not found in the local image catalogue" in unknown.stderr
