"""Field selectors and LabelSelector objects parse and match like the Kubernetes API server's (label
selector strings: the golden table in tests/golden/label_selectors.yaml)."""

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
