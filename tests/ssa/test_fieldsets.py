"""Pure parts of server-side apply: field sets from the official schemas, their fieldsV1 form,
path strings, conflict messages and ownership transfer (no server)."""

from __future__ import annotations

from typing import Any

import pytest

from sandbox.apiserver import managedfields as mf
from sandbox.apiserver.errors import ApiError

DEPLOYMENT = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "web", "labels": {"app": "web"}, "finalizers": ["a/b"]},
    "spec": {
        "replicas": 2,
        "selector": {"matchLabels": {"app": "web"}},
        "template": {
            "metadata": {"labels": {"app": "web"}},
            "spec": {
                "containers": [
                    {
                        "name": "nginx",
                        "image": "nginx",
                        "args": ["-g"],
                        "ports": [{"containerPort": 80, "protocol": "TCP"}],
                    }
                ]
            },
        },
    },
}


def test_applied_field_set_follows_list_and_map_types() -> None:
    fields = mf.encode_set(mf._keep(mf.to_field_set(DEPLOYMENT, mf.root("deployments")), "", True))
    assert fields == {
        "f:metadata": {"f:finalizers": {'v:"a/b"': {}}, "f:labels": {"f:app": {}}},
        "f:spec": {
            "f:replicas": {},
            "f:selector": {},  # LabelSelector is an atomic map
            "f:template": {
                "f:metadata": {"f:labels": {"f:app": {}}},
                "f:spec": {
                    "f:containers": {
                        'k:{"name":"nginx"}': {
                            ".": {},
                            "f:args": {},
                            "f:image": {},
                            "f:name": {},
                            "f:ports": {
                                'k:{"containerPort":80,"protocol":"TCP"}': {
                                    ".": {},
                                    "f:containerPort": {},
                                    "f:protocol": {},
                                }
                            },
                        }
                    }
                },
            },
        },
    }
    assert mf.decode_set(fields) == mf._keep(mf.to_field_set(DEPLOYMENT, mf.root("deployments")), "", True)


def test_path_strings_are_structured_merge_diffs() -> None:
    path = (
        "f:spec",
        "f:template",
        "f:spec",
        "f:containers",
        'k:{"name":"nginx"}',
        "f:ports",
        'k:{"containerPort":80,"protocol":"TCP"}',
    )
    assert (
        mf.path_string(path)
        == '.spec.template.spec.containers[name="nginx"].ports[containerPort=80,protocol="TCP"]'
    )
    assert mf.path_string(("f:metadata", "f:finalizers", 'v:"a/b"')) == '.metadata.finalizers[="a/b"]'


def test_an_update_takes_changed_fields_from_their_previous_manager() -> None:
    created: dict[str, Any] = {"metadata": {"name": "c"}, "data": {"x": "1", "y": "1"}}
    mf.record_update(
        None,
        created,
        plural="configmaps",
        api_version="v1",
        manager="maker",
        subresource="",
        has_status=False,
    )
    changed: dict[str, Any] = {**created, "data": {"x": "2", "y": "1", "z": "1"}}
    mf.record_update(
        created,
        changed,
        plural="configmaps",
        api_version="v1",
        manager="editor",
        subresource="",
        has_status=False,
    )
    owners = {e["manager"]: e["fieldsV1"] for e in changed["metadata"]["managedFields"]}
    assert owners == {"maker": {"f:data": {".": {}, "f:y": {}}}, "editor": {"f:data": {"f:x": {}, "f:z": {}}}}
    unchanged = {**changed, "metadata": dict(changed["metadata"])}
    mf.record_update(
        changed,
        unchanged,
        plural="configmaps",
        api_version="v1",
        manager="noop",
        subresource="",
        has_status=False,
    )
    assert unchanged == changed, "a write that changes nothing leaves ownership (and times) alone"


def apply_as_b(live: dict, config: dict, *, force: bool) -> dict:
    return mf.apply(
        live,
        config,
        plural="configmaps",
        api_version="v1",
        manager="b",
        subresource="",
        has_status=False,
        force=force,
    )


def test_conflicts_are_reported_per_manager_and_forced_ones_move() -> None:
    live = {"metadata": {"name": "c"}, "data": {"x": "1", "y": "1"}}
    mf.record_update(
        None, live, plural="configmaps", api_version="v1", manager="a", subresource="", has_status=False
    )
    config = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "c"},
        "data": {"x": "2", "y": "2"},
    }
    with pytest.raises(ApiError) as raised:
        apply_as_b(live, config, force=False)
    assert raised.value.code == 409
    assert (
        raised.value.message
        == 'Apply failed with 2 conflicts: conflicts with "a" using v1:\n- .data.x\n- .data.y'
    )
    merged = apply_as_b(live, config, force=True)
    assert merged["data"] == {"x": "2", "y": "2"}
    owners = {(e["manager"], e["operation"]): e["fieldsV1"] for e in merged["metadata"]["managedFields"]}
    assert owners == {("b", "Apply"): {"f:data": {"f:x": {}, "f:y": {}}}, ("a", "Update"): {"f:data": {}}}
    assert (
        mf.describe(("kubectl", "Update", "scale"), "apps/v1")
        == '"kubectl" with subresource "scale" using apps/v1'
    )


def test_malformed_managed_fields_are_a_bad_request() -> None:
    for entries in (
        "x",
        [1],
        [{"manager": "m", "operation": "Delete"}],
        [{"manager": "m", "operation": "Update", "fieldsV1": {"f:a": 1}}],
    ):
        with pytest.raises(ApiError) as raised:
            mf.validate_entries(entries)
        assert raised.value.code == 400
    assert mf.validate_entries([{}]) == [], "[{}] clears the field ownership"


def test_manager_from_user_agent() -> None:
    assert mf.manager_from_user_agent("kubectl/v1.37.0 (linux/amd64) kubernetes/abc") == "kubectl"
    assert mf.manager_from_user_agent("OpenAPI-Generator/37.0.2/python") == "OpenAPI-Generator"
    assert mf.manager_from_user_agent("x" * 300) == "x" * 128
