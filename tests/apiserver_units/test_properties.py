"""Property tests: whatever a client sends, defaulting and validation answer (never crash), and an
object that decodes and validates is one the official client and schemas accept."""

from __future__ import annotations

import copy
import os
from typing import Any

import kubernetes_validate
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sandbox.apiserver.patch import PatchError, strategic_merge_patch
from sandbox.apiserver.schemas import decode_error, unknown_fields
from sandbox.apiserver.validation import Invalid, Undecodable, default_object, validate_object

# Raise for a deeper local search (e.g. APISERVER_PROPERTY_EXAMPLES=3000); CI keeps the default.
EXAMPLES = int(os.environ.get("APISERVER_PROPERTY_EXAMPLES", "150"))
REALISTIC = st.sampled_from(
    [
        0,
        1,
        3,
        -1,
        80,
        8080,
        70000,
        "http",
        "TCP",
        "UDP",
        "x",
        "",
        "25%",
        "150%",
        "nginx:1.27",
        "Always",
        "None",
        "ClientIP",
        "NodePort",
        "Recreate",
        "RollingUpdate",
        "100m",
        "1Gi",
        "abc",
        {"app": "x"},
        {"app": "y"},
        {"matchLabels": {"app": "x"}},
        {"matchExpressions": [{"key": "app", "operator": "In", "values": ["x"]}]},
        [{"containerPort": 80}],
        [{"port": 80}],
        [{"name": "A", "value": "1"}],
        {"httpGet": {"port": 80}},
        {"tcpSocket": {"port": "http"}},
        {"exec": {"command": ["true"]}},
        {"limits": {"cpu": "1"}},
        {"requests": {"memory": "x"}},
        {"type": "Recreate"},
        {"rollingUpdate": {"maxSurge": 0, "maxUnavailable": 0}},
        [{"name": "http", "port": 80, "targetPort": "http"}, {"name": "http", "port": 81}],
    ]
)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(2**40), 2**40)
    | st.floats(allow_nan=False)
    | st.text(max_size=12)
)
JSON = st.recursive(
    SCALARS | REALISTIC,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.text(max_size=10) | st.sampled_from(["name", "port", "app"]), inner, max_size=3)
    ),
    max_leaves=8,
)

BASES: dict[str, dict] = {
    "deployments": {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "d", "namespace": "default"},
        "spec": {
            "selector": {"matchLabels": {"app": "x"}},
            "template": {
                "metadata": {"labels": {"app": "x"}},
                "spec": {"containers": [{"name": "web", "image": "nginx", "ports": [{"containerPort": 80}]}]},
            },
        },
    },
    "services": {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "s", "namespace": "default"},
        "spec": {"selector": {"app": "x"}, "ports": [{"name": "http", "port": 80}]},
    },
    "pods": {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "namespace": "default"},
        "spec": {"containers": [{"name": "web", "image": "nginx"}]},
    },
}
TEMPLATE = ("spec", "template", "spec", "containers", 0)
PATHS: dict[str, list[tuple]] = {
    "deployments": [
        ("spec", "replicas"),
        ("spec", "selector"),
        ("spec", "template", "metadata", "labels"),
        ("spec", "strategy"),
        ("spec", "minReadySeconds"),
        ("spec", "progressDeadlineSeconds"),
        ("metadata", "labels"),
        ("metadata", "annotations"),
        ("metadata", "name"),
        (*TEMPLATE, "ports"),
        (*TEMPLATE, "image"),
        (*TEMPLATE, "readinessProbe"),
        (*TEMPLATE, "env"),
        (*TEMPLATE, "resources"),
        (*TEMPLATE, "name"),
        (*TEMPLATE, "livenessProbe"),
        ("spec", "template", "spec", "restartPolicy"),
        ("spec", "template", "spec", "volumes"),
    ],
    "services": [
        ("spec", "ports"),
        ("spec", "type"),
        ("spec", "selector"),
        ("spec", "sessionAffinity"),
        ("spec", "clusterIP"),
        ("spec", "ports", 0, "targetPort"),
        ("spec", "ports", 0, "nodePort"),
        ("spec", "ports", 0, "protocol"),
        ("spec", "externalTrafficPolicy"),
        ("metadata", "name"),
    ],
    "pods": [
        ("spec", "containers"),
        ("spec", "containers", 0, "ports"),
        ("spec", "containers", 0, "env"),
        ("spec", "tolerations"),
        ("spec", "nodeName"),
        ("spec", "terminationGracePeriodSeconds"),
        ("spec", "containers", 0, "resources"),
        ("spec", "containers", 0, "startupProbe"),
        ("spec", "initContainers"),
        ("metadata", "ownerReferences"),
        ("metadata", "finalizers"),
    ],
}


def mutate(plural: str, data: st.DataObject) -> dict:
    obj = copy.deepcopy(BASES[plural])
    for _ in range(data.draw(st.integers(1, 3))):
        path = data.draw(st.sampled_from(PATHS[plural]))
        target: Any = obj
        for key in path[:-1]:
            try:
                target = target[key]
            except (KeyError, IndexError, TypeError):
                break
        else:
            if isinstance(target, dict) or (
                isinstance(target, list) and isinstance(path[-1], int) and target
            ):
                target[path[-1]] = data.draw(JSON)
    return obj


@pytest.mark.parametrize("plural", sorted(BASES))
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_accepted_objects_are_what_real_clients_accept(plural: str, data: st.DataObject, official) -> None:
    obj = mutate(plural, data)
    if decode_error(plural, obj) is not None:
        # Input a real server would refuse to decode never crashes these functions: it is refused.
        with pytest.raises(Undecodable) as undecodable:
            validate_object(plural, default_object(plural, obj))
        assert undecodable.value.code == 400
        return
    if unknown_fields(plural, obj):
        return  # the server drops (or, with fieldValidation=Strict, refuses) them before validating
    default_object(plural, obj)
    try:
        validate_object(plural, obj)
    except Invalid as exc:
        assert exc.causes and exc.message and exc.code == 422
        return
    obj["metadata"].update(uid="u", resourceVersion="1", creationTimestamp="2026-01-01T00:00:00Z")
    official(plural, obj)


@settings(max_examples=200, deadline=None)
@given(original=JSON, patch=JSON)
def test_strategic_merge_patch_never_crashes(original: Any, patch: Any) -> None:
    if not isinstance(original, dict) or not isinstance(patch, dict):
        return
    before = copy.deepcopy(original)
    try:
        result = strategic_merge_patch(original, patch, plural="pods")
    except PatchError as exc:
        assert exc.code in (400, 422)
    else:
        assert isinstance(result, dict)
    assert original == before


def test_schemas_and_client_agree_on_the_bases(official) -> None:
    for plural, base in BASES.items():
        obj = default_object(plural, copy.deepcopy(base))
        validate_object(plural, obj)
        kubernetes_validate.validate(obj, "1.37", strict=True)
        official(plural, obj)
