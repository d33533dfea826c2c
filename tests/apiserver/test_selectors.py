"""Label and field selectors parse and match like the Kubernetes API server's."""

from __future__ import annotations

import pytest

from sandbox.apiserver.kinds import event, pod
from sandbox.apiserver.selectors import (
    SelectorError,
    fields_match,
    labels_match,
    parse_field_selector,
    parse_label_selector,
    selector_from_match_labels,
)

PODS = pod.RESOURCE
EVENTS = event.RESOURCE


@pytest.mark.parametrize(
    ("selector", "labels", "expected"),
    [
        ("app=backend", {"app": "backend"}, True),
        ("app==backend", {"app": "backend"}, True),
        ("app!=backend", {"app": "frontend"}, True),
        ("app!=backend", {}, True),
        ("app=backend,tier=web", {"app": "backend"}, False),
        ("app in (backend, frontend)", {"app": "frontend"}, True),
        ("app notin (backend)", {"app": "backend"}, False),
        ("app notin (backend)", {}, True),
        ("app", {"app": ""}, True),
        ("!app", {"app": "x"}, False),
        ("!app", {}, True),
        ("rank>3", {"rank": "4"}, True),
        ("rank<3", {"rank": "4"}, False),
        ("example.com/role=db", {"example.com/role": "db"}, True),
        ("", {"anything": "x"}, True),
    ],
)
def test_label_selectors(selector: str, labels: dict, expected: bool) -> None:
    assert labels_match(parse_label_selector(selector), labels) is expected


@pytest.mark.parametrize(
    "selector", ["app=", "=x", "app in (a", "a b", "app=a b", "rank>x", ","]
)
def test_bad_label_selectors_are_rejected(selector: str) -> None:
    if selector == "app=":
        assert labels_match(parse_label_selector(selector), {"app": ""})
        return
    with pytest.raises(SelectorError):
        parse_label_selector(selector)


def test_field_selectors_for_pods_and_events() -> None:
    pod = {
        "metadata": {"name": "p", "namespace": "default"},
        "spec": {"nodeName": "n1"},
        "status": {"phase": "Running"},
    }
    assert fields_match(parse_field_selector("spec.nodeName=n1,status.phase!=Pending", PODS), pod)
    assert not fields_match(parse_field_selector("metadata.name=q", PODS), pod)
    event = {
        "metadata": {"name": "e"},
        "involvedObject": {"kind": "Pod", "name": "p", "uid": "u"},
        "type": "Normal",
        "reason": "Started",
    }
    selector = "involvedObject.uid=u,involvedObject.name=p,involvedObject.kind=Pod,type=Normal"
    assert fields_match(parse_field_selector(selector, EVENTS), event)


def test_unsupported_field_is_an_error_like_the_real_server() -> None:
    with pytest.raises(SelectorError, match=r"field label not supported: spec\.image"):
        parse_field_selector("spec.image=x", PODS)


def test_label_selector_objects_render_as_text() -> None:
    selector = {
        "matchLabels": {"app": "backend"},
        "matchExpressions": [
            {"key": "tier", "operator": "In", "values": ["b", "a"]},
            {"key": "legacy", "operator": "DoesNotExist"},
        ],
    }
    text = selector_from_match_labels(selector)
    assert text == "app=backend,tier in (a,b),!legacy"
    assert labels_match(parse_label_selector(text), {"app": "backend", "tier": "a"})
