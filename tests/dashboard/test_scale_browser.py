"""10,000 pods in headless Chromium: the page loads, resyncs, follows one pod, finds one, expands a group.

One real daphne (started like `make demo` starts it) watches the in-memory fake API
(tests/dashboard/fakeapi.py) holding 9,000 backend pods on two nodes and 1,000 ``app=crowd``
pods on a simulated node, built once for the module. What is asserted is what a learner sees:
the groups' counts, the first cards, "k more", the filter's answer, the simulated badges.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright

from dashboard import podgroups
from tests.conftest import CHROMIUM_ARGS
from tests.dashboard.canned import pod
from tests.dashboard.socketlab import SocketLab, node_obj

pytestmark = [pytest.mark.browser, pytest.mark.timeout(600)]

SLOW = 90_000  # ms: the machine is shared
BACKEND = 9000
CROWD = 1000
SIM_NODE = "sandbox-sim-1"
# Test hook: keep the page's cluster socket so a test can ask for a resync like topology.js does.
KEEP_SOCKET = """document.addEventListener("htmx:wsOpen", (e) => {
  if (e.target && e.target.id === "live") window.__lbSocket = e.detail.socketWrapper;
});"""


def created(i: int) -> str:
    """Creation stamps one second apart, backend-00000 the oldest."""
    return f"2026-11-24T{18 + i // 3600:02d}:{i // 60 % 60:02d}:{i % 60:02d}Z"


def backend(i: int, rv: str = "1", **kwargs: object) -> dict:
    return pod(f"backend-{i:05d}", rv, node=f"node-{1 + i % 2}", created=created(i), **kwargs)  # type: ignore[arg-type]


def endpoint_slice() -> dict:
    """backend-service's slice: two endpoints, one of them a pod on the simulated node."""
    return {"kind": "EndpointSlice", "apiVersion": "discovery.k8s.io/v1",
            "metadata": {"name": "backend-service-abc",
                         "labels": {"kubernetes.io/service-name": "backend-service"}},
            "addressType": "IPv4", "ports": [{"port": 8080}],
            "endpoints": [{"addresses": ["127.244.0.10"], "conditions": {"ready": True}, "nodeName": "node-1",
                           "targetRef": {"kind": "Pod", "name": "backend-00000"}},
                          {"addresses": ["127.1.1.2"], "conditions": {"ready": True}, "nodeName": SIM_NODE,
                           "targetRef": {"kind": "Pod", "name": "crowd-00000"}}]}


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SocketLab]:
    # The serving-gate defaulter writes pods; the fake API refuses writes, so it would relist
    # 10,000 pods again and again: it is not what this module tests.
    running = SocketLab(tmp_path_factory.mktemp("scale-browser"), env={"LBDEMO_SERVING_GATE_DEFAULTS": "0"})
    simulated = node_obj(SIM_NODE)
    simulated["metadata"]["labels"] = {podgroups.SIMULATED_LABEL: "true"}
    running.api.put_many("Node", [node_obj("node-1"), node_obj("node-2"), simulated])
    running.api.put("Service", {"kind": "Service", "apiVersion": "v1",
                                "metadata": {"name": "backend-service"},
                                "spec": {"selector": {"app": "backend"}, "type": "ClusterIP",
                                         "ports": [{"port": 80, "targetPort": 8080}]}})
    running.api.put("EndpointSlice", endpoint_slice())
    running.api.put_many("Pod", [backend(i) for i in range(BACKEND)]
                         + [pod(f"crowd-{i:05d}", "1", labels={"app": "crowd"}, node=SIM_NODE, owner="",
                                created=created(i)) for i in range(CROWD)])
    yield running
    running.stop()


@pytest.fixture(scope="module")
def browser(chromium_path: str) -> Iterator[Browser]:
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=chromium_path, headless=True,
                                              args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Browser, lab: SocketLab) -> Iterator[Page]:
    context: BrowserContext = browser.new_context(viewport={"width": 1500, "height": 1000})
    context.add_init_script(KEEP_SOCKET)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(f"{lab.url}/?token={lab.token}")
    expect(page.locator("#status .status-text")).to_have_text("live", timeout=SLOW)
    page.wait_for_function("() => Boolean(window.__lbSocket)", timeout=SLOW)  # the page's socket is open
    yield page
    context.close()
    assert not errors, errors


def group(page: Page, title: str, *, within: str = "#nodes") -> tuple[str, ...]:
    """The texts of the group heads called ``title``."""
    return tuple(page.locator(f"{within} .group-head", has_text=title).all_inner_texts())


def test_a_10000_pod_namespace_loads_grouped_with_counts(page: Page, artifacts_dir: Path) -> None:
    expect(page.locator("#status")).to_contain_text(f"{BACKEND + CROWD} pods")
    heads = page.locator("#nodes .group-head")
    expect(heads).to_have_count(2)
    for i in range(2):
        expect(heads.nth(i)).to_contain_text("ReplicaSet backend-abc")
        expect(heads.nth(i)).to_contain_text(f"{BACKEND // 2} pods")
        expect(heads.nth(i).locator(".more-button")).to_have_text(f"{BACKEND // 2 - podgroups.WINDOW} more")
    # Each group shows its oldest pods as cards; the page holds those, not 10,000.
    expect(page.locator("#nodes .pod-card")).to_have_count(2 * podgroups.WINDOW)
    expect(page.locator('#nodes .pod-card[data-pod="backend-00000"]')).to_have_count(1)
    # Outside the selector: one summary per app label, with its count.
    crowd = page.locator("#other-pods .group-head", has_text="app=crowd")
    expect(crowd).to_contain_text(f"{CROWD} pods")
    expect(crowd.locator(".more-button")).to_have_text(f"{CROWD - podgroups.OTHER_WINDOW} more")
    expect(page.locator("#other-pods .pod-card")).to_have_count(podgroups.OTHER_WINDOW)
    # Simulated: the node's heading, the crowd's summary and the traffic panel say so.
    sim_head = page.locator(f'#nodes .node[data-node="{SIM_NODE}"] .node-head')
    expect(sim_head).to_contain_text("serves no traffic")
    expect(crowd).to_contain_text(f"{CROWD} on simulated nodes")
    expect(page.locator("#simulated-endpoints")).to_contain_text(
        "backend-service: 1 of its 2 endpoints are pods on simulated nodes")
    elements = page.evaluate("document.getElementsByTagName('*').length")
    assert elements < 30_000, elements
    page.screenshot(path=str(artifacts_dir / "dashboard-10000-pods.png"), full_page=True)


def test_a_forced_resync_completes_and_says_live(page: Page) -> None:
    page.evaluate("document.getElementById('nodes').dataset.before = 'resync'")
    page.evaluate("window.__lbSocket.send(JSON.stringify({type: 'resync'}))")
    # The snapshot replaces the pod sections (the marker goes) and ends on "live".
    expect(page.locator("#nodes[data-before]")).to_have_count(0, timeout=SLOW)
    expect(page.locator("#status .status-text")).to_have_text("live", timeout=SLOW)
    expect(page.locator("#nodes .group-head")).to_have_count(2)
    expect(page.locator("#nodes .pod-card")).to_have_count(2 * podgroups.WINDOW)


def test_a_change_to_one_pod_reaches_the_page(page: Page, lab: SocketLab) -> None:
    card = page.locator('#nodes .pod-card[data-pod="backend-00002"]')
    expect(card).to_have_attribute("data-status", "Running")
    lab.api.put("Pod", backend(2, "50", phase="Pending", ready=False, waiting="ContainerCreating"))
    expect(card).to_have_attribute("data-status", "ContainerCreating", timeout=SLOW)
    # A pod beyond the window that starts failing comes first in its group's window (and the
    # group's counts say so); healed, it goes back beyond the window.
    lab.api.put("Pod", backend(4001, "51", ready=False, waiting="CrashLoopBackOff", phase="Running"))
    failing = page.locator("#nodes .group-head", has_text="1 failing")
    expect(failing).to_have_count(1, timeout=SLOW)
    crashing = page.locator('#nodes .pods:not(.extra) .pod-card[data-pod="backend-04001"]')
    expect(crashing).to_have_attribute("data-status", "CrashLoopBackOff", timeout=SLOW)
    expect(page.locator("#nodes .pods:not(.extra) .pod-card")).to_have_count(2 * podgroups.WINDOW)
    lab.api.put_many("Pod", [backend(2, "52"), backend(4001, "53")])
    expect(card).to_have_attribute("data-status", "Running", timeout=SLOW)
    expect(failing).to_have_count(0, timeout=SLOW)
    expect(crashing).to_have_count(0, timeout=SLOW)


def test_the_filter_finds_one_pod_among_10000_and_follows_it(page: Page, lab: SocketLab) -> None:
    box = page.locator("#pod-filter")
    box.fill("backend-04321")
    results = page.locator("#pod-filter-results")
    expect(results.locator(".find-summary")).to_contain_text(f"1 of {BACKEND + CROWD} pods match",
                                                             timeout=SLOW)
    row = results.locator('.find-result[data-pod="backend-04321"]')
    expect(row).to_contain_text("Running")
    expect(row).to_contain_text("on node-2")
    # The filter keeps working while pods change: a label filter finds the pod once relabelled.
    box.fill("app=backend,tier=special")
    expect(results.locator(".find-summary")).to_contain_text("0 of", timeout=SLOW)
    lab.api.put("Pod", backend(4321, "60", labels={"app": "backend", "tier": "special"}))
    expect(results.locator('.find-result[data-pod="backend-04321"]')).to_contain_text("tier=special",
                                                                                     timeout=SLOW)
    box.fill("name~crowd-0099")
    expect(results.locator(".find-summary")).to_contain_text("10 of", timeout=SLOW)
    expect(results.locator(".find-result").first).to_contain_text("outside the selector")
    box.fill("app in (backend")
    expect(results.locator(".find-error")).to_contain_text("unclosed '('", timeout=SLOW)
    lab.api.put("Pod", backend(4321, "61"))


def test_a_collapsed_group_expands_and_stays_in_sync(page: Page, lab: SocketLab) -> None:
    head = page.locator("#nodes .group-head").first
    gid = head.get_attribute("id")[len("gh-"):]  # type: ignore[index]
    extra = page.locator(f"#extra-{gid}")
    expect(extra.locator(".pod-card")).to_have_count(0)
    head.locator(".more-button").click()
    expect(extra.locator(".pod-card")).to_have_count(podgroups.MORE_STEP, timeout=SLOW)
    expect(extra.locator(".more-foot")).to_contain_text(
        f"showing {podgroups.MORE_STEP} of {BACKEND // 2 - podgroups.WINDOW} more")
    extra.locator(".more-foot .more-button").click()
    expect(extra.locator(".pod-card")).to_have_count(2 * podgroups.MORE_STEP, timeout=SLOW)
    # An expanded card is kept current by the frames like a shown one.
    name = extra.locator(".pod-card").nth(10).get_attribute("data-pod") or ""
    index = int(name.rsplit("-", 1)[1])
    lab.api.put("Pod", backend(index, "70", labels={"app": "backend", "note": "changed"}))
    expect(extra.locator(f'.pod-card[data-pod="{name}"]')).to_contain_text("note=changed", timeout=SLOW)
    # Counts follow new and deleted pods (the first group is node-1's: even indexes).
    lab.api.put("Pod", backend(2 * BACKEND, "71"))
    expect(head.locator(".group-count")).to_have_text(f"{BACKEND // 2 + 1} pods", timeout=SLOW)
    lab.api.delete("Pod", f"backend-{2 * BACKEND:05d}")
    expect(head.locator(".group-count")).to_have_text(f"{BACKEND // 2} pods", timeout=SLOW)
    lab.api.put("Pod", backend(index, "72"))
    extra.locator(".fewer-button").click()
    expect(extra.locator(".pod-card")).to_have_count(0)


def test_a_resync_keeps_what_the_user_expanded(page: Page) -> None:
    head = page.locator("#nodes .group-head").nth(1)
    gid = head.get_attribute("id")[len("gh-"):]  # type: ignore[index]
    extra = page.locator(f"#extra-{gid}")
    head.locator(".more-button").click()
    expect(extra.locator(".pod-card")).to_have_count(podgroups.MORE_STEP, timeout=SLOW)
    page.evaluate("document.getElementById('nodes').dataset.before = 'resync'")
    page.evaluate("window.__lbSocket.send(JSON.stringify({type: 'resync'}))")
    # The snapshot rebuilds the pod sections folded; the page unfolds the group again.
    expect(page.locator("#nodes[data-before]")).to_have_count(0, timeout=SLOW)
    expect(page.locator("#status .status-text")).to_have_text("live", timeout=SLOW)
    expect(extra.locator(".pod-card")).to_have_count(podgroups.MORE_STEP, timeout=SLOW)
    expect(extra.locator(".more-foot")).to_contain_text(f"showing {podgroups.MORE_STEP} of")
    extra.locator(".fewer-button").click()
    expect(extra.locator(".pod-card")).to_have_count(0)
