"""The lessons driven from a terminal, and each check's negative: in real headless Chromium.

First, three lessons completed by running the commands the rail prints instead of pressing its
buttons: the lessons react the same, because they read the watch. Then, for every check, the
lesson is started and something *else* is done — a scale instead of a kill, a run without the
scale-up, a healthy rollout instead of a broken one — and once the page shows that it happened,
the check is still pending (or, where the run contradicted it, failed): a check passes only
when its behaviour was observed. The lab is the one test_buttons used (lb-demo:v3 is loaded
by now, so the image lesson's negative uses images the node has).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.lessons.conftest import SLOW, Rail, settle, states

pytestmark = [pytest.mark.browser, pytest.mark.sandbox]
KILL_ONE = "kubectl delete --wait=false $(kubectl get pods -l app=backend -o name | head -n 1)"


def test_disposable_by_kubectl(rail: Rail) -> None:
    rail.start("disposable", 1)
    rail.run(rail.command("disposable", "kill a pod"))
    assert "new IP" in rail.wait("disposable", "pod-replaced")
    rail.wait("disposable", "service-answered")
    expect(rail.lesson("disposable")).to_have_attribute("data-state", "done", timeout=SLOW)
    settle(rail, ready=3)


def test_replicaset_by_kubectl(rail: Rail) -> None:
    rail.start("replicaset", 2)
    rail.run(rail.command("replicaset", "scale to 5"))
    assert "3→5" in rail.wait("replicaset", "scale-up")
    rail.run(rail.command("replicaset", "scale to 3"))
    assert "5→3" in rail.wait("replicaset", "scale-down")
    settle(rail, ready=3)
    rail.run(rail.command("replicaset", "kill two pods"))
    rail.wait("replicaset", "two-killed")
    expect(rail.lesson("replicaset")).to_have_attribute("data-state", "done", timeout=SLOW)
    settle(rail, ready=3)


# --- negatives: the behaviour did not happen, the check stays pending ---------------------------
def test_a_scale_is_not_a_kill(rail: Rail) -> None:
    rail.start("disposable", 1)
    rail.run("kubectl scale deployment backend --replicas=4")
    settle(rail, ready=4)
    rail.run("kubectl scale deployment backend --replicas=3")
    settle(rail, ready=3)
    assert states(rail, "disposable") == {"pod-replaced": "pending", "service-answered": "pending"}


def test_one_kill_is_neither_a_scale_nor_two_kills_nor_a_relabel(rail: Rail) -> None:
    rail.start("replicaset", 2)
    rail.run(KILL_ONE)
    expect(rail.page.locator("#timeline .healing.complete").first).to_be_visible(timeout=SLOW)
    settle(rail, ready=3)
    assert states(rail, "replicaset") == {
        "scale-up": "pending",
        "scale-down": "pending",
        "two-killed": "pending",
    }
    rail.start("labels", 1)
    rail.run(KILL_ONE)
    settle(rail, ready=3)
    assert set(states(rail, "labels").values()) == {"pending"}


def test_a_scale_up_without_traffic_proves_nothing_about_traffic(rail: Rail) -> None:
    rail.start("readiness", 0)
    rail.run("kubectl scale deployment backend --replicas=4")
    settle(rail, ready=4)
    assert set(states(rail, "readiness").values()) == {"pending"}
    rail.start("scaling", 2)
    rail.run("kubectl scale deployment backend --replicas=5")
    settle(rail, ready=5)
    assert set(states(rail, "scaling").values()) == {"pending"}
    rail.run("kubectl scale deployment backend --replicas=3")
    settle(rail, ready=3)


def test_keepalive_checks_need_their_own_runs(rail: Rail) -> None:
    rail.start("keepalive", 1)
    rail.press("keepalive", "new-connection traffic")
    rail.stop_traffic_after(300)
    # A run of new connections contradicts the pinning: failed, not passed.
    assert "new connections" in rail.wait("keepalive", "keepalive-pinned", "failed")
    assert states(rail, "keepalive")["scaleup-keepalive"] == "pending"
    rail.start("keepalive", 1)
    rail.page.locator("#traffic-form input[value=keepalive]").check()
    rail.page.locator("#traffic-duration").fill("4")
    rail.page.locator("#traffic-start").click()
    rail.wait("keepalive", "keepalive-pinned")
    assert states(rail, "keepalive")["newconn-spread"] == "pending"
    assert states(rail, "keepalive")["scaleup-keepalive"] == "pending", "nothing joined during that run"


def test_apply_and_delete_are_told_apart(rail: Rail) -> None:
    rail.start("declarative", 1)
    rail.run(KILL_ONE)
    rail.wait("declarative", "delete-restored")
    settle(rail, ready=3)
    assert states(rail, "declarative")["applied"] == "pending", "a kill changes no desired state"
    rail.start("declarative", 1)
    rail.run("kubectl scale deployment backend --replicas=2")
    settle(rail, ready=2)
    assert states(rail, "declarative")["delete-restored"] == "pending", (
        "the ReplicaSet's own deletes are not a kill"
    )
    rail.run("kubectl scale deployment backend --replicas=3")
    settle(rail, ready=3)


def test_a_healthy_rollout_without_traffic(rail: Rail) -> None:
    rail.start("rolling", 2)
    rail.run("kubectl scale deployment backend --replicas=4")
    settle(rail, ready=4)
    assert set(states(rail, "rolling").values()) == {"pending"}, "a scale is not a rollout"
    rail.run("kubectl set image deployment/backend backend=lb-demo:v2")
    rail.wait("rolling", "two-replicasets")
    settle(rail, ready=4)
    assert states(rail, "rolling")["zero-failed"] == "pending", "no run covered the rollout"
    assert states(rail, "rolling")["both-versions"] == "pending"
    rail.start("image", 0)
    # Back to v1 as the lesson's own button does: `lb-demo`, the image the node was given (the
    # catalogue's `lb-demo:v1` tag is not on the node until loaded: it would fail to pull).
    rail.run("kubectl set image deployment/backend backend=lb-demo")
    expect(rail.page.locator("#replicasets .replicaset.active")).to_have_count(1, timeout=SLOW)
    expect(rail.page.locator("#deployment .meta")).not_to_contain_text("lb-demo:v2", timeout=SLOW)
    settle(rail, ready=4)
    assert set(states(rail, "image").values()) == {"pending"}, "v1 is on the node: nothing failed to pull"
    rail.reset()


def test_a_working_rollout_is_not_a_broken_one(rail: Rail) -> None:
    rail.start("debugging", 0)
    rail.run("kubectl set image deployment/backend backend=lb-demo:v2")
    expect(rail.page.locator("#deployment .meta")).to_contain_text("lb-demo:v2", timeout=SLOW)
    expect(rail.page.locator("#replicasets .replicaset.active")).to_have_count(1, timeout=SLOW)
    settle(rail, ready=3)
    assert set(states(rail, "debugging").values()) == {"pending"}
    rail.reset()


def test_declarative_by_kubectl_apply(rail: Rail, tmp_path: Path) -> None:
    """The learner saves the desired state shown, edits replicas, and runs the printed apply."""
    rail.start("declarative", 1)
    text = rail.lesson("declarative").locator("textarea.lesson-yaml").input_value()
    (tmp_path / "backend.yaml").write_text(text.replace("replicas: 3", "replicas: 4", 1))
    command = rail.command("declarative", "apply")
    assert command == "kubectl apply -f backend.yaml"
    rail.run(command, cwd=tmp_path)
    assert "3→4" in rail.wait("declarative", "applied")
    settle(rail, ready=4)
    rail.run(rail.command("declarative", "delete a pod"))
    rail.wait("declarative", "delete-restored")
    expect(rail.lesson("declarative")).to_have_attribute("data-state", "done", timeout=SLOW)
    rail.reset()
