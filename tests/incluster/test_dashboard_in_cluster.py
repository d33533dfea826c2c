"""The dashboard deployed in the cluster, as on a real one: `k8s/dashboard/` applied to the
sandbox next to the sample app, the `lb-demo-dashboard` image loaded, the dashboard running
as a pod under its ServiceAccount and Role (RBAC enforced, token auto-mounted), reached
through `kubectl port-forward` and driven in headless Chromium — pods shown, scale, kill,
readiness, traffic. `kubectl auth can-i --as=` shows the Role grants what the page needs and
nothing more."""

from __future__ import annotations

import re
import secrets
import subprocess
import sys
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.conftest import KUBECTL, REPO, Sandbox, create_sample_namespace, delete_namespace, live_page

pytestmark = [pytest.mark.browser, pytest.mark.sandbox]

SLOW = 120_000  # ms: the dashboard migrates its database at start, on a shared machine
OPERATOR_TOKEN = secrets.token_urlsafe(32)


@pytest.fixture
def deployed(sandbox: Sandbox) -> Iterator[tuple[Sandbox, str]]:
    """The sample app and the dashboard's manifests in a namespace of their own, the dashboard
    Ready (its image loaded onto the nodes like `minikube image load`)."""
    namespace = create_sample_namespace(sandbox)
    try:
        loaded = subprocess.run([sys.executable, "-m", "sandbox", "image", "load", "lb-demo-dashboard",
                                 "--state-dir", str(sandbox.state_dir)], cwd=REPO, capture_output=True,
                                text=True, timeout=120)
        assert loaded.returncode == 0, loaded.stderr
        sandbox.kubectl("-n", namespace, "create", "secret", "generic", "lb-demo-dashboard",
                        f"--from-literal=secret-key={secrets.token_urlsafe(64)}",
                        f"--from-literal=token={OPERATOR_TOKEN}")
        sandbox.kubectl("-n", namespace, "apply", "-f", str(REPO / "k8s" / "dashboard"))
        sandbox.kubectl("-n", namespace, "rollout", "status", "deployment/lb-demo-dashboard",
                        "--timeout=240s", timeout=260)
        yield sandbox, namespace
    finally:
        delete_namespace(sandbox, namespace)


def can_i(box: Sandbox, namespace: str, *args: str) -> str:
    """`kubectl auth can-i ARGS --as=<the dashboard's ServiceAccount>` (yes/no)."""
    who = f"--as=system:serviceaccount:{namespace}:lb-demo-dashboard"
    return box.run_kubectl("auth", "can-i", *args, "-n", namespace, who, check=False).stdout.strip()


@pytest.fixture
def forwarded(deployed: tuple[Sandbox, str]) -> Iterator[int]:
    """`kubectl port-forward svc/lb-demo-dashboard :80`: the local port it listens on."""
    box, namespace = deployed
    proc = subprocess.Popen([str(KUBECTL), "-n", namespace, "port-forward", "svc/lb-demo-dashboard", ":80"],
                            env=box.kubectl_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stderr is not None
        line = proc.stdout.readline()
        match = re.match(r"Forwarding from 127\.0\.0\.1:(\d+) -> 8000", line)
        assert match, f"port-forward said {line!r}: {proc.stderr.read() if proc.poll() is not None else ''}"
        # It prints a line per connection: keep reading so its pipe never fills.
        threading.Thread(target=proc.stdout.read, daemon=True).start()
        yield int(match.group(1))
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def backend_cards(page: Page, selector: str = "") -> Any:
    return page.locator(f"#nodes .pod-card{selector}")


def wait_ready_backends(page: Page, count: int) -> None:
    ready = backend_cards(page, '[data-status="Running"][data-ready="true"]:not(.leaving)')
    expect(ready).to_have_count(count, timeout=SLOW)
    expect(page.locator("#endpoints")).to_have_attribute("data-ready", str(count), timeout=SLOW)


def test_the_dashboard_in_cluster_under_its_role(deployed: tuple[Sandbox, str], forwarded: int,
                                                 browser: Any) -> None:
    box, namespace = deployed
    [pod] = box.run_kubectl("-n", namespace, "get", "pods", "-l", "app=lb-demo-dashboard", "-o",
                            "jsonpath={.items[*].spec.serviceAccountName} {.items[*].spec.volumes[*].name}",
                            check=True).stdout.splitlines()
    assert re.fullmatch(r"lb-demo-dashboard tmp kube-api-access-\w{5}", pod), pod

    # What the Role grants (the page's needs) and a few things it does not.
    for granted in (("watch", "pods"), ("delete", "pods"), ("patch", "pods/status"),
                    ("patch", "deployments.apps/scale"), ("list", "endpointslices.discovery.k8s.io")):
        assert can_i(box, namespace, *granted) == "yes", granted
    for refused in (("get", "secrets"), ("create", "pods"), ("delete", "deployments.apps"),
                    ("create", "pods/exec"), ("update", "pods/status"), ("list", "configmaps"),
                    ("list", "nodes"), ("create", "rolebindings.rbac.authorization.k8s.io")):
        assert can_i(box, namespace, *refused) == "no", refused
    assert can_i(box, "default", "list", "pods") == "no"  # nothing outside its namespace

    url = f"http://localhost:{forwarded}/?token={OPERATOR_TOKEN}"
    with live_page(browser, url, viewport={"width": 1400, "height": 1000}, timeout_ms=SLOW) as page:
        wait_ready_backends(page, 3)
        expect(page.locator("#pods-other .pod-card[data-pod='frontend']")).to_have_count(1, timeout=SLOW)

        page.locator("#scale-slider").fill("4")
        expect(page.locator("#deployment .desired dd")).to_have_text("4", timeout=SLOW)
        wait_ready_backends(page, 4)
        replicas = box.run_kubectl("-n", namespace, "get", "deployment", "backend", "-o",
                                   "jsonpath={.spec.replicas}").stdout
        assert replicas == "4"

        victim = backend_cards(page, ":not(.leaving)").first.get_attribute("data-pod")
        backend_cards(page, f'[data-pod="{victim}"]').locator("button.kill").click()
        expect(page.locator(f'.pod-card[data-pod="{victim}"]')).to_have_count(0, timeout=SLOW)
        wait_ready_backends(page, 4)

        card = backend_cards(page, ":not(.leaving)").first
        name = card.get_attribute("data-pod")
        card.locator("button.readiness").click()
        expect(page.locator("#endpoints")).to_have_attribute("data-ready", "3", timeout=SLOW)
        expect(page.locator("#endpoints .endpoint-column.not-ready")).to_contain_text(str(name), timeout=SLOW)
        backend_cards(page, f'[data-pod="{name}"]').locator("button.readiness").click()
        expect(page.locator("#endpoints")).to_have_attribute("data-ready", "4", timeout=SLOW)

        page.wait_for_selector("#traffic-target option[value='backend-service:80']", state="attached",
                               timeout=SLOW)
        page.select_option("#traffic-target", "backend-service:80")
        page.fill("#traffic-duration", "30")
        page.click("#traffic-start")
        panel = page.locator("#traffic-panel")
        expect(panel).to_have_attribute("data-run-state", "running", timeout=SLOW)
        expect(panel).not_to_have_attribute("data-requests", re.compile(r"^0?$"), timeout=SLOW)
        page.click("#traffic-stop")
        expect(panel).not_to_have_attribute("data-run-state", "running", timeout=SLOW)

    # Under a namespaced Role the dashboard may not watch Nodes (cluster-scoped) and says so;
    # every other kind it watches was allowed.
    logs = box.run_kubectl("-n", namespace, "logs", "deployment/lb-demo-dashboard").stdout
    assert set(re.findall(r"not allowed to list/watch (\w+)", logs)) == {"Node"}, logs[-3000:]
