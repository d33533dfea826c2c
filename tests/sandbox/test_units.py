"""Fast unit tests of the sandbox components' pure logic: selectors, hashes, rollout arithmetic,
pod ranking, endpoint picking, images, pod IPs and the informer's event handling."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from sandbox.client import PODS, Informer, _params, event_key
from sandbox.controllers.deployment import (
    ALPHANUMS,
    DeploymentController,
    strip_hash,
    surge_and_unavailable,
    template_hash,
)
from sandbox.controllers.endpoints import resolve_port
from sandbox.controllers.replicaset import pod_delete_rank
from sandbox.images import ImageError, ImageStore, normalize
from sandbox.kubelet.envvars import expand, field_ref
from sandbox.kubelet.images import backoff_delay
from sandbox.kubelet.network import IpAllocator
from sandbox.meta import int_or_percent, map_selector_matches, selector_matches
from sandbox.proxy import Endpoint, ServicePort
from sandbox.qos import pod_qos_class as qos_class


def test_label_selectors() -> None:
    sel = {
        "matchLabels": {"app": "backend"},
        "matchExpressions": [
            {"key": "tier", "operator": "In", "values": ["web", "api"]},
            {"key": "canary", "operator": "DoesNotExist"},
        ],
    }
    assert selector_matches(sel, {"app": "backend", "tier": "web"})
    assert not selector_matches(sel, {"app": "backend", "tier": "db"})
    assert not selector_matches(sel, {"app": "backend", "tier": "web", "canary": "1"})
    assert not selector_matches({}, {"app": "backend"})
    assert map_selector_matches({"app": "backend"}, {"app": "backend", "x": "y"})
    assert not map_selector_matches({"app": "backend"}, {"app": "frontend"})


def test_template_hash_is_stable_and_kubernetes_shaped() -> None:
    template = {"metadata": {"labels": {"app": "backend"}}, "spec": {"containers": [{"image": "lb-demo"}]}}
    h = template_hash(template)
    assert h == template_hash(dict(template)) and set(h) <= set(ALPHANUMS) and 1 <= len(h) <= 10
    assert template_hash(template, 1) != h
    labelled = {"metadata": {"labels": {"app": "backend", "pod-template-hash": h}}, "spec": template["spec"]}
    assert strip_hash(labelled) == template


@pytest.mark.parametrize(
    ("surge", "unavailable", "replicas", "expected"),
    [
        ("25%", "25%", 4, (1, 1)),
        ("25%", "25%", 3, (1, 0)),
        (1, 0, 3, (1, 0)),
        (0, 0, 3, (0, 1)),
        ("50%", "50%", 5, (3, 2)),
    ],
)
def test_rolling_update_bounds(surge, unavailable, replicas, expected) -> None:
    deploy: dict[str, Any] = {
        "spec": {
            "replicas": replicas,
            "strategy": {"rollingUpdate": {"maxSurge": surge, "maxUnavailable": unavailable}},
        }
    }
    assert surge_and_unavailable(deploy) == expected
    assert int_or_percent("30%", 10, round_up=False) == 3


def _pod(
    name: str,
    *,
    node: str | None = "n1",
    phase: str = "Running",
    ready: bool = True,
    created: str = "2026-01-01T00:00:00Z",
) -> dict:
    conditions = [
        {
            "type": "Ready",
            "status": "True" if ready else "False",
            "lastTransitionTime": "2026-01-01T00:00:10Z",
        }
    ]
    return {
        "metadata": {"name": name, "creationTimestamp": created},
        "spec": {"nodeName": node} if node else {},
        "status": {"phase": phase, "conditions": conditions},
    }


def test_replicaset_deletes_unscheduled_then_pending_then_not_ready_then_newest() -> None:
    pods = [
        _pod("old-ready"),
        _pod("new-ready", created="2026-01-02T00:00:00Z"),
        _pod("not-ready", ready=False),
        _pod("pending", phase="Pending", ready=False),
        _pod("unscheduled", node=None, phase="Pending", ready=False),
    ]
    order = [p["metadata"]["name"] for p in sorted(pods, key=pod_delete_rank)]
    assert order == ["unscheduled", "pending", "not-ready", "new-ready", "old-ready"]


def test_named_target_port_resolves_per_pod() -> None:
    pod = {"spec": {"containers": [{"ports": [{"name": "http", "containerPort": 8080}]}]}}
    assert resolve_port(pod, "http", 80) == 8080
    assert resolve_port(pod, 9090, 80) == 9090
    assert resolve_port(pod, None, 80) == 80
    assert resolve_port(pod, "grpc", 80) is None


def picked(port: ServicePort, client: str = "1.1.1.1") -> Endpoint:
    """The endpoint a new connection from ``client`` goes to; fails the test if there is none."""
    endpoint = port.pick(client)
    assert endpoint is not None, "no endpoint picked"
    return endpoint


def test_proxy_pick_modes_and_client_ip_affinity() -> None:
    eps = [Endpoint("127.0.0.2", 80, "a"), Endpoint("127.0.0.3", 80, "b"), Endpoint("127.0.0.4", 80, "c")]
    rr = ServicePort("s", "round-robin", endpoints=list(eps))
    assert [picked(rr).pod for _ in range(6)] == ["a", "b", "c", "a", "b", "c"]
    lc = ServicePort("s", "least-conn", endpoints=list(eps))
    eps[0].active, eps[1].active, eps[2].active = 5, 0, 3
    assert {picked(lc).pod for _ in range(10)} == {"b"}
    sticky = ServicePort("s", "random", affinity_timeout=60, endpoints=list(eps))
    first = sticky.pick("10.0.0.1")
    assert all(sticky.pick("10.0.0.1") is first for _ in range(20))
    assert ServicePort("s", "random").pick("1.1.1.1") is None


def test_image_store_load_and_lookup(tmp_path: Path) -> None:
    store = ImageStore(tmp_path)
    store.ensure_defaults()
    assert store.lookup("lb-demo") is not None and store.lookup("docker.io/library/lb-demo:v2") is not None
    assert store.lookup("lb-demo:v3") is None
    with pytest.raises(ImageError, match="not found in the local image catalogue"):
        store.load("redis")
    store.load("lb-demo:v3")
    loaded = store.lookup("lb-demo:v3")
    assert loaded is not None and loaded.env["VERSION"] == "v3"
    assert [name for name, _ in store.list()] == ["lb-demo:latest", "lb-demo:v2", "lb-demo:v3"]
    assert normalize("lb-demo") == "lb-demo:latest"
    with pytest.raises(ImageError):
        normalize("bad name")


def test_pod_ips_are_never_reused(tmp_path: Path) -> None:
    first = IpAllocator(tmp_path, 2)
    ips = [first.allocate() for _ in range(300)]
    assert len(set(ips)) == 300 and all(ip.startswith("127.") for ip in ips)
    again = IpAllocator(tmp_path, 2)
    assert again.allocate() not in ips
    assert IpAllocator(tmp_path, 3).allocate().split(".")[1] == ips[0].split(".")[1]


def test_env_expansion_downward_api_qos_and_backoff() -> None:
    pod: dict[str, Any] = {
        "metadata": {"name": "p", "namespace": "default", "uid": "u", "labels": {"app": "backend"}},
        "spec": {"nodeName": "sandbox-node-1", "containers": [{"resources": {}}]},
    }
    assert field_ref(pod, "metadata.labels['app']", pod_ip="1", host_ip="2") == "backend"
    assert field_ref(pod, "status.podIP", pod_ip="127.244.1.2", host_ip="2") == "127.244.1.2"
    assert expand("$(A)-$(MISSING)", {"A": "x"}) == "x-$(MISSING)"
    assert qos_class(pod) == "BestEffort"
    pod["spec"]["containers"][0]["resources"] = {"requests": {"cpu": "50m"}}
    assert qos_class(pod) == "Burstable"
    assert [backoff_delay(n, (10, 300)) for n in range(7)] == [0, 10, 20, 40, 80, 160, 300]


def test_query_parameters_are_camel_cased() -> None:
    assert _params({"label_selector": "app=x", "allow_watch_bookmarks": True}) == {
        "labelSelector": "app=x",
        "allowWatchBookmarks": "true",
    }


class _FakeClient:
    """Canned list and watch answers (a 410 in the first watch) for the informer."""

    def __init__(self) -> None:
        self.lists = [
            {"metadata": {"resourceVersion": "5"}, "items": [_obj("a", "4"), _obj("b", "5")]},
            {"metadata": {"resourceVersion": "9"}, "items": [_obj("a", "8"), _obj("c", "9")]},
        ]
        self.watches = [
            [
                {"type": "MODIFIED", "object": _obj("a", "6")},
                {"type": "BOOKMARK", "object": _obj("", "7")},
                {"type": "ERROR", "object": {"kind": "Status", "code": 410, "reason": "Expired"}},
            ],
        ]
        self.watched_from: list[str] = []

    async def list(self, res, **_):
        return self.lists.pop(0)

    async def watch(self, res, *, resource_version: str, **_):
        self.watched_from.append(resource_version)
        if not self.watches:
            await asyncio.sleep(3600)
        for event in self.watches.pop(0):
            yield event


def _obj(name: str, rv: str) -> dict:
    return {"metadata": {"name": name, "namespace": "default", "resourceVersion": rv}}


async def test_informer_lists_watches_and_relists_on_410() -> None:
    client = _FakeClient()
    informer = Informer(client, PODS)  # type: ignore[arg-type]
    seen: list[tuple[str, str]] = []
    informer.add_handler(lambda kind, old, new: seen.append((kind, event_key(old, new).split("/")[-1])))
    task = asyncio.create_task(informer.run())
    for _ in range(100):
        if len(client.watched_from) == 2:
            break
        await asyncio.sleep(0.01)
    task.cancel()
    assert client.watched_from == ["5", "9"]
    assert seen == [
        ("ADDED", "a"),
        ("ADDED", "b"),
        ("MODIFIED", "a"),
        ("DELETED", "b"),
        ("MODIFIED", "a"),
        ("ADDED", "c"),
    ]
    assert set(informer.store) == {"default/a", "default/c"}
    assert (informer.get("default/a") or {}).get("kind") == "Pod"


def test_proportional_scaling_shares_a_replicas_change_mid_rollout() -> None:
    deploy: dict[str, Any] = {
        "spec": {"replicas": 5, "strategy": {"rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}},
        "status": {"replicas": 4},
    }
    old = {
        "metadata": {
            "annotations": {
                "deployment.kubernetes.io/desired-replicas": "3",
                "deployment.kubernetes.io/max-replicas": "4",
            }
        },
        "spec": {"replicas": 3},
    }
    new = {
        "metadata": {
            "annotations": {
                "deployment.kubernetes.io/desired-replicas": "3",
                "deployment.kubernetes.io/max-replicas": "4",
            }
        },
        "spec": {"replicas": 1},
    }
    assert DeploymentController._is_scaling_event(deploy, [new, old])
    surge, _ = surge_and_unavailable(deploy)
    share_old = DeploymentController._proportion(old, deploy, 2, 0, surge)
    assert share_old == 2
    assert DeploymentController._proportion(new, deploy, 2, share_old, surge) == 0
    deploy["spec"]["replicas"] = 3
    assert not DeploymentController._is_scaling_event(deploy, [new, old])
