"""PATCH semantics: strategic merge patch cases from Kubernetes' own test suite
(`strategicpatch/patch_test.go`, its fake MergeItem fields mapped onto real fields with the
same strategy), the exact patch plain `kubectl apply` sends, JSON merge patch and JSON patch."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from sandbox.apiserver.patch import PatchError, apply_patch
from sandbox.apiserver.validation import default_object, validate_object

SMP = "application/strategic-merge-patch+json"
MERGE = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
# Recorded from kubectl 1.37 (shared/reference/kubectl-1.37-requests/applyupdate.jsonl).
REQUESTS = Path(__file__).resolve().parent / "applyupdate.jsonl"


def smp(original: dict, patch: dict, plural: str = "pods") -> dict:
    return apply_patch(SMP, original, json.dumps(patch).encode(), plural=plural)


def containers(*items: dict) -> dict:
    """A pod whose `spec.containers` (merge key `name`) plays MergeItem's `mergingList`."""
    return {"spec": {"containers": list(items)}}


def finalizers(*values: str) -> dict:
    """A pod whose `metadata.finalizers` (merge strategy, primitives) plays `mergingIntList`."""
    return {"metadata": {"finalizers": list(values)}}


# (description, original, patch, expected) — all on Pods.
K8S_CASES = [
    (
        "unique scalars when merging lists",
        finalizers("1", "2"),
        finalizers("2", "3"),
        finalizers("1", "2", "3"),
    ),
    (
        "delete map from nested map",
        {"metadata": {"labels": {"key1": "1", "key2": "1"}}},
        {"metadata": {"labels": {"$patch": "delete"}}},
        {"metadata": {"labels": {}}},
    ),
    (
        "delete all items from merging list",
        containers({"name": "1"}, {"name": "2"}),
        containers({"$patch": "replace"}),
        containers(),
    ),
    ("merge empty merging lists", containers(), containers(), containers()),
    (
        "delete all keys from map",
        {"metadata": {"name": "1"}, "spec": {"hostname": "1"}},
        {"$patch": "replace"},
        {},
    ),
    (
        "add key and delete all keys from map",
        {"metadata": {"name": "1"}, "spec": {"hostname": "1"}},
        {"kind": "Pod", "$patch": "replace"},
        {"kind": "Pod"},
    ),
    (
        "de-duplicate entries in a merging list",
        containers({"name": "1"}, {"name": "1"}, {"name": "2", "image": "a"}, {"name": "3"}, {"name": "3"}),
        containers({"name": "1", "$patch": "delete"}, {"name": "3", "$patch": "delete"}),
        containers({"name": "1"}, {"name": "2", "image": "a"}, {"name": "3"}),
    ),
    (
        "delete all duplicate entries in a merging list",
        containers({"name": "1"}, {"name": "1"}, {"name": "2", "image": "a"}, {"name": "3"}, {"name": "3"}),
        containers(
            {"name": "1", "$patch": "delete"},
            {"name": "1", "$patch": "delete"},
            {"name": "3", "$patch": "delete"},
            {"name": "3", "$patch": "delete"},
        ),
        containers({"name": "2", "image": "a"}),
    ),
    (
        "preserve the order from the patch in a merging list",
        containers({"name": "1"}, {"name": "2", "image": "b"}, {"name": "3"}),
        containers(
            {"name": "3", "image": "c"}, {"name": "1", "image": "a"}, {"name": "2", "workingDir": "x"}
        ),
        containers(
            {"name": "3", "image": "c"},
            {"name": "1", "image": "a"},
            {"name": "2", "image": "b", "workingDir": "x"},
        ),
    ),
    (
        "preserve the order from the patch in a merging list 2",
        containers({"name": "1"}, {"name": "2", "image": "b"}, {"name": "3"}),
        containers({"name": "3", "image": "c"}, {"name": "1", "image": "a"}),
        containers({"name": "2", "image": "b"}, {"name": "3", "image": "c"}, {"name": "1", "image": "a"}),
    ),
    (
        "preserve the order from the patch in a merging int list",
        finalizers("1", "2", "3"),
        finalizers("3", "1", "2"),
        finalizers("3", "1", "2"),
    ),
    (
        "preserve the order from the patch in a merging int list 2",
        finalizers("1", "2", "3"),
        finalizers("3", "1"),
        finalizers("2", "3", "1"),
    ),
    (
        "$setElementOrder contains item that is not present in the list to be merged",
        containers({"name": "1"}, {"name": "3"}),
        {
            "spec": {
                "$setElementOrder/containers": [{"name": "3"}, {"name": "2"}, {"name": "1"}],
                "containers": [{"name": "3", "image": "3"}, {"name": "1", "image": "1"}],
            }
        },
        containers({"name": "3", "image": "3"}, {"name": "1", "image": "1"}),
    ),
    (
        "$setElementOrder contains item that is not present in the int list to be merged",
        finalizers("1", "3"),
        {"metadata": {"$setElementOrder/finalizers": ["3", "2", "1"]}},
        finalizers("3", "1"),
    ),
    (
        "delete items in lists of scalars",
        finalizers("1", "2", "3", "4"),
        {
            "metadata": {
                "$setElementOrder/finalizers": ["1", "2"],
                "$deleteFromPrimitiveList/finalizers": ["3"],
            }
        },
        finalizers("1", "2", "4"),
    ),
    (
        "delete all duplicate items in lists of scalars",
        finalizers("1", "2", "3", "3", "4"),
        {
            "metadata": {
                "$setElementOrder/finalizers": ["1", "2"],
                "$deleteFromPrimitiveList/finalizers": ["3"],
            }
        },
        finalizers("1", "2", "4"),
    ),
    (
        "add and delete items in lists of scalars",
        finalizers("1", "2", "3", "4"),
        {
            "metadata": {
                "$setElementOrder/finalizers": ["1", "2", "4"],
                "$deleteFromPrimitiveList/finalizers": ["3"],
                "finalizers": ["4"],
            }
        },
        finalizers("1", "2", "4"),
    ),
    (
        "merge lists of maps",
        containers({"name": "1", "workingDir": "a"}, {"name": "2", "image": "2", "workingDir": "b"}),
        {
            "spec": {
                "$setElementOrder/containers": [{"name": "4"}, {"name": "1"}, {"name": "2"}, {"name": "3"}],
                "containers": [{"name": "4", "image": "4"}, {"name": "3", "image": "3"}],
            }
        },
        containers(
            {"name": "4", "image": "4"},
            {"name": "1", "workingDir": "a"},
            {"name": "2", "image": "2", "workingDir": "b"},
            {"name": "3", "image": "3"},
        ),
    ),
    (
        "add field to map in merging list",
        containers({"name": "1", "workingDir": "a"}, {"name": "2", "image": "2", "workingDir": "b"}),
        {
            "spec": {
                "$setElementOrder/containers": [{"name": "1"}, {"name": "2"}],
                "containers": [{"name": "1", "image": "1"}],
            }
        },
        containers(
            {"name": "1", "workingDir": "a", "image": "1"}, {"name": "2", "image": "2", "workingDir": "b"}
        ),
    ),
    (
        "add field and delete field from map",
        {"metadata": {"name": "1", "labels": {"other": "a"}}},
        {"metadata": {"name": None, "generateName": "1"}},
        {"metadata": {"labels": {"other": "a"}, "generateName": "1"}},
    ),
    (
        "replace list of scalars (a list without the merge strategy)",
        containers({"name": "c", "args": ["1", "2"]}),
        containers({"name": "c", "args": ["2", "3"]}),
        containers({"name": "c", "args": ["2", "3"]}),
    ),
    (
        "delete all maps from merging list",
        containers({"name": "1"}, {"name": "2"}),
        containers({"name": "1", "$patch": "delete"}, {"name": "2", "$patch": "delete"}),
        containers(),
    ),
    (
        "defined null values are not kept in the result",
        {"metadata": {"name": "a"}},
        {"metadata": {"name": "b", "generateName": None}},
        {"metadata": {"name": "b"}},
    ),
]


@pytest.mark.parametrize(
    ("original", "patch", "expected"), [c[1:] for c in K8S_CASES], ids=[c[0] for c in K8S_CASES]
)
def test_kubernetes_strategic_merge_cases(original: dict, patch: dict, expected: dict) -> None:
    before = copy.deepcopy(original)
    assert smp(original, patch) == expected
    assert original == before


@pytest.mark.parametrize(
    ("original", "patch", "error"),
    [
        (
            containers({"name": "1"}, {"name": "3"}, {"name": "2"}),
            {
                "spec": {
                    "$setElementOrder/containers": [{"name": "1"}, {"name": "2"}, {"name": "3"}],
                    "containers": [{"name": "3", "image": "3"}, {"name": "1", "image": "1"}],
                }
            },
            "doesn't match",
        ),
        (
            containers({"name": "1", "image": "a"}),
            containers({"image": "b"}),
            "does not contain declared merge key",
        ),
        ({"spec": {}}, {"spec": {"$patch": "explode"}}, "Unable to find unknown directive"),
    ],
    ids=["setElementOrder and patch list must match", "missing merge key", "unknown directive"],
)
def test_bad_strategic_patches_are_400(original: dict, patch: dict, error: str) -> None:
    with pytest.raises(PatchError) as info:
        smp(original, patch)
    assert info.value.code == 400
    assert error in info.value.message


def test_merge_keys_come_from_the_schema() -> None:
    pod = {
        "metadata": {"ownerReferences": [{"uid": "u1", "name": "rs"}]},
        "spec": {
            "containers": [
                {
                    "name": "web",
                    "ports": [{"containerPort": 80, "name": "http"}],
                    "env": [{"name": "A", "value": "1"}],
                    "volumeMounts": [{"mountPath": "/data", "name": "d"}],
                }
            ],
            "volumes": [{"name": "d", "emptyDir": {}}],
            "tolerations": [{"key": "a", "operator": "Exists"}],
        },
        "status": {"conditions": [{"type": "Ready", "status": "False"}]},
    }
    result = smp(
        pod,
        {
            "metadata": {"ownerReferences": [{"uid": "u1", "controller": True}]},
            "spec": {
                "containers": [
                    {
                        "name": "web",
                        "ports": [{"containerPort": 80, "protocol": "TCP"}],
                        "env": [{"name": "B", "value": "2"}],
                        "volumeMounts": [{"mountPath": "/data", "readOnly": True}],
                    }
                ],
                "volumes": [{"name": "d", "$retainKeys": ["name", "configMap"], "configMap": {"name": "cm"}}],
                "tolerations": [{"key": "b", "operator": "Exists"}],
            },
            "status": {"conditions": [{"type": "Ready", "status": "True"}]},
        },
    )
    assert result["metadata"]["ownerReferences"] == [{"uid": "u1", "name": "rs", "controller": True}]
    web = result["spec"]["containers"][0]
    assert web["ports"] == [{"containerPort": 80, "name": "http", "protocol": "TCP"}]
    assert web["env"] == [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]
    assert web["volumeMounts"] == [{"mountPath": "/data", "name": "d", "readOnly": True}]
    assert result["spec"]["volumes"] == [
        {"name": "d", "configMap": {"name": "cm"}}
    ]  # $retainKeys dropped emptyDir
    assert result["spec"]["tolerations"] == [{"key": "b", "operator": "Exists"}]  # atomic list: replaced
    assert result["status"]["conditions"] == [{"type": "Ready", "status": "True"}]


def test_service_ports_merge_by_port_and_strategy_switch_uses_retain_keys() -> None:
    svc = {
        "spec": {"ports": [{"port": 80, "name": "http", "targetPort": 8080}, {"port": 443, "name": "https"}]}
    }
    result = smp(svc, {"spec": {"ports": [{"port": 80, "nodePort": 30080}]}}, plural="services")
    assert result["spec"]["ports"] == [
        {"port": 80, "name": "http", "targetPort": 8080, "nodePort": 30080},
        {"port": 443, "name": "https"},
    ]
    dep = {"spec": {"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}}}}
    switched = smp(
        dep, {"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}}, plural="deployments"
    )
    assert switched["spec"]["strategy"] == {"type": "Recreate"}


def test_plain_kubectl_apply_update_of_a_deployment() -> None:
    """The exact requests of `kubectl apply` creating then updating a Deployment (recorded from
    kubectl 1.37): the strategic merge patch keeps server defaults and changes what changed."""
    lines = [json.loads(line) for line in REQUESTS.read_text().splitlines() if line.strip()]
    post = next(line for line in lines if line.get("m") == "POST")
    patch = next(line for line in lines if line.get("m") == "PATCH")
    stored = default_object("deployments", json.loads(post["body"]))
    stored["metadata"].update(uid="u", resourceVersion="5", creationTimestamp="2026-01-01T00:00:00Z")
    result = apply_patch(patch["ct"], stored, patch["body"].encode(), plural="deployments")
    validate_object("deployments", result, old=stored)
    assert result["spec"]["replicas"] == 4
    [web] = result["spec"]["template"]["spec"]["containers"]
    assert web["image"] == "nginx:1.27"
    assert web["ports"] == [{"containerPort": 80, "protocol": "TCP"}]
    assert web["imagePullPolicy"] == "IfNotPresent"
    assert result["spec"]["strategy"] == stored["spec"]["strategy"]
    applied = json.loads(
        result["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"]
    )
    assert applied["spec"]["replicas"] == 4


# --- JSON merge patch and JSON patch ------------------------------------------------------------


@pytest.mark.parametrize(
    ("original", "patch", "expected"),
    [
        ({"a": "b"}, {"a": "c"}, {"a": "c"}),
        ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
        ({"a": "b"}, {"a": None}, {}),
        ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
        ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
        ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
        ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
        ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
    ],
)
def test_rfc7386_examples(original: dict, patch: dict, expected: dict) -> None:
    assert apply_patch(MERGE, original, json.dumps(patch).encode(), plural="pods") == expected


def test_kubectl_scale_merge_patch() -> None:
    scale = {"spec": {"replicas": 3}, "status": {"replicas": 3}}
    result = apply_patch(MERGE, scale, b'{"spec":{"replicas":5}}', plural="scale")
    assert result == {"spec": {"replicas": 5}, "status": {"replicas": 3}}
    assert scale["spec"]["replicas"] == 3


def test_json_patch_and_its_errors() -> None:
    obj = {"metadata": {"labels": {"app": "x"}}, "spec": {"replicas": 2}}
    ops = [
        {"op": "test", "path": "/spec/replicas", "value": 2},
        {"op": "replace", "path": "/spec/replicas", "value": 3},
        {"op": "add", "path": "/metadata/labels/tier", "value": "web"},
    ]
    assert apply_patch(JSON_PATCH, obj, json.dumps(ops).encode(), plural="deployments") == {
        "metadata": {"labels": {"app": "x", "tier": "web"}},
        "spec": {"replicas": 3},
    }
    failing = [{"op": "test", "path": "/spec/replicas", "value": 9}]
    with pytest.raises(PatchError) as info:
        apply_patch(JSON_PATCH, obj, json.dumps(failing).encode(), plural="deployments")
    assert (info.value.code, info.value.message) == (422, "testing value /spec/replicas failed: test failed")
    with pytest.raises(PatchError) as info:
        apply_patch(JSON_PATCH, obj, b'[{"op":"remove","path":"/nope"}]', plural="deployments")
    assert info.value.code == 422
    for body in (b'{"op":"add"}', b'[{"op":"jump","path":"/a"}]', b"[1]", b"not json"):
        with pytest.raises(PatchError) as info:
            apply_patch(JSON_PATCH, obj, body, plural="deployments")
        assert info.value.code == 400, body
    assert obj == {"metadata": {"labels": {"app": "x"}}, "spec": {"replicas": 2}}


@pytest.mark.parametrize("content_type", [SMP, MERGE])
@pytest.mark.parametrize("body", [b"{", b"[]", b'"text"', b"\xff\xfe"])
def test_malformed_object_patches_are_400(content_type: str, body: bytes) -> None:
    with pytest.raises(PatchError) as info:
        apply_patch(content_type, {"a": 1}, body, plural="pods")
    assert info.value.code == 400


def test_unknown_patch_type_is_415() -> None:
    with pytest.raises(PatchError) as info:
        apply_patch("application/xml", {}, b"<a/>", plural="pods")
    assert info.value.code == 415


@pytest.mark.parametrize("content_type", [SMP, MERGE, JSON_PATCH])
def test_absurdly_deep_patches_are_refused_not_crashed(content_type: str) -> None:
    for depth in (600, 5000):
        body = ('{"metadata":' * depth + "1" + "}" * depth).encode()
        try:
            apply_patch(content_type, {"metadata": {"name": "a"}}, body, plural="pods")
        except PatchError as exc:
            assert exc.code in (400, 422)
