"""Shared test fixtures: live sandbox clusters, the lab (sandbox + dashboard) and Chromium.

Booting a sandbox costs seconds of both cores, so tests share one where they can:
- ``sandbox``: one live sandbox for the whole session;
- ``sample_namespace``: a fresh namespace of that shared sandbox holding the sample app
  (k8s/backend.yaml and k8s/frontend.yaml), deleted afterwards: for tests that change the app
  (scale it, kill its pods, roll it out) but not the cluster;
- ``sample_lab``: the dashboard on such a namespace;
- ``sandbox_factory`` (``start_lab`` with a dashboard): fresh private sandboxes, only for tests
  that stop, restart or break the cluster itself.
The run's summary says how many sandboxes the run booted (all xdist workers together).

Area-specific fixtures live in each test folder's own conftest.py.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import subprocess
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml

from lab.launcher import Lab, free_port

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

REPO = Path(__file__).resolve().parent.parent
ARTIFACTS = REPO / "test-artifacts"
KUBECTL = REPO / ".venv" / "bin" / "kubectl"
SAMPLE_MANIFESTS = (REPO / "k8s" / "backend.yaml", REPO / "k8s" / "frontend.yaml")


class Sandbox:
    """A running `python -m sandbox up`, as a test sees it: kubeconfig, API URL, token."""

    def __init__(self, lab: Lab, state_dir: Path) -> None:
        assert lab.kubeconfig is not None, "the lab has not started a sandbox"
        self.lab = lab
        self.state_dir = state_dir
        self.kubeconfig: Path = lab.kubeconfig
        config = yaml.safe_load(self.kubeconfig.read_text())
        self.url: str = config["clusters"][0]["cluster"]["server"]
        self.token: str = config["users"][0]["user"]["token"]

    def kubectl_env(self) -> dict[str, str]:
        """Environment for running the bundled kubectl against this sandbox."""
        return {**os.environ, "KUBECONFIG": str(self.kubeconfig)}

    def run_kubectl(self, *args: str, stdin: str | None = None, check: bool = True,
                    timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
        """Run the bundled kubectl against this sandbox (bounded by ``timeout``); with ``check``, a
        non-zero exit fails the test with kubectl's stderr."""
        result = subprocess.run([str(KUBECTL), *args], env=self.kubectl_env(), input=stdin, text=True,
                                capture_output=True, timeout=timeout)
        if check and result.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({result.returncode}):\n{result.stderr}")
        return result

    def kubectl(self, *args: str, stdin: str | None = None, timeout: float = 60.0) -> str:
        """Run the bundled kubectl against this sandbox; its stdout (a failure fails the test)."""
        return self.run_kubectl(*args, stdin=stdin, timeout=timeout).stdout

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


def sample_app_for_a_namespace() -> str:
    """The sample app's manifests as applied into a namespace of their own. The only change is the
    backend Service's fixed nodePort 30080: node ports are cluster-wide, so each namespace's
    Service gets one allocated by the API server instead (read it from the Service)."""
    docs: list[dict[str, Any]] = []
    for path in SAMPLE_MANIFESTS:
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and doc.get("kind") == "Service":
                for port in doc["spec"].get("ports") or []:
                    port.pop("nodePort", None)
            if doc:
                docs.append(doc)
    return yaml.safe_dump_all(docs)


def create_sample_namespace(box: Sandbox) -> str:
    """Create a fresh namespace in ``box`` with the sample app applied into it; return its name.
    The pods are created, not yet Ready."""
    name = f"t-{uuid.uuid4().hex[:8]}"
    box.kubectl("create", "namespace", name)
    box.kubectl("apply", "-n", name, "-f", "-", stdin=sample_app_for_a_namespace())
    return name


def delete_namespace(box: Sandbox, name: str) -> None:
    """Delete a namespace and everything in it (the garbage collector finishes in the background)."""
    box.kubectl("delete", "namespace", name, "--wait=false")


@pytest.fixture
def sample_namespace(sandbox: Sandbox) -> Iterator[str]:
    """A fresh namespace in the shared sandbox with the sample app applied into it; deleted (with
    everything in it) when the test ends. The pods are created, not yet Ready."""
    name = create_sample_namespace(sandbox)
    yield name
    delete_namespace(sandbox, name)


class BackgroundStops:
    """Stops that the next test need not wait for. A sandbox stop is a graceful node shutdown
    (every pod's preStop hook and drain: ~7 s of mostly sleeping), so a private sandbox whose
    test is over is stopped on a thread while the run goes on; the session waits for all of them
    at its end, so no process outlives the run."""

    def __init__(self) -> None:
        self.threads: list[threading.Thread] = []

    def stop(self, stop: Callable[[], None]) -> None:
        """Run ``stop`` on a thread of its own."""
        thread = threading.Thread(target=stop, name=f"stop-{len(self.threads)}")
        thread.start()
        self.threads.append(thread)

    def wait(self) -> None:
        """Wait until every stop has finished (each escalates to SIGKILL on its own)."""
        for thread in self.threads:
            thread.join()


@pytest.fixture(scope="session")
def background_stops() -> Iterator[BackgroundStops]:
    """The session's stops in the background, all waited for when the session ends."""
    stops = BackgroundStops()
    yield stops
    stops.wait()


@pytest.fixture
def sandbox_factory(tmp_path: Path, background_stops: BackgroundStops) -> Iterator[Callable[..., Sandbox]]:
    """Start fresh, private sandboxes for one test; all are stopped when the test ends."""
    started: list[Sandbox] = []

    def make(*, nodes: int = 3, state_dir: Path | None = None) -> Sandbox:
        box = start_sandbox(state_dir or tmp_path / f"sandbox-{len(started)}", nodes=nodes)
        started.append(box)
        return box

    yield make
    for box in started:
        background_stops.stop(box.stop)


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

    def __init__(self, lab: Lab, sandbox: Sandbox, token: str, *, owns_sandbox: bool = True,
                 namespace: str = "default") -> None:
        self.lab = lab
        self.sandbox = sandbox
        self.token = token
        self.namespace = namespace
        self.owns_sandbox = owns_sandbox
        self.url: str = lab.dashboard_url or ""
        self.login_url = f"{self.url}?token={token}"

    def stop(self) -> None:
        """Stop the dashboard, then the sandbox (unless it is the shared one)."""
        self.lab.stop()
        if self.owns_sandbox:
            self.sandbox.stop()


def start_lab(state_dir: Path, *, extra_env: dict[str, str] | None = None, sandbox: Sandbox | None = None,
              namespace: str = "default") -> RunningLab:
    """Start a sandbox and the dashboard exactly as `manage.py demo` does, on free ports. With
    ``sandbox``, the dashboard watches ``namespace`` of that (running, shared) sandbox instead."""
    import secrets

    box = sandbox or start_sandbox(state_dir)
    lab = Lab()
    token = secrets.token_urlsafe(24)
    state_dir.mkdir(parents=True, exist_ok=True)
    env = {
        "KUBECONFIG": str(box.kubeconfig),
        "LBDEMO_LOGIN_TOKEN": token,
        "LBDEMO_NAMESPACE": namespace,
        "LBDEMO_DB_PATH": str(state_dir.parent / "dashboard.sqlite3"),
        **(extra_env or {}),
    }
    try:
        lab.start_dashboard(port=free_port(), env=env, log_file=state_dir.parent / "dashboard.log")
    except Exception:
        lab.stop()
        if sandbox is None:
            box.stop()
        raise
    return RunningLab(lab, box, token, owns_sandbox=sandbox is None, namespace=namespace)


@pytest.fixture
def sample_lab(tmp_path: Path, sandbox: Sandbox, sample_namespace: str) -> Iterator[RunningLab]:
    """The dashboard as `make demo` starts it, watching a fresh sample namespace of the shared
    sandbox: for tests that drive the page and change the app, not the cluster."""
    running = start_lab(tmp_path / "lab" / "state", sandbox=sandbox, namespace=sample_namespace)
    yield running
    running.stop()


SANDBOX_BOOTS: list[str] = []


def pytest_configure(config: pytest.Config) -> None:
    """Count every sandbox this process boots (fixtures and tests that restart one alike)."""
    original = Lab.start_sandbox
    if getattr(original, "counted", False):
        return

    @functools.wraps(original)
    def counted(self: Lab, **kwargs: Any) -> Path:
        SANDBOX_BOOTS.append(os.environ.get("PYTEST_CURRENT_TEST", "?"))
        return original(self, **kwargs)

    counted.counted = True  # type: ignore[attr-defined]
    Lab.start_sandbox = counted  # type: ignore[method-assign]


def pytest_sessionfinish(session: pytest.Session) -> None:
    """An xdist worker hands its count to the controller, which prints the total."""
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:
        workeroutput["sandbox_boots"] = len(SANDBOX_BOOTS)


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: object) -> None:
    """Add up the boots of each xdist worker as it finishes (an xdist hook, only under `-n`)."""
    WORKER_BOOTS.append(getattr(node, "workeroutput", {}).get("sandbox_boots", 0))


WORKER_BOOTS: list[int] = []


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Say how many sandboxes were booted: the cost that shared fixtures keep down."""
    boots = len(SANDBOX_BOOTS) + sum(WORKER_BOOTS)
    if boots:
        terminalreporter.write_line(
            f"sandbox boots in this run: {boots} (manage.py demo subprocesses not included)"
        )


@contextlib.contextmanager
def live_page(browser: Browser, url: str, *, viewport: dict[str, int], timeout_ms: float) -> Iterator[Page]:
    """A fresh browser context and page on the dashboard at ``url`` (a login URL), once its status
    says live; when the block ends, the test fails if the page broke its CSP or threw."""
    from playwright.sync_api import expect

    context = browser.new_context(viewport=viewport)  # type: ignore[arg-type]
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if "Content Security Policy" in m.text else None)
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.goto(url)
    expect(page.locator("#status")).to_contain_text("live", timeout=timeout_ms)
    yield page
    context.close()
    assert problems == [], "the page broke its CSP or threw"


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
