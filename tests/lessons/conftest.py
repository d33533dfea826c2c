"""Fixtures for the lessons rail: one lab per test module (sandbox + dashboard, able to load images
into the sandbox's node), a logged-in page, and helpers that drive the rail like a learner."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
from collections.abc import Generator, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Locator, Page, expect
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

from dashboard.lessons.definitions import LESSONS
from tests.conftest import REPO, RunningLab, live_page, start_lab

SLOW = 90_000  # ms: generous, the machine is shared
OPERATOR_TOKEN = secrets.token_urlsafe(16)


def image_load_command(state_dir: Path) -> str:
    """What `manage.py demo` configures: the sandbox's documented image-load command."""
    return f"{sys.executable} -m sandbox image load {{image}} --state-dir {state_dir}"


@pytest.fixture(scope="package")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningLab]:
    """A sandbox and the dashboard as `make demo` starts them, shared by the lessons' browser
    modules (each test resets the sample app when it is done; the image lesson, which loads
    lb-demo:v3 for good, runs once, last in test_buttons)."""
    state = tmp_path_factory.mktemp("lessons-lab") / "state"
    running = start_lab(
        state,
        extra_env={"LBDEMO_TOKEN": OPERATOR_TOKEN, "LBDEMO_IMAGE_LOAD_COMMAND": image_load_command(state)},
    )
    yield running
    running.stop()


@pytest.fixture
def page(browser: Browser, lab: RunningLab) -> Iterator[Page]:
    """A fresh logged-in page showing the live cluster and the lessons rail."""
    with live_page(browser, f"{lab.url}?token={OPERATOR_TOKEN}", viewport={"width": 1600, "height": 1100},
                   timeout_ms=SLOW) as page:
        expect(page.locator("[data-lesson]")).to_have_count(len(LESSONS), timeout=SLOW)
        yield page


class Rail:
    """The lessons rail as a learner uses it."""

    def __init__(self, page: Page, lab: RunningLab) -> None:
        self.page = page
        self.lab = lab

    def lesson(self, lesson: str) -> Locator:
        return self.page.locator(f'[data-lesson="{lesson}"]')

    def check(self, lesson: str, check: str) -> Locator:
        return self.lesson(lesson).locator(f'[data-check="{check}"]')

    def start(self, lesson: str, answer: int) -> None:
        """Start a lesson and answer its question."""
        self.click_posting(self.lesson(lesson).locator(".lesson-start button"), "**/lessons/start")
        expect(self.lesson(lesson)).to_have_attribute("data-state", "active", timeout=SLOW)
        expect(self.lesson(lesson).locator(".lesson-answer")).to_be_visible(timeout=SLOW)
        self.lesson(lesson).locator(f'.lesson-answer input[value="{answer}"]').check()
        self.click_posting(self.lesson(lesson).locator(".lesson-answer button"), "**/lessons/answer")
        expect(self.lesson(lesson).locator(".your-answer")).to_be_visible(timeout=SLOW)

    def press(self, lesson: str, label: str) -> None:
        """Click one of the lesson's buttons; the command log grows by one entry."""
        before = self.page.locator("#command-log > li").count()
        self.click_posting(
            self.lesson(lesson).locator(".lesson-button", has_text=label).first, "**/lessons/action"
        )
        deadline = time.monotonic() + SLOW / 1000
        while self.page.locator("#command-log > li").count() < before + 1:
            toast = self.page.locator("#toast.visible")
            assert not toast.count(), f"{label!r} was refused: {toast.inner_text()}"
            assert time.monotonic() < deadline, f"{label!r} logged no command"
            time.sleep(0.1)

    def click_posting(self, target: Locator, url: str) -> None:
        """Click a button whose form posts to ``url``; click again if the rail was re-rendered
        under the pointer and the click reached a button that had just been replaced."""
        for _ in range(3):
            try:
                with self.page.expect_request(url, timeout=5_000):
                    target.click()
                return
            except PlaywrightTimeoutError:
                continue
        raise AssertionError(f"clicking {target} posted nothing to {url}")

    def command(self, lesson: str, label: str) -> str:
        """The command printed beside a button."""
        action = self.lesson(lesson).locator(".lesson-action", has_text=label).first
        return action.locator(".command code").inner_text()

    def run(self, command: str, *, cwd: Path = REPO) -> str:
        """Run a printed command in a shell, as the learner would (kubectl on PATH, this lab's
        kubeconfig)."""
        env = {
            **os.environ,
            "KUBECONFIG": str(self.lab.sandbox.kubeconfig),
            "PATH": f"{REPO / '.venv' / 'bin'}:{os.environ.get('PATH', '')}",
        }
        done = subprocess.run(
            ["bash", "-c", command], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, f"{command}\n{done.stdout}\n{done.stderr}"
        return done.stdout

    def stop_traffic_after(self, requests: int) -> None:
        """Once the running traffic run has answered ``requests`` more requests, stop it from the
        traffic panel (a stopped run counts like a finished one; tests need not wait it out)."""
        panel = self.page.locator("#traffic-panel")
        expect(panel).to_have_attribute("data-run-state", "running", timeout=SLOW)
        target = int(panel.get_attribute("data-requests") or 0) + requests
        deadline = time.monotonic() + SLOW / 1000
        while int(panel.get_attribute("data-requests") or 0) < target:
            if panel.get_attribute("data-run-state") != "running":
                return  # it ended by itself meanwhile
            assert time.monotonic() < deadline, "the traffic run stalled"
            time.sleep(0.1)
        self.page.locator("#traffic-stop").click()
        expect(panel).not_to_have_attribute("data-run-state", "running", timeout=SLOW)

    def wait(self, lesson: str, check: str, state: str = "passed") -> str:
        """Until the check shows ``state``; its figure."""
        expect(self.check(lesson, check)).to_have_attribute("data-state", state, timeout=SLOW)
        return self.check(lesson, check).inner_text()

    def reset(self) -> None:
        """The reset button (the server must accept it), then until the sample app is back:
        3 ready backend pods, v1, nothing left terminating. A reset after a rollout is a rollout
        back (3 pods replaced one by one, each draining): it gets twice the usual patience."""
        for _ in range(3):
            try:
                with self.page.expect_response("**/lessons/reset", timeout=SLOW) as answer:
                    self.page.locator("#lessons-reset").click()
                break
            except PlaywrightTimeoutError:
                continue  # the rail was re-rendered under the pointer: click again
        else:
            raise AssertionError("the reset button posted nothing")
        assert answer.value.status == 202, f"reset refused: {answer.value.status} {answer.value.text()}"
        ready = self.page.locator('#nodes .pod-card[data-status="Running"][data-ready="true"]')
        expect(self.page.locator("#nodes .pod-card")).to_have_count(3, timeout=2 * SLOW)
        expect(ready).to_have_count(3, timeout=SLOW)
        expect(self.page.locator("#endpoints")).to_have_attribute("data-ready", "3", timeout=SLOW)
        expect(self.page.locator("#replicasets .replicaset.active")).to_have_count(1, timeout=SLOW)


@pytest.fixture
def rail(page: Page, lab: RunningLab, request: pytest.FixtureRequest) -> Iterator[Rail]:
    """The rail of a fresh page. A test that failed before its own reset leaves the sample app
    reset behind it, so that the next test starts from 3 ready v1 pods, not from the failure."""
    rail = Rail(page, lab)
    yield rail
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        rail.reset()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Keep each phase's report on the test item (``rep_call``) for the rail fixture's teardown."""
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


def settle(rail: Rail, *, ready: int, pods: int | None = None) -> None:
    """Until the page shows ``ready`` ready endpoints and that many (or ``pods``) backend pods."""
    expect(rail.page.locator("#nodes .pod-card:not(.leaving)")).to_have_count(pods or ready, timeout=SLOW)
    expect(rail.page.locator("#endpoints")).to_have_attribute("data-ready", str(ready), timeout=SLOW)


def states(rail: Rail, lesson: str) -> dict[str, str]:
    """Each check of a lesson -> its data-state."""
    checks = rail.lesson(lesson).locator("[data-check]")
    return {
        checks.nth(i).get_attribute("data-check") or "": checks.nth(i).get_attribute("data-state") or ""
        for i in range(checks.count())
    }
