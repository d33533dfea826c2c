"""Shared test fixtures: live sandbox clusters, the lab (sandbox + dashboard) and Chromium.

Area-specific fixtures live in each test folder's own conftest.py.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml

from lab.launcher import Lab, free_port

REPO = Path(__file__).resolve().parent.parent
ARTIFACTS = REPO / "test-artifacts"
KUBECTL = REPO / ".venv" / "bin" / "kubectl"


class Sandbox:
    """A running `python -m sandbox up`, as a test sees it: kubeconfig, API URL, token."""

    def __init__(self, lab: Lab, state_dir: Path) -> None:
        self.lab = lab
        self.state_dir = state_dir
        self.kubeconfig = lab.kubeconfig
        config = yaml.safe_load(self.kubeconfig.read_text())
        self.url: str = config["clusters"][0]["cluster"]["server"]
        self.token: str = config["users"][0]["user"]["token"]

    def kubectl_env(self) -> dict[str, str]:
        """Environment for running the bundled kubectl against this sandbox."""
        return {**os.environ, "KUBECONFIG": str(self.kubeconfig)}

    def stop(self) -> None:
        """Stop the sandbox and every pod process it started."""
        self.lab.stop()


def start_sandbox(state_dir: Path, *, nodes: int = 3) -> Sandbox:
    """Start a sandbox in ``state_dir`` on a free port and wait until its API answers."""
    lab = Lab()
    try:
        lab.start_sandbox(state_dir=state_dir, api_port=free_port(), nodes=nodes,
                          log_file=state_dir.parent / f"{state_dir.name}.log")
    except Exception:
        lab.stop()
        raise
    return Sandbox(lab, state_dir)


@pytest.fixture(scope="session")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    """One live sandbox shared by the session's read-mostly tests. Tests that change the
    cluster in ways others would notice use ``sandbox_factory`` instead."""
    box = start_sandbox(tmp_path_factory.mktemp("sandbox-shared") / "state")
    yield box
    box.stop()


@pytest.fixture
def sandbox_factory(tmp_path: Path) -> Iterator[Callable[..., Sandbox]]:
    """Start fresh, private sandboxes for one test; all are stopped when the test ends."""
    started: list[Sandbox] = []

    def make(*, nodes: int = 3, state_dir: Path | None = None) -> Sandbox:
        box = start_sandbox(state_dir or tmp_path / f"sandbox-{len(started)}", nodes=nodes)
        started.append(box)
        return box

    yield make
    for box in started:
        box.stop()


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    """Where tests save screenshots and logs for a human to look at."""
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="session")
def chromium_path() -> str:
    """Debian's chromium, which `make test` installs; its absence is an error, not a skip."""
    path = shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(path).exists():
        pytest.fail("Debian's chromium is not installed (make test installs it with apt-get)")
    return path


class RunningLab:
    """`make demo`'s setup as a test sees it: a sandbox plus the dashboard logged in by token."""

    def __init__(self, lab: Lab, sandbox: Sandbox, token: str) -> None:
        self.lab = lab
        self.sandbox = sandbox
        self.token = token
        self.url: str = lab.dashboard_url or ""
        self.login_url = f"{self.url}?token={token}"

    def stop(self) -> None:
        """Stop the dashboard, then the sandbox."""
        self.lab.stop()
        self.sandbox.stop()


def start_lab(state_dir: Path, *, extra_env: dict[str, str] | None = None) -> RunningLab:
    """Start a sandbox and the dashboard exactly as `manage.py demo` does, on free ports."""
    import secrets

    box = start_sandbox(state_dir)
    lab = Lab()
    token = secrets.token_urlsafe(24)
    env = {
        "KUBECONFIG": str(box.kubeconfig),
        "LBDEMO_LOGIN_TOKEN": token,
        "LBDEMO_DB_PATH": str(state_dir.parent / "dashboard.sqlite3"),
        **(extra_env or {}),
    }
    try:
        lab.start_dashboard(port=free_port(), env=env, log_file=state_dir.parent / "dashboard.log")
    except Exception:
        lab.stop()
        box.stop()
        raise
    return RunningLab(lab, box, token)


@pytest.fixture
def lab_factory(tmp_path: Path) -> Iterator[Callable[..., RunningLab]]:
    """Start private labs (sandbox + dashboard) for one test; all stop when it ends."""
    started: list[RunningLab] = []

    def make(**kwargs: object) -> RunningLab:
        running = start_lab(tmp_path / f"lab-{len(started)}" / "state", **kwargs)  # type: ignore[arg-type]
        started.append(running)
        return running

    yield make
    for running in started:
        running.stop()


CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync", "--disable-quic"]


@pytest.fixture(scope="module")
def browser(chromium_path: str) -> Iterator[object]:
    """A real headless Debian Chromium per test module, driven by Playwright.

    Module scope, not session: Playwright's sync API keeps an asyncio loop running while it
    is open, which would break every pytest-asyncio test collected after it."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=chromium_path, headless=True,
                                              args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()
