"""Reading Kubernetes objects (dashboard.objects): selectors as kubectl parses them, endpoint
states in one vocabulary, and objects that are malformed but accepted by an API server read
without an exception — one bad object never breaks the page for the others."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured

from dashboard import objects, presenters
from dashboard.apps import check_selector
from dashboard.cache import ClusterCache
from dashboard.objects import SelectorError, parse_selector, selector_from_label_selector, selector_from_map
from dashboard.presenters import Scope
from dashboard.stream import FrameBuilder, ViewInput
from tests.dashboard.canned import pod

NOW = datetime(2026, 11, 24, 21, 10, tzinfo=UTC)
SCOPE = Scope(
    namespace="default",
    deployment="backend",
    service="backend-service",
    selector=parse_selector("app=backend"),
    max_replicas=10,
)


@pytest.mark.parametrize(
    ("source", "labels", "selected"),
    [
        ("app=backend", {"app": "backend"}, True),
        ("app==backend", {"app": "backend"}, True),
        ("app!=backend", {}, True),
        ("app in (backend, frontend)", {"app": "frontend"}, True),
        ("app notin (backend)", {"app": "frontend"}, True),
        ("app notin (backend)", {}, True),
        ("tier", {"tier": "x"}, True),
        ("!tier", {"tier": "x"}, False),
        ("app=backend,tier in (web)", {"app": "backend", "tier": "db"}, False),
        ("lb-demo.dev/rank>2", {"lb-demo.dev/rank": "3"}, True),
        ("rank<2", {"rank": "²"}, False),
    ],
)
def test_string_selectors_match_like_kubectl(source: str, labels: dict[str, str], selected: bool) -> None:
    assert parse_selector(source).matches(labels) is selected


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("app in (a", "unclosed"),
        ("app=back end", "cannot parse"),
        ("a,,b", "empty requirement"),
        ("app=" + "x" * 64, "not a valid label value"),
        ("-app=x", "not a valid label key"),
        ("rank>two", "whole number"),
    ],
)
def test_bad_selectors_say_what_is_wrong(source: str, message: str) -> None:
    with pytest.raises(SelectorError, match=message):
        parse_selector(source)


def test_label_selectors_and_service_selectors() -> None:
    deployment_selector = {
        "matchLabels": {"app": "backend"},
        "matchExpressions": [{"key": "track", "operator": "NotIn", "values": ["canary"]}],
    }
    selector = selector_from_label_selector(deployment_selector)
    assert selector.matches({"app": "backend"}) and not selector.matches(
        {"app": "backend", "track": "canary"}
    )
    assert str(selector) == "app=backend,track notin (canary)"
    assert selector_from_label_selector({}).matches({"any": "thing"})  # an empty LabelSelector: everything
    assert not selector_from_label_selector({"matchExpressions": [{"key": "a", "operator": "In"}]}).matches(
        {}
    )
    assert not selector_from_map({}).matches({"app": "backend"})  # a Service without a selector: nothing
    assert str(selector_from_map({"b": "2", "a": "1"})) == "a=1,b=2"


def test_lbdemo_selector_is_checked_at_start_up() -> None:
    check_selector("app in (backend, canary)")
    with pytest.raises(
        ImproperlyConfigured, match="LBDEMO_SELECTOR 'app in \\(backend' is not a label selector"
    ):
        check_selector("app in (backend")
    with pytest.raises(ImproperlyConfigured, match="empty"):
        check_selector(" ")


def test_endpoint_states_have_one_vocabulary() -> None:
    sliced = {
        "metadata": {"name": "s", "labels": {"kubernetes.io/service-name": "svc"}},
        "endpoints": [
            {"addresses": ["10.0.0.1"], "conditions": {}, "targetRef": {"kind": "Pod", "name": "a"}},
            {
                "addresses": ["10.0.0.2"],
                "conditions": {"ready": False},
                "targetRef": {"kind": "Pod", "name": "b"},
            },
            {
                "addresses": ["10.0.0.3"],
                "conditions": {"ready": False, "terminating": True},
                "targetRef": {"kind": "Pod", "name": "c"},
            },
        ],
    }
    assert objects.endpoint_states([sliced], [], "svc") == {
        "a": "ready",
        "b": "not-ready",
        "c": "terminating",
    }
    legacy = {
        "metadata": {"name": "svc"},
        "subsets": [
            {
                "addresses": [{"ip": "10.0.0.9", "targetRef": {"kind": "Pod", "name": "x"}}],
                "notReadyAddresses": [{"ip": "10.0.0.8", "targetRef": {"kind": "Pod", "name": "y"}}],
            }
        ],
    }
    assert objects.endpoint_states([], [legacy], "svc") == {"x": "ready", "y": "not-ready"}


MALFORMED_RS: dict[str, Any] = {
    "metadata": {
        "name": "backend-abc",
        "annotations": {"deployment.kubernetes.io/revision": "abc"},
        "ownerReferences": [{"kind": "Deployment", "name": "backend"}],
    },
    "spec": {"replicas": 1},
}


def test_a_malformed_revision_annotation_is_not_a_number() -> None:
    good: dict[str, Any] = {
        "metadata": {
            "name": "backend-def",
            "annotations": {"deployment.kubernetes.io/revision": "2"},
            "ownerReferences": [{"kind": "Deployment", "name": "backend"}],
        },
        "spec": {"replicas": 3},
    }
    superscript = {
        **good,
        "metadata": {
            **good["metadata"],
            "name": "backend-ghi",
            "annotations": {"deployment.kubernetes.io/revision": "²"},
        },
    }
    views = presenters.replicaset_views([MALFORMED_RS, good, superscript], deployment="backend")
    assert [(v.name, v.revision) for v in views] == [
        ("backend-def", "2"),
        ("backend-abc", "abc"),
        ("backend-ghi", "²"),
    ]


def junk_objects() -> dict[str, list[dict]]:
    """Objects of every watched kind with fields of the wrong types, beside one good pod."""
    broken_pod = pod("broken", "2")
    broken_pod["metadata"]["labels"] = ["app", "backend"]
    broken_pod["status"] = {
        "phase": 3,
        "containerStatuses": "all fine",
        "conditions": [None, 7],
        "initContainerStatuses": [{"state": {"terminated": {"exitCode": "x"}}}],
    }
    broken_pod["spec"]["containers"] = {"name": "x"}
    return {
        "Pod": [pod("backend-a", "1"), broken_pod, {"metadata": {"name": "bare"}}],
        "ReplicaSet": [MALFORMED_RS, {"metadata": {"name": "x", "ownerReferences": "backend"}}],
        "Deployment": [
            {
                "metadata": {"name": "backend"},
                "spec": {"replicas": "many", "selector": "app=backend", "template": []},
                "status": None,
            }
        ],
        "Service": [
            {
                "metadata": {"name": "backend-service"},
                "spec": {
                    "selector": {"app": "backend"},
                    "ports": [{"port": "http", "targetPort": {}}, "80", {"port": 80, "nodePort": "x"}],
                },
            }
        ],
        "EndpointSlice": [
            {
                "metadata": {"name": "s", "labels": {"kubernetes.io/service-name": "backend-service"}},
                "endpoints": [{"addresses": "10.0.0.1", "conditions": []}, None],
                "ports": "80",
            }
        ],
        "Endpoints": [{"metadata": {"name": "backend-service"}, "subsets": {"addresses": []}}],
        "Event": [
            {"metadata": {"name": "e"}, "count": "many", "involvedObject": "pod/x", "series": []},
            {"metadata": {"name": "f", "resourceVersion": "²"}, "lastTimestamp": 17},
        ],
        "Node": [{"metadata": {"name": ["node-1"]}, "status": {"conditions": {"Ready": True}}}],
    }


def view_of(cache: ClusterCache) -> ViewInput:
    """The stream's input for the cache's current state (dashboard.stream)."""
    seq, objs = cache.snapshot()
    return ViewInput(objs, seq=seq, scope=SCOPE, now=NOW, timeline=[])


def test_malformed_objects_of_every_kind_still_render_the_page() -> None:
    view = presenters.cluster_view(junk_objects(), seq=1, scope=SCOPE, now=NOW, timeline=[])
    names = [c.name for g in view.groups for c in g.pods] + [c.name for c in view.other_pods]
    assert "backend-a" in names and "broken" in names
    assert [r.revision for r in view.replicasets] == ["abc"]
    assert view.deployment.desired == 0 and view.service.exists
    cache = ClusterCache()
    for kind, items in junk_objects().items():
        cache.replace(kind, items, observed=1.0)
    html = "".join(FrameBuilder(SCOPE).snapshot(view_of(cache)))
    assert "backend-a" in html and "broken" in html


def test_one_object_that_cannot_be_shown_is_left_out_and_logged(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    real = presenters.pod_card

    def fragile(p: dict, **kwargs: object) -> presenters.PodCard:
        if p["metadata"]["name"] == "cursed":
            raise RuntimeError("cannot")
        return real(p, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(presenters, "pod_card", fragile)
    view = presenters.cluster_view(
        {"Pod": [pod("backend-a", "1"), pod("cursed", "2")]}, seq=1, scope=SCOPE, now=NOW, timeline=[]
    )
    assert [c.name for g in view.groups for c in g.pods] == ["backend-a"]
    assert "cannot show pod 'cursed'" in caplog.text


def service(selector: dict[str, str], rv: str) -> dict:
    return {"metadata": {"name": "backend-service", "resourceVersion": rv}, "spec": {"selector": selector}}


def test_cards_follow_the_live_services_selector() -> None:
    pods = [pod("backend-a", "1"), pod("frontend", "2", labels={"app": "frontend"}, owner="")]

    def selected(objs: dict[str, list[dict]]) -> tuple[list[str], str]:
        view = presenters.cluster_view(objs, seq=1, scope=SCOPE, now=NOW, timeline=[])
        return [c.name for g in view.groups for c in g.pods], view.selector

    # No Service yet: LBDEMO_SELECTOR stands in for it.
    assert selected({"Pod": pods}) == (["backend-a"], "app=backend")
    # A learner re-points the Service: heading and cards follow it.
    assert selected({"Pod": pods, "Service": [service({"app": "frontend"}, "3")]}) == (
        ["frontend"],
        "app=frontend",
    )
    assert selected({"Pod": pods, "Service": [service({}, "3")]}) == ([], "<none>")


def test_a_service_selector_change_regroups_the_cards_in_the_next_frame() -> None:
    cache = ClusterCache()
    cache.replace(
        "Pod",
        [pod("backend-a", "1"), pod("frontend", "2", labels={"app": "frontend"}, owner="")],
        observed=1.0,
    )
    cache.replace("Service", [service({"app": "backend"}, "3")], observed=1.0)
    builder = FrameBuilder(SCOPE)
    builder.snapshot(view_of(cache))
    seq = cache.seq
    cache.apply("Service", "MODIFIED", service({"app": "frontend"}, "4"), observed=2.0)
    changes = cache.changes_since(seq)
    assert changes is not None
    html = "".join(builder.delta(changes, view_of(cache)))
    nodes = (
        html[html.index('id="nodes"') : html.index('id="other-pods"')] if 'id="other-pods"' in html else html
    )
    assert 'id="pods-selector"' in html and "app=frontend" in html
    assert "frontend" in nodes and "backend-a" not in nodes


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("release_db_thread")
async def test_the_page_renders_beside_a_replicaset_with_a_non_numeric_revision(canned_hub: object) -> None:
    from django.contrib.auth import get_user_model
    from django.test import AsyncClient

    from tests.dashboard.canned import CannedSource

    source = CannedSource()
    source.script("Pod", lists=[([pod("backend-a", "1")], "1")])
    source.script(
        "ReplicaSet",
        lists=[([{**MALFORMED_RS, "metadata": {**MALFORMED_RS["metadata"], "resourceVersion": "2"}}], "2")],
    )
    canned_hub(source, kinds=("Pod", "ReplicaSet"))  # type: ignore[operator]
    user, _ = await get_user_model().objects.aget_or_create(username="ada")
    web = AsyncClient()
    await web.aforce_login(user)
    response = await web.get("/")
    assert response.status_code == 200
    assert "backend-a" in response.content.decode() and "backend-abc" in response.content.decode()
