"""The control plane's own records, as kubectl shows them on a real cluster: `kubectl get cs`
(ComponentStatus, deprecated, from the components' leader-election Leases), the Leases
themselves, deprecation warnings (`kubectl get endpoints`) and the API server's `GET /` index."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import uuid

import pytest

from sandbox import statedir
from sandbox.apiserver.kinds.componentstatus import STRATEGY, component_status, lease_problem
from sandbox.client import LEASES, ApiClient, ApiError
from sandbox.leaderelection import NAMESPACE, LeaseHolder, micro_time
from tests import polling
from tests.conftest import Sandbox

from .conftest import header_of, kubectl

pytestmark = pytest.mark.sandbox

CS_WARNING = "Warning: v1 ComponentStatus is deprecated in v1.19+"


def test_get_cs_reports_the_scheduler_controller_manager_and_etcd_healthy(sandbox: Sandbox) -> None:
    def all_healthy() -> str | None:
        out = kubectl(sandbox, "get", "cs")
        rows = {line.split()[0]: line.split()[1:] for line in out.stdout.splitlines()[1:]}
        names = ("scheduler", "controller-manager", "etcd-0")
        ok = all(rows.get(name) == ["Healthy", "ok"] for name in names)
        return out.stdout + "\n" + out.stderr if ok else None

    shown = polling.wait_until(all_healthy, timeout=30, interval=0.5, what="three Healthy components")
    assert CS_WARNING in shown
    assert header_of(shown) == ["NAME", "STATUS", "MESSAGE", "ERROR"]
    one = json.loads(kubectl(sandbox, "get", "componentstatus", "scheduler", "-o", "json").stdout)
    assert one["conditions"] == [{"type": "Healthy", "status": "True", "message": "ok"}]
    missing = kubectl(sandbox, "get", "cs", "nope", check=False)
    assert missing.returncode == 1
    assert 'Error from server (NotFound): componentstatuses "nope" not found' in missing.stderr
    refused = kubectl(sandbox, "delete", "cs", "scheduler", check=False)
    assert refused.returncode == 1 and "MethodNotAllowed" in refused.stderr


def test_the_components_hold_leader_election_leases_in_kube_system(sandbox: Sandbox) -> None:
    def held() -> dict | None:
        leases = json.loads(kubectl(sandbox, "get", "leases", "-n", "kube-system", "-o", "json").stdout)
        by_name = {item["metadata"]["name"]: item["spec"] for item in leases["items"]}
        wanted = [by_name.get(name) or {} for name in ("kube-scheduler", "kube-controller-manager")]
        return by_name if all(spec.get("holderIdentity") for spec in wanted) else None

    leases = polling.wait_until(held, timeout=30, interval=0.5, what="both leader Leases held")
    for name in ("kube-scheduler", "kube-controller-manager"):
        spec = leases[name]
        assert re.fullmatch(r".+_[0-9a-f-]{36}", spec["holderIdentity"]), spec
        assert spec["leaseDurationSeconds"] == 15
        assert spec["acquireTime"] <= spec["renewTime"]
    table = kubectl(sandbox, "get", "leases", "-n", "kube-system").stdout
    assert header_of(table) == ["NAME", "HOLDER", "AGE"]
    assert re.search(r"^kube-scheduler\s+\S+_[0-9a-f-]{36}\s", table, re.M), table
    events = kubectl(sandbox, "get", "events", "-n", "kube-system", "--field-selector",
                     "reason=LeaderElection", "-o", "json").stdout
    messages = {(e["involvedObject"]["name"], e["message"]) for e in json.loads(events)["items"]}
    for name in ("kube-scheduler", "kube-controller-manager"):
        assert (name, f"{leases[name]['holderIdentity']} became leader") in messages


def test_a_lease_held_by_another_is_waited_for_then_taken_over(sandbox: Sandbox) -> None:
    """client-go's rules on a fresh Lease: another live holder keeps it; once it is released the
    next identity takes it over (transitions + 1) and releases it in turn on shutdown."""
    name = f"test-lock-{uuid.uuid4().hex[:8]}"

    async def scenario() -> None:
        ca_file = statedir.ca_cert(sandbox.state_dir)
        client = ApiClient(base_url=sandbox.url, token=sandbox.token, ca_file=ca_file)
        try:
            first = LeaseHolder(client, name, identity="first_1", retry_period=0.05)
            second = LeaseHolder(client, name, identity="second_2", retry_period=0.05)
            assert await first.try_acquire_or_renew()
            created = await client.get(LEASES, name, namespace=NAMESPACE)
            assert created["spec"]["leaseTransitions"] == 0
            assert not await second.try_acquire_or_renew()  # held and fresh
            assert await first.try_acquire_or_renew()  # renewal keeps acquireTime
            renewed = await client.get(LEASES, name, namespace=NAMESPACE)
            assert renewed["spec"]["acquireTime"] == created["spec"]["acquireTime"]
            await first.release()
            released = await client.get(LEASES, name, namespace=NAMESPACE)
            assert released["spec"]["holderIdentity"] == ""
            assert await second.try_acquire_or_renew()
            taken = await client.get(LEASES, name, namespace=NAMESPACE)
            assert taken["spec"]["holderIdentity"] == "second_2"
            assert taken["spec"]["leaseTransitions"] == 1
            task = asyncio.create_task(second.run())
            await asyncio.sleep(0.2)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            after = await client.get(LEASES, name, namespace=NAMESPACE)
            assert after["spec"]["holderIdentity"] == ""  # ReleaseOnCancel
            # A leader whose Lease was taken over meanwhile: its optimistic renewal conflicts and it
            # falls back to reading the Lease, which tells it that it no longer leads.
            quick = LeaseHolder(client, name, identity="quick_3", lease_duration=1)
            assert await quick.try_acquire_or_renew() and await quick.try_acquire_or_renew()
            thief = LeaseHolder(client, name, identity="thief_4")
            assert not await thief.try_acquire_or_renew()
            await asyncio.sleep(1.2)
            assert await thief.try_acquire_or_renew()
            assert not await quick.try_acquire_or_renew()
            assert not quick.leading
            held = await client.get(LEASES, name, namespace=NAMESPACE)
            assert held["spec"]["holderIdentity"] == "thief_4" and held["spec"]["leaseTransitions"] == 3
        finally:
            with contextlib.suppress(ApiError):
                await client.delete(LEASES, name, namespace=NAMESPACE)
            await client.close()

    asyncio.run(scenario())


def test_endpoints_answers_carry_the_deprecation_warning(sandbox: Sandbox) -> None:
    out = kubectl(sandbox, "get", "endpoints", "kubernetes", "-n", "default")
    warning = "Warning: v1 Endpoints is deprecated in v1.33+; use discovery.k8s.io/v1 EndpointSlice"
    assert warning in out.stderr
    assert header_of(out.stdout) == ["NAME", "ENDPOINTS", "AGE"]
    slices = kubectl(sandbox, "get", "endpointslices", "-n", "default")
    assert "Warning" not in slices.stderr


def test_the_root_path_lists_what_the_server_serves(sandbox: Sandbox) -> None:
    paths = json.loads(kubectl(sandbox, "get", "--raw", "/").stdout)["paths"]
    assert paths == sorted(paths)
    for path in ("/api", "/api/v1", "/apis", "/apis/apps", "/apis/apps/v1", "/apis/autoscaling/v1",
                 "/apis/autoscaling/v2", "/healthz", "/healthz/etcd", "/livez", "/readyz/shutdown",
                 "/metrics", "/openapi/v2", "/openapi/v3", "/version"):
        assert path in paths, path


def test_a_component_is_unhealthy_when_its_lease_is_missing_released_or_stale() -> None:
    now = 1_800_000_000.0
    fresh = {"spec": {"holderIdentity": "h_1", "leaseDurationSeconds": 15, "renewTime": micro_time(now - 3)}}
    assert lease_problem(fresh, "kube-scheduler", now) == ""
    where = "the Lease kube-system/kube-scheduler"
    assert lease_problem(None, "kube-scheduler", now) == f"no leader: {where} does not exist"
    released = {"spec": {"holderIdentity": "", "leaseDurationSeconds": 1, "renewTime": micro_time(now)}}
    assert lease_problem(released, "kube-scheduler", now) == f"no leader: {where} is not held"
    stale = {"spec": {"holderIdentity": "h_1", "leaseDurationSeconds": 15, "renewTime": micro_time(now - 42)}}
    assert lease_problem(stale, "kube-controller-manager", now) == (
        "no leader: the Lease kube-system/kube-controller-manager was last renewed 42s ago "
        "(leaseDurationSeconds 15)")
    unhealthy = component_status("scheduler", "no leader: x")
    assert unhealthy["conditions"] == [{"type": "Healthy", "status": "Unknown", "error": "no leader: x"}]
    assert STRATEGY.row(unhealthy, None) == ["scheduler", "Unhealthy", "", "no leader: x"]  # type: ignore[arg-type]
    assert STRATEGY.row(component_status("etcd-0"), None) == ["etcd-0", "Healthy", "ok", ""]  # type: ignore[arg-type]


def test_the_official_client_reads_component_statuses(sandbox: Sandbox) -> None:
    from kubernetes import client, config

    with config.new_client_from_config(config_file=str(sandbox.kubeconfig)) as api_client:
        statuses = client.CoreV1Api(api_client).list_component_status()
    assert [s.metadata.name for s in statuses.items] == ["scheduler", "controller-manager", "etcd-0"]
    assert all(s.conditions[0].type == "Healthy" for s in statuses.items)
