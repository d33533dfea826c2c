"""The live topology (issue 12) in real headless Chromium against `make demo`'s setup.

One lab serves the module; each test leaves the Deployment at 3 ready replicas. The tests act
like a learner (the pod card's kill and readiness buttons, the traffic panel's form) or like
kubectl (real kubectl for a rollout and a relabel) and assert what the topology draws: its
nodes ``[data-kind][data-name]`` and edges ``[data-from][data-to][data-state]``. Screenshots go
to test-artifacts/topology-*.png.
"""

from __future__ import annotations

import functools
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from tests import polling
from tests.conftest import (
    REPO,
    RunningLab,
    Sandbox,
    create_sample_namespace,
    delete_namespace,
    live_page,
    start_lab,
)

pytestmark = [pytest.mark.browser, pytest.mark.sandbox]

SLOW = 60_000  # ms: the machine is shared
SERVICE = "Service/backend-service"
wait_for = functools.partial(polling.wait_until, timeout=SLOW / 1000, interval=0.2)


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory, sandbox: Sandbox) -> Iterator[RunningLab]:
    """The dashboard as `make demo` starts it, logged in by an operator token, on a fresh sample
    namespace of the shared sandbox (the module changes the app, never the cluster)."""
    namespace = create_sample_namespace(sandbox)
    running = start_lab(
        tmp_path_factory.mktemp("topology-lab") / "state", extra_env={"LBDEMO_TOKEN": "topo-op"},
        sandbox=sandbox, namespace=namespace,
    )
    yield running
    running.stop()
    delete_namespace(sandbox, namespace)


@pytest.fixture
def page(browser: Browser, lab: RunningLab) -> Iterator[Page]:
    """A fresh logged-in page showing 3 ready backend pods in the topology."""
    with live_page(browser, f"{lab.url}?token=topo-op", viewport={"width": 1500, "height": 1100},
                   timeout_ms=SLOW) as page:
        wait_for(lambda: len(ready_edges(page)) == 3, what="3 ready Service → pod edges")
        yield page


def kubectl(lab: RunningLab, *args: str, stdin: str | None = None) -> str:
    return lab.sandbox.kubectl("--namespace", lab.namespace, *args, stdin=stdin, timeout=120)


def drawn(page: Page) -> dict[str, Any]:
    """What the topology shows: pods (not fading out), ReplicaSets and edges."""
    return page.evaluate("""() => {
        const root = document.getElementById('topology');
        const pods = {};
        root.querySelectorAll('[data-kind=Pod]:not(.leaving)').forEach((e) => {
            const box = e.getBoundingClientRect();
            pods[e.dataset.name] = {status: e.dataset.status, ready: e.dataset.ready, zone: e.dataset.zone,
                                    selected: e.dataset.selected, x: box.x, y: box.y};
        });
        const rs = Array.from(root.querySelectorAll('[data-kind=ReplicaSet]:not(.leaving)'))
            .map((e) => e.dataset.name);
        const edges = Array.from(root.querySelectorAll('.topo-edge')).map((e) => ({
            from: e.dataset.from, to: e.dataset.to, state: e.dataset.state}));
        const outside = root.querySelector('.topo-box.outside');
        const o = outside ? outside.getBoundingClientRect() : null;
        return {pods, rs, edges, outside: o && {x: o.x, y: o.y, right: o.right, bottom: o.bottom}};
    }""")


def service_edges(page: Page) -> dict[str, str]:
    """Pod name -> state of its Service → pod edge."""
    return {
        e["to"].split("/", 1)[1]: e["state"]
        for e in drawn(page)["edges"]
        if e["from"] == SERVICE and e["state"] in {"ready", "not-ready", "terminating"}
    }


def ready_edges(page: Page) -> set[str]:
    return {pod for pod, state in service_edges(page).items() if state == "ready"}


def shot(page: Page, artifacts_dir: Path, name: str) -> None:
    page.locator("#topology-panel").screenshot(path=str(artifacts_dir / f"topology-{name}.png"))


def test_the_chain_is_drawn_with_the_stray_pod_outside(page: Page, artifacts_dir: Path) -> None:
    state = drawn(page)
    assert page.locator("#topology [data-kind=Deployment][data-name=backend]").count() == 1
    assert len(state["rs"]) == 1
    backend = {name for name, pod in state["pods"].items() if pod["selected"] == "true"}
    assert len(backend) == 3 and ready_edges(page) == backend
    assert all(state["pods"][name]["zone"] == "selected" for name in backend)
    assert state["pods"]["frontend"]["zone"] == "outside"
    assert "frontend" not in service_edges(page)
    owns = {(e["from"], e["to"]) for e in state["edges"] if e["state"] == "owns"}
    assert {(f"ReplicaSet/{state['rs'][0]}", f"Pod/{name}") for name in backend} <= owns
    shot(page, artifacts_dir, "1-three-pods")


def test_kill_the_edge_goes_and_a_new_pod_with_its_edge_appears(page: Page, artifacts_dir: Path) -> None:
    before = ready_edges(page)
    victim = sorted(before)[0]
    page.locator(f'#nodes .pod-card[data-pod="{victim}"] button.kill').click()
    wait_for(lambda: service_edges(page).get(victim) != "ready", what=f"{victim}'s edge to stop being ready")
    shot(page, artifacts_dir, "2-killed")
    wait_for(lambda: victim not in drawn(page)["pods"], what=f"{victim} to leave the drawing")
    assert victim not in service_edges(page)
    fresh = wait_for(
        lambda: (new := ready_edges(page) - before) and new, what="a replacement with a ready edge"
    )
    assert len(ready_edges(page)) == 3
    replacement = next(iter(fresh))
    assert drawn(page)["pods"][replacement]["ready"] == "true"
    shot(page, artifacts_dir, "3-healed")


def test_readiness_off_turns_the_edge_dashed(page: Page, artifacts_dir: Path) -> None:
    name = sorted(ready_edges(page))[0]
    card = page.locator(f'#nodes .pod-card[data-pod="{name}"]')
    card.locator("button.readiness").click()
    wait_for(lambda: service_edges(page).get(name) == "not-ready", what=f"{name}'s edge to turn not-ready")
    edge = page.locator(f'#topology .topo-edge[data-from="{SERVICE}"][data-to="Pod/{name}"]')
    assert edge.evaluate("e => getComputedStyle(e).strokeDasharray") not in ("none", "")
    assert drawn(page)["pods"][name]["ready"] == "false"
    shot(page, artifacts_dir, "4-not-ready")
    expect(card.locator("button.readiness")).to_have_text("make ready", timeout=SLOW)
    card.locator("button.readiness").click()
    wait_for(lambda: service_edges(page).get(name) == "ready", what=f"{name}'s edge to be ready again")


def test_a_rollout_shows_two_replicasets_then_one(page: Page, lab: RunningLab, artifacts_dir: Path) -> None:
    first = drawn(page)["rs"]
    assert len(first) == 1
    kubectl(lab, "set", "image", "deployment/backend", "backend=lb-demo:v2")
    wait_for(lambda: len(drawn(page)["rs"]) == 2, what="old and new ReplicaSets during the rollout")
    revisions = page.locator("#topology [data-kind=ReplicaSet]").evaluate_all(
        "es => es.map((e) => e.dataset.revision)"
    )
    assert sorted(revisions) == ["1", "2"]
    shot(page, artifacts_dir, "5-rollout")
    wait_for(
        lambda: (rs := drawn(page)["rs"]) and len(rs) == 1 and rs != first, what="only the new ReplicaSet"
    )
    kubectl(lab, "rollout", "status", "deployment/backend", "--timeout=120s")
    wait_for(lambda: len(ready_edges(page)) == 3, what="3 ready pods of the new revision")


def start_run(
    page: Page, *, mode: str, conns: int, rps: int, duration: int, target: str = "backend-service:80"
) -> None:
    """Start a traffic run from the traffic panel, as a learner would."""
    option = f"#traffic-target option[value='{target}']"
    page.wait_for_selector(option, state="attached", timeout=SLOW)
    page.select_option("#traffic-target", target)
    page.check(f"input[name=mode][value={mode}]")
    page.fill("#traffic-conns", str(conns))
    page.fill("#traffic-rps", str(rps))
    page.fill("#traffic-duration", str(duration))
    page.click("#traffic-start")


def stop_run(page: Page) -> None:
    page.click("#traffic-stop")
    wait_for(
        lambda: (
            page.locator("#topology [data-kind=Client]").count() == 0
            and not [e for e in drawn(page)["edges"] if e["state"] in {"connection", "flow"}]
        ),
        what="the client and its edges to go when the run stops",
    )


def readme_shot(page: Page, artifacts_dir: Path, name: str) -> None:
    """A test artifact; with LBDEMO_UPDATE_SCREENSHOT=1 also the README's picture docs/<name>.png."""
    shot(page, artifacts_dir, name)
    if os.environ.get("LBDEMO_UPDATE_SCREENSHOT"):
        shutil.copyfile(artifacts_dir / f"topology-{name}.png", REPO / "docs" / f"{name}.png")


def test_keepalive_run_draws_one_edge_per_connection(page: Page, artifacts_dir: Path) -> None:
    start_run(page, mode="keepalive", conns=2, rps=40, duration=30)

    def connections() -> list[dict[str, str]]:
        return [e for e in drawn(page)["edges"] if e["state"] == "connection"]

    edges = wait_for(lambda: len(c := connections()) == 2 and c, what="2 connection edges")
    assert {e["from"] for e in edges} == {"Client/client"}
    pods = {e["to"] for e in edges}
    assert 1 <= len(pods) <= 2 and pods <= {f"Pod/{name}" for name in ready_edges(page)}
    assert page.locator("#topology [data-kind=Client][data-name=client]").count() == 1
    assert not [e for e in drawn(page)["edges"] if e["state"] == "flow"]
    page.wait_for_timeout(1500)  # the connections keep their pods: nothing moves
    assert {e["to"] for e in connections()} == pods
    readme_shot(page, artifacts_dir, "topology-keepalive")
    stop_run(page)


def test_new_connection_run_draws_request_flows_with_rates(page: Page, artifacts_dir: Path) -> None:
    start_run(page, mode="new-conn", conns=4, rps=90, duration=30)
    backend = ready_edges(page)

    def flows() -> set[str]:
        return {
            e["to"].split("/", 1)[1]
            for e in drawn(page)["edges"]
            if e["state"] == "flow" and e["from"] == SERVICE
        }

    wait_for(lambda: set(flows()) == backend, what="a request flow to every ready pod")
    rates = page.locator(f'#topology .topo-edge[data-state=flow][data-from="{SERVICE}"]').evaluate_all(
        "es => es.map((e) => Number(e.dataset.rate))"
    )
    assert len(rates) == 3 and all(rate > 0 for rate in rates)
    labels = page.locator("#topology .edge-label.rate").all_text_contents()
    assert len(labels) == 3 and all(label.endswith(" req/s") for label in labels)
    assert page.locator('#topology .topo-edge[data-state=flow][data-from="Client/client"]').count() == 1
    assert not [e for e in drawn(page)["edges"] if e["state"] == "connection"]
    page.wait_for_timeout(2500)  # a full second of rates behind every label
    readme_shot(page, artifacts_dir, "topology-new-connection")
    stop_run(page)


def test_a_relabelled_pod_is_drawn_outside_the_selection(
    page: Page, lab: RunningLab, artifacts_dir: Path
) -> None:
    name = sorted(ready_edges(page))[0]
    kubectl(lab, "label", "pod", name, "app=debug", "--overwrite")

    def outside() -> bool:
        state = drawn(page)
        pod, box = state["pods"].get(name), state["outside"]
        return bool(
            pod
            and pod["zone"] == "outside"
            and pod["selected"] == "false"
            and box
            and box["x"] <= pod["x"] <= box["right"]
            and box["y"] <= pod["y"] <= box["bottom"]
        )

    wait_for(outside, what=f"{name} drawn in the outside-the-selector box")
    wait_for(lambda: name not in service_edges(page), what=f"{name}'s Service edge to go")
    wait_for(lambda: len(ready_edges(page)) == 3, what="a replacement selected and ready")
    shot(page, artifacts_dir, "7-relabelled")
    kubectl(lab, "delete", "pod", name, "--wait=false")


def test_keepalive_through_the_ingress_ends_at_the_ingress_and_reaches_every_pod(
    page: Page, lab: RunningLab, artifacts_dir: Path
) -> None:
    # k8s/ingress.yaml with a host of this namespace's own, so the shared sandbox's ingress
    # controller sends its requests to this namespace's pods
    manifest = (REPO / "k8s" / "ingress.yaml").read_text().replace(
        "    - http:", f"    - host: {lab.namespace}.lb-demo.test\n      http:"
    )
    kubectl(lab, "apply", "-f", "-", stdin=manifest)
    ingress = "Ingress/backend"
    wait_for(lambda: page.locator(f'#topology [data-id="{ingress}"]').count() == 1, what="the Ingress node")
    assert page.locator(f'#topology .topo-edge[data-from="{ingress}"][data-to="{SERVICE}"]').count() == 1
    chip = page.locator(f'#topology [data-id="{ingress}"] text.sub')
    wait_for(lambda: "127." in (chip.text_content() or ""), what="the address its controller published")
    page.reload()  # the traffic panel reads its targets when the page loads
    expect(page.locator("#status")).to_contain_text("live", timeout=SLOW)
    start_run(page, mode="keepalive", conns=2, rps=60, duration=30, target="ingress/backend")
    backend = ready_edges(page)

    def traffic() -> tuple[set[str], set[str]]:
        edges = drawn(page)["edges"]
        conns = {e["to"] for e in edges if e["state"] == "connection"}
        flows = {e["to"].split("/", 1)[1] for e in edges if e["state"] == "flow" and e["from"] == SERVICE}
        return conns, flows

    # the two connections end at the Ingress, which sends each request to any ready pod
    wait_for(
        lambda: traffic() == ({ingress}, backend), what="connections to the Ingress and flows to every pod"
    )
    assert len([e for e in drawn(page)["edges"] if e["state"] == "connection"]) == 2
    page.wait_for_timeout(2500)  # a full second of rates behind every label
    readme_shot(page, artifacts_dir, "topology-ingress-keepalive")
    stop_run(page)
