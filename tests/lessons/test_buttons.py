"""Every lesson completed end to end by its buttons, in real headless Chromium on the sandbox.

One lab serves the lessons' browser modules (see conftest.py); each test starts its lesson,
answers the question, presses the buttons a learner would, waits for every check to pass with
its measured figure, and resets the sample app for the next one. Screenshots land in
test-artifacts/; with LBDEMO_UPDATE_SCREENSHOT=1 the rolling-update lesson in progress also
replaces docs/lessons.png (the README's picture).
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.conftest import REPO
from tests.lessons.conftest import SLOW, Rail

pytestmark = [pytest.mark.browser, pytest.mark.sandbox]

SECONDS = re.compile(r"\d+\.\d s")


def ready_backend(rail: Rail, count: int) -> None:
    """Until the page shows ``count`` ready backend endpoints."""
    expect(rail.page.locator("#endpoints")).to_have_attribute("data-ready", str(count), timeout=SLOW)


def finish(rail: Rail, lesson: str, artifacts_dir: Path) -> None:
    """The lesson is done: the takeaway shows, the prediction is judged, the rail counts it."""
    expect(rail.lesson(lesson)).to_have_attribute("data-state", "done", timeout=SLOW)
    expect(rail.lesson(lesson).locator(".lesson-takeaway")).to_be_visible()
    expect(rail.lesson(lesson).locator(".agreement.agreed")).to_be_visible()
    rail.page.screenshot(path=str(artifacts_dir / f"lessons-{lesson}-done.png"), full_page=True)
    rail.reset()


def test_disposable(rail: Rail, artifacts_dir: Path) -> None:
    rail.start("disposable", 1)
    rail.press("disposable", "kill a pod")
    figure = rail.wait("disposable", "pod-replaced")
    assert "Ready" in figure and SECONDS.search(figure) and "new IP" in figure
    assert "ready endpoint" in rail.wait("disposable", "service-answered")
    assert rail.page.locator("#command-log > li").last.inner_text().startswith("kubectl delete pod")
    finish(rail, "disposable", artifacts_dir)


def test_replicaset(rail: Rail, artifacts_dir: Path) -> None:
    rail.start("replicaset", 2)
    rail.press("replicaset", "scale to 5")
    assert "3→5" in rail.wait("replicaset", "scale-up")
    rail.press("replicaset", "scale to 3")
    assert "5→3" in rail.wait("replicaset", "scale-down")
    ready_backend(rail, 3)
    rail.press("replicaset", "kill two pods")
    assert "did not change" in rail.wait("replicaset", "two-killed")
    finish(rail, "replicaset", artifacts_dir)


def test_labels(rail: Rail, artifacts_dir: Path) -> None:
    rail.start("labels", 1)
    rail.press("labels", "traffic")
    assert "0 of" in rail.wait("labels", "frontend-no-traffic")
    rail.press("labels", "relabel a pod")
    assert "left the endpoints" in rail.wait("labels", "relabel-left")
    assert "released" in rail.wait("labels", "relabel-replaced")
    assert "still Running" in rail.wait("labels", "orphan-runs")
    expect(rail.page.locator('#pods-other .pod-card:has-text("backend")')).to_have_count(1, timeout=SLOW)
    finish(rail, "labels", artifacts_dir)
    # The reset removed the orphan.
    expect(rail.page.locator('#pods-other .pod-card:has-text("backend")')).to_have_count(0, timeout=SLOW)


def test_readiness(rail: Rail, artifacts_dir: Path) -> None:
    rail.start("readiness", 0)
    rail.press("readiness", "traffic")
    rail.press("readiness", "scale to 4")
    ready_backend(rail, 4)
    rail.stop_traffic_after(200)
    assert "got 0 of the" in rail.wait("readiness", "starting-no-traffic")
    rail.press("readiness", "make a pod unready")
    assert "left the ready endpoints" in rail.wait("readiness", "unready-left")
    rail.press("readiness", "make it ready again")
    assert "rejoined" in rail.wait("readiness", "rejoined")
    finish(rail, "readiness", artifacts_dir)


def test_keepalive(rail: Rail, artifacts_dir: Path) -> None:
    rail.start("keepalive", 1)
    rail.press("keepalive", "keep-alive traffic")
    rail.press("keepalive", "scale to 5")
    ready_backend(rail, 5)
    rail.stop_traffic_after(300)
    assert "got 0 of" in rail.wait("keepalive", "scaleup-keepalive")
    assert "connections carried" in rail.wait("keepalive", "keepalive-pinned")
    rail.press("keepalive", "new-connection traffic")
    assert "spread over 5 pods" in rail.wait("keepalive", "newconn-spread")
    finish(rail, "keepalive", artifacts_dir)


def test_scaling(rail: Rail, artifacts_dir: Path) -> None:
    rail.start("scaling", 2)
    rail.press("scaling", "scale to 1")
    ready_backend(rail, 1)
    expect(rail.page.locator("#nodes .pod-card")).to_have_count(1, timeout=SLOW)
    rail.press("scaling", "traffic")
    rail.press("scaling", "scale to 5")
    ready_backend(rail, 5)
    rail.stop_traffic_after(100)
    assert "0 failed" in rail.wait("scaling", "scaled-under-traffic")
    assert "only the count moved" in rail.wait("scaling", "nothing-else")
    finish(rail, "scaling", artifacts_dir)


def test_declarative(rail: Rail, artifacts_dir: Path) -> None:
    rail.start("declarative", 1)
    editor = rail.lesson("declarative").locator("textarea.lesson-yaml")
    text = editor.input_value()
    assert "kind: Deployment" in text and "replicas: 3" in text
    editor.fill(text.replace("replicas: 3", "replicas: 4", 1))
    rail.press("declarative", "apply")
    assert "3→4" in rail.wait("declarative", "applied")
    assert rail.page.locator("#command-log > li").last.inner_text().startswith("kubectl apply -f - <<'EOF'")
    ready_backend(rail, 4)
    rail.press("declarative", "delete a pod")
    assert "did not scale" in rail.wait("declarative", "delete-restored")
    finish(rail, "declarative", artifacts_dir)


def test_debugging(rail: Rail, artifacts_dir: Path) -> None:
    rail.start("debugging", 0)
    rail.press("debugging", "break the rollout")
    assert "Readiness probe failed" in rail.wait("debugging", "probe-event")
    assert "notReadyAddresses" in rail.wait("debugging", "not-ready-endpoint")
    rail.page.screenshot(path=str(artifacts_dir / "lessons-debugging-stuck.png"), full_page=True)
    rail.press("debugging", "undo the rollout")
    assert "rolled back" in rail.wait("debugging", "rolled-back")
    finish(rail, "debugging", artifacts_dir)


def test_rolling(rail: Rail, artifacts_dir: Path) -> None:
    rail.start("rolling", 2)
    rail.press("rolling", "traffic")
    rail.press("rolling", "set image lb-demo:v2")
    assert "→0 while" in rail.wait("rolling", "two-replicasets")
    # The README's picture: the top of the page, the lesson in view in the rail beside it.
    rail.page.evaluate("window.scrollTo(0, 0)")
    rail.lesson("rolling").evaluate("e => e.scrollIntoView({block: 'start'})")
    rail.page.evaluate("window.scrollTo(0, 0)")
    rail.page.screenshot(path=str(artifacts_dir / "lessons-rolling-in-progress.png"))
    if os.environ.get("LBDEMO_UPDATE_SCREENSHOT"):
        shutil.copyfile(artifacts_dir / "lessons-rolling-in-progress.png", REPO / "docs" / "lessons.png")
    rail.stop_traffic_after(100)
    assert "0 of" in rail.wait("rolling", "zero-failed")
    assert "then" in rail.wait("rolling", "both-versions")
    finish(rail, "rolling", artifacts_dir)


def test_image(rail: Rail, artifacts_dir: Path) -> None:
    """Last: once loaded, lb-demo:v3 stays on the node (as with minikube)."""
    rail.start("image", 0)
    rail.press("image", "set image lb-demo:v3")
    assert "ImagePullBackOff" in rail.wait("image", "pull-failed") or "ErrImagePull" in rail.wait(
        "image", "pull-failed"
    )
    assert "kept" in rail.wait("image", "old-serving")
    # The button runs the command printed beside it: the sandbox's documented image load.
    assert "-m sandbox image load lb-demo:v3 --state-dir" in rail.command("image", "load lb-demo:v3")
    rail.press("image", "load lb-demo:v3")
    assert "Ready" in rail.wait("image", "loaded-started")
    finish(rail, "image", artifacts_dir)
