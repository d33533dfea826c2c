"""Lessons 11 and 12 end to end in headless Chromium on the sandbox: the Ingress balances each
request where the Service balances each connection, and the HPA follows CPU-heavy traffic."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.lessons.conftest import SLOW, Rail
from tests.lessons.test_buttons import finish

pytestmark = [pytest.mark.browser, pytest.mark.sandbox]

# The HPA scales down only after its 30 s window once the 60 s run has ended.
AUTOSCALING_SLOW = 4 * SLOW


def test_ingress_lesson(rail: Rail, artifacts_dir: Path) -> None:
    expect(rail.page.locator("#ingresses .ingress-address")).to_contain_text(":", timeout=SLOW)
    expect(rail.page.locator("#ingresses")).to_contain_text("backend-service:http")
    rail.start("ingress", 1)
    assert "dashboard.traffic http://" in rail.command("ingress", "via the Ingress")
    rail.press("ingress", "via the Service")
    assert "requests reached backend-" in rail.wait("ingress", "service-pinned")
    rail.press("ingress", "via the Ingress")
    assert "spread over 3 pods" in rail.wait("ingress", "ingress-spread")
    finish(rail, "ingress", artifacts_dir)


def test_autoscaling_lesson(rail: Rail, artifacts_dir: Path) -> None:
    rail.start("autoscaling", 1)
    rail.run(rail.command("autoscaling", "create the HPA"))
    expect(rail.page.locator("#hpas .hpa")).to_contain_text("Deployment/backend", timeout=SLOW)
    expect(rail.page.locator("#hpas .hpa-current")).to_contain_text("%", timeout=SLOW)
    rail.press("autoscaling", "CPU-heavy traffic")
    assert "above target" in rail.wait("autoscaling", "hpa-up")
    assert "new pod" in rail.wait("autoscaling", "new-pods-served")
    expect(rail.page.locator("#hpas .hpa-reason")).to_contain_text("New size:", timeout=SLOW)
    check = rail.check("autoscaling", "hpa-down")
    expect(check).to_have_attribute("data-state", "passed", timeout=AUTOSCALING_SLOW)
    assert "All metrics below target" in check.inner_text()
    rail.run(rail.command("autoscaling", "delete the HPA"))
    finish(rail, "autoscaling", artifacts_dir)
