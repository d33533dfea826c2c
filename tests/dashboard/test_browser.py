"""The live page in real headless Chromium against `make demo`'s setup (sandbox + daphne).

One lab serves the module; the tests run in order and each leaves the Deployment at 3 ready
replicas. Screenshots go to test-artifacts/; with LBDEMO_UPDATE_SCREENSHOT=1 the full page at five ready
replicas also replaces docs/screenshot.png (the README's picture).
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from kubernetes import client, config
from playwright.sync_api import Browser, Locator, Page, expect, sync_playwright

from lab.launcher import Lab
from tests.conftest import CHROMIUM_ARGS, REPO, RunningLab, live_page, start_lab

pytestmark = [pytest.mark.browser, pytest.mark.sandbox]

OPERATOR_TOKEN = secrets.token_urlsafe(16)
SLOW = 45_000  # ms: generous, the machine is shared


@pytest.fixture(scope="module")
def browser(chromium_path: str) -> Iterator[Browser]:
    """Headless Debian Chromium for this module only.

    Playwright's sync API keeps an event loop running in the main thread while it is open;
    closing it when the module ends lets the asyncio tests that follow run (the session-wide
    ``browser`` fixture would stay open and break them).
    """
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=chromium_path, headless=True,
                                              args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningLab]:
    """A sandbox and the dashboard exactly as `make demo` starts them, plus an operator token."""
    running = start_lab(tmp_path_factory.mktemp("browser-lab") / "state",
                        extra_env={"LBDEMO_TOKEN": OPERATOR_TOKEN})
    yield running
    running.stop()


@pytest.fixture(scope="module")
def api(lab: RunningLab) -> Iterator[client.ApiClient]:
    """A direct API client to the lab's sandbox, to check what the page shows."""
    api = config.new_client_from_config(config_file=str(lab.sandbox.kubeconfig))
    yield api
    api.close()


@pytest.fixture
def page(browser: Browser, lab: RunningLab) -> Iterator[Page]:
    """A fresh logged-in page (operator token), showing the live cluster."""
    with live_page(browser, f"{lab.url}?token={OPERATOR_TOKEN}", viewport={"width": 1500, "height": 1000},
                   timeout_ms=SLOW) as page:
        yield page


def backend_cards(page: Page, selector: str = "") -> Locator:
    return page.locator(f"#nodes .pod-card{selector}")


def wait_for_ready_backend(page: Page, count: int) -> None:
    """Until the page shows ``count`` running, ready backend pods, all of them ready endpoints."""
    expect(backend_cards(page)).to_have_count(count, timeout=SLOW)
    ready = backend_cards(page, '[data-status="Running"][data-ready="true"]')
    expect(ready).to_have_count(count, timeout=SLOW)
    expect(page.locator("#endpoints")).to_have_attribute("data-ready", str(count), timeout=SLOW)


def shown_backend_pods(page: Page) -> set[str]:
    """Names of the backend pods the page shows, except those fading out."""
    cards = page.locator("#nodes .pod-card:not(.leaving)")
    return {cards.nth(i).get_attribute("data-pod") or "" for i in range(cards.count())}


def pod_names(api: client.ApiClient, selector: str = "app=backend") -> set[str]:
    pods = client.CoreV1Api(api).list_namespaced_pod("default", label_selector=selector).items
    return {p.metadata.name for p in pods if p.metadata.deletion_timestamp is None}


def test_one_time_token_logs_in_once(browser: Browser, lab: RunningLab, artifacts_dir: Path) -> None:
    first = browser.new_context(viewport={"width": 1500, "height": 1000})
    page = first.new_page()
    page.goto(lab.login_url)
    assert "token=" not in page.url
    wait_for_ready_backend(page, 3)
    expect(page.locator("#pods-other .pod-card[data-pod='frontend']")).to_have_count(1, timeout=SLOW)
    expect(page.locator("#service .cluster-ip")).not_to_have_text("—")
    page.screenshot(path=str(artifacts_dir / "dashboard-first-load.png"), full_page=True)
    first.close()
    second = browser.new_context()
    again = second.new_page()
    response = again.goto(lab.login_url)
    assert response is not None and response.status == 403
    second.close()


def test_page_shows_the_backend_pods_grouped_by_node(page: Page, api: client.ApiClient,
                                                      artifacts_dir: Path) -> None:
    wait_for_ready_backend(page, 3)
    assert shown_backend_pods(page) == pod_names(api)
    expect(page.locator("#deployment .desired dd")).to_have_text("3")
    expect(page.locator("#replicasets .replicaset.active")).to_have_count(1)
    # The Service card reads like `kubectl get svc`, the named targetPort resolved by the endpoints.
    expect(page.locator("#service .service-type")).to_have_text("NodePort")
    expect(page.locator("#service .kubectl-ports")).to_have_text("80:30080/TCP")
    expect(page.locator("#service .target-port")).to_have_text("http (8080)", timeout=SLOW)
    # Every endpoint address is one line: ip:port never wraps inside the port.
    addresses = page.locator("#endpoints .endpoint-column.ready li code")
    expect(addresses).to_have_count(3)
    for i in range(addresses.count()):
        box = addresses.nth(i).bounding_box()
        line = float(addresses.nth(i).evaluate("e => parseFloat(getComputedStyle(e).lineHeight)"))
        assert box is not None and box["height"] < 1.5 * line, "an endpoint address wrapped"
    page.screenshot(path=str(artifacts_dir / "dashboard-pods.png"), full_page=True)


def test_killing_a_pod_shows_terminating_then_a_ready_replacement(page: Page, api: client.ApiClient,
                                                                   artifacts_dir: Path) -> None:
    wait_for_ready_backend(page, 3)
    victim = backend_cards(page).first.get_attribute("data-pod") or ""
    backend_cards(page, f'[data-pod="{victim}"]').locator("button.kill").click()
    expect(page.locator(f'.pod-card[data-pod="{victim}"]')).to_have_attribute("data-status", "Terminating",
                                                                             timeout=SLOW)
    page.screenshot(path=str(artifacts_dir / "dashboard-kill-terminating.png"), full_page=True)
    expect(page.locator(f'.pod-card[data-pod="{victim}"]')).to_have_count(0, timeout=SLOW)
    wait_for_ready_backend(page, 3)
    expect(page.locator("#timeline .healing.complete").first).to_contain_text(victim, timeout=SLOW)
    assert victim not in pod_names(api)
    page.screenshot(path=str(artifacts_dir / "dashboard-kill-healed.png"), full_page=True)


def test_a_pod_found_by_the_filter_can_be_killed_from_its_result(page: Page, api: client.ApiClient) -> None:
    wait_for_ready_backend(page, 3)
    victim = backend_cards(page).last.get_attribute("data-pod") or ""
    page.locator("#pod-filter").fill(victim)
    row = page.locator(f'#pod-filter-results .find-result[data-pod="{victim}"]')
    expect(row).to_contain_text("Running", timeout=SLOW)
    expect(row.locator("button.readiness")).to_have_text("make unready")
    row.locator("button.kill").click()
    # The filter follows the frames: the row says Terminating (no more buttons), then the pod is gone.
    expect(row).to_have_attribute("data-status", "Terminating", timeout=SLOW)
    expect(row.locator("button.kill")).to_have_count(0)
    expect(page.locator(f'.pod-card[data-pod="{victim}"]')).to_have_count(0, timeout=SLOW)
    expect(row).to_have_count(0, timeout=SLOW)
    assert victim not in pod_names(api)
    page.locator("#pod-filter").fill("")
    wait_for_ready_backend(page, 3)


def test_slider_to_five_shows_five_ready_pods_and_endpoints(page: Page, artifacts_dir: Path) -> None:
    wait_for_ready_backend(page, 3)
    page.locator("#scale-slider").fill("5")
    expect(page.locator("#deployment .desired dd")).to_have_text("5", timeout=SLOW)
    wait_for_ready_backend(page, 5)
    page.screenshot(path=str(artifacts_dir / "dashboard-scaled-to-5.png"), full_page=True)
    if os.environ.get("LBDEMO_UPDATE_SCREENSHOT"):
        shutil.copyfile(artifacts_dir / "dashboard-scaled-to-5.png", REPO / "docs" / "screenshot.png")
    page.locator("#scale-slider").fill("3")
    expect(page.locator("#deployment .desired dd")).to_have_text("3", timeout=SLOW)
    wait_for_ready_backend(page, 3)


def test_readiness_off_leaves_the_endpoints_and_on_rejoins(page: Page, artifacts_dir: Path) -> None:
    wait_for_ready_backend(page, 3)
    name = backend_cards(page).first.get_attribute("data-pod") or ""
    card = page.locator(f'#nodes .pod-card[data-pod="{name}"]')
    card.locator("button.readiness").click()
    expect(card).to_have_attribute("data-endpoint", "not-ready", timeout=SLOW)
    expect(page.locator("#endpoints")).to_have_attribute("data-ready", "2", timeout=SLOW)
    expect(page.locator("#endpoints .endpoint-column.not-ready")).to_contain_text(name)
    page.screenshot(path=str(artifacts_dir / "dashboard-readiness-off.png"), full_page=True)
    card.locator("button.readiness").click()
    expect(card).to_have_attribute("data-endpoint", "ready", timeout=SLOW)
    wait_for_ready_backend(page, 3)


def test_page_left_open_through_a_sandbox_restart_recovers(page: Page, lab: RunningLab, api: client.ApiClient,
                                                           artifacts_dir: Path) -> None:
    wait_for_ready_backend(page, 3)
    port = int(yaml.safe_load(lab.sandbox.kubeconfig.read_text())["clusters"][0]["cluster"]["server"]
               .rsplit(":", 1)[1])
    lab.sandbox.lab.stop()
    # A stopped API server refuses connections: the status names it (not "silent", not "live").
    refused = re.compile("the watch is failing|the API server does not answer")
    expect(page.locator("#status")).to_contain_text(refused, timeout=SLOW)
    restarted = Lab()
    lab.sandbox.lab = restarted
    restarted.start_sandbox(state_dir=lab.sandbox.state_dir, api_port=port,
                            log_file=lab.sandbox.state_dir.parent / "sandbox-restarted.log")
    api.rest_client.pool_manager.clear()
    expect(page.locator("#status")).to_contain_text("live", timeout=SLOW)
    wait_for_ready_backend(page, 3)
    deadline = time.monotonic() + SLOW / 1000
    while shown_backend_pods(page) != pod_names(api):
        assert time.monotonic() < deadline, "the page never matched the cluster after the restart"
        time.sleep(0.2)
    page.screenshot(path=str(artifacts_dir / "dashboard-after-restart.png"), full_page=True)
