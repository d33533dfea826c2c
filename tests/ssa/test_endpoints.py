"""`/metrics`, `/readyz`, `/livez` and `/healthz` on the shared sandbox, read with
`kubectl get --raw` as an operator would (and with a ServiceAccount token for RBAC)."""

from __future__ import annotations

import json
import re
import uuid

import urllib3

from tests.conftest import Sandbox


def metric(text: str, name: str, **labels: str) -> float | None:
    """The value of the sample of ``name`` whose labels include ``labels`` (None when absent)."""
    for line in text.splitlines():
        match = re.match(r"^([a-z_]+)(?:\{(.*)\})? (\S+)$", line)
        if not match or match.group(1) != name:
            continue
        found = dict(re.findall(r'([a-z_]+)="((?:[^"\\]|\\.)*)"', match.group(2) or ""))
        if all(found.get(k) == v for k, v in labels.items()):
            return float(match.group(3))
    return None


def test_readyz_and_livez_list_their_checks(sandbox: Sandbox) -> None:
    assert sandbox.kubectl("get", "--raw", "/readyz") == "ok"
    verbose = sandbox.kubectl("get", "--raw", "/readyz?verbose").splitlines()
    assert verbose[:3] == ["[+]ping ok", "[+]log ok", "[+]etcd ok"]
    assert "[+]shutdown ok" in verbose and verbose[-1] == "readyz check passed"
    live = sandbox.kubectl("get", "--raw", "/livez?verbose&exclude=etcd&exclude=nope").splitlines()
    assert "[+]etcd excluded: ok" in live and "[+]shutdown ok" not in live
    assert live[-2:] == [
        'warn: some health checks cannot be excluded: no matches for "nope"',
        "livez check passed",
    ]
    assert sandbox.kubectl("get", "--raw", "/livez/etcd") == "ok"
    assert sandbox.kubectl("get", "--raw", "/healthz?verbose").endswith("healthz check passed\n")
    missing = sandbox.run_kubectl("get", "--raw", "/readyz/nope", check=False)
    assert missing.returncode == 1 and "NotFound" in missing.stderr


def test_metrics_count_requests_and_stored_objects(sandbox: Sandbox, namespace: str) -> None:
    for name in ("a", "b"):
        sandbox.kubectl("create", "configmap", name, "-n", namespace, "--from-literal=k=v")
    labels = {"resource": "configmaps", "verb": "LIST", "scope": "namespace", "code": "200", "version": "v1"}
    before = metric(sandbox.kubectl("get", "--raw", "/metrics"), "apiserver_request_total", **labels) or 0
    sandbox.kubectl("get", "configmaps", "-n", namespace)
    text = sandbox.kubectl("get", "--raw", "/metrics")
    assert (metric(text, "apiserver_request_total", **labels) or 0) >= before + 1  # others may list too
    posts = metric(text, "apiserver_request_total", resource="configmaps", verb="POST", code="201")
    assert posts is not None and posts >= 2
    timed = {k: v for k, v in labels.items() if k != "code"}
    assert (metric(text, "apiserver_request_duration_seconds_count", **timed) or 0) >= before + 1
    assert metric(text, "apiserver_request_duration_seconds_bucket", le="+Inf", **timed) == metric(
        text, "apiserver_request_duration_seconds_count", **timed
    )
    stored = json.loads(sandbox.kubectl("get", "configmaps", "-A", "-o", "json"))["items"]
    assert metric(text, "apiserver_storage_objects", resource="configmaps") == len(stored)
    assert metric(text, "apiserver_storage_objects", resource="deployments.apps") is not None
    assert (metric(text, "process_resident_memory_bytes") or 0) > 0
    assert "# TYPE apiserver_request_duration_seconds histogram" in text


def test_metrics_need_the_nonresource_permission(sandbox: Sandbox, namespace: str) -> None:
    role = f"metrics-reader-{uuid.uuid4().hex[:6]}"
    sandbox.kubectl("create", "serviceaccount", "scraper", "-n", namespace)
    token = sandbox.kubectl("create", "token", "scraper", "-n", namespace).strip()
    http = urllib3.PoolManager(ca_certs=str(sandbox.state_dir / "ca.crt"))

    def scrape() -> urllib3.BaseHTTPResponse:
        return http.request("GET", sandbox.url + "/metrics", headers={"Authorization": f"Bearer {token}"})

    denied = scrape()
    assert denied.status == 403
    assert json.loads(denied.data)["message"] == (
        f'forbidden: User "system:serviceaccount:{namespace}:scraper" cannot get path "/metrics"'
    )
    try:
        sandbox.kubectl("create", "clusterrole", role, "--verb=get", "--non-resource-url=/metrics")
        sandbox.kubectl(
            "create",
            "clusterrolebinding",
            role,
            f"--clusterrole={role}",
            f"--serviceaccount={namespace}:scraper",
        )
        allowed = scrape()
        assert allowed.status == 200
        assert allowed.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
        assert b"# TYPE apiserver_request_total counter" in allowed.data
    finally:
        sandbox.run_kubectl(
            "delete", "clusterrolebinding,clusterrole", role, "--ignore-not-found", check=False
        )
