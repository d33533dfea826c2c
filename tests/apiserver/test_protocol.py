"""The API server speaks the Kubernetes REST protocol: auth, discovery, negotiation, errors,
create/update/patch/delete semantics, pagination, subresources and garbage collection.

These run against an in-process server (no cluster components), so every change seen here
comes from the API server itself."""

from __future__ import annotations

import asyncio
import functools
import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import kubernetes_validate
from kubernetes import client

from sandbox.apiserver.discovery import AGGREGATED_CONTENT_TYPE
from tests import polling

from .conftest import LocalApi

PODS = "/api/v1/namespaces/default/pods"
DEPLOYMENTS = "/apis/apps/v1/namespaces/default/deployments"


def pod_body(name: str, **extra) -> dict:
    """A valid Pod manifest."""
    body = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": "web"}},
        "spec": {"containers": [{"name": "c", "image": "lb-demo"}]},
    }
    body.update(extra)
    return body


def deployment_body(name: str, replicas: int = 2) -> dict:
    """A valid Deployment manifest."""
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "c", "image": "lb-demo"}]},
            },
        },
    }


wait_until = functools.partial(polling.wait_until, timeout=30.0, interval=0.05)


def test_authentication_and_public_endpoints(local_api: LocalApi) -> None:
    status, body = local_api.json("GET", PODS, token="wrong")
    assert status == 401 and body["reason"] == "Unauthorized" and body["kind"] == "Status"
    assert local_api.request("GET", "/healthz", token="").data == b"ok"
    assert local_api.request("GET", "/readyz", token="").status == 200
    status, version = local_api.json("GET", "/version/", token="")
    assert status == 200 and version["gitVersion"].startswith("v1.37")


def test_discovery_aggregated_and_legacy(local_api: LocalApi) -> None:
    accept = {"Accept": f"{AGGREGATED_CONTENT_TYPE},application/json"}
    response = local_api.request("GET", "/apis", headers=accept)
    assert response.headers["Content-Type"] == AGGREGATED_CONTENT_TYPE
    groups = {g["metadata"]["name"]: g for g in json.loads(response.data)["items"]}
    deployments = next(
        r for r in groups["apps"]["versions"][0]["resources"] if r["resource"] == "deployments"
    )
    assert deployments["shortNames"] == ["deploy"] and deployments["categories"] == ["all"]
    assert {s["subresource"] for s in deployments["subresources"]} == {"status", "scale"}
    core = json.loads(local_api.request("GET", "/api", headers=accept).data)["items"][0]
    pods = next(r for r in core["versions"][0]["resources"] if r["resource"] == "pods")
    assert pods["shortNames"] == ["po"] and pods["scope"] == "Namespaced"
    _, legacy = local_api.json("GET", "/api")
    assert legacy["versions"] == ["v1"]
    _, resources = local_api.json("GET", "/api/v1")
    names = {r["name"] for r in resources["resources"]}
    assert {"pods", "pods/status", "pods/log", "services", "endpoints", "events", "namespaces"} <= names
    _, apps = local_api.json("GET", "/apis/apps/v1")
    scale = next(r for r in apps["resources"] if r["name"] == "deployments/scale")
    assert scale["group"] == "autoscaling" and scale["kind"] == "Scale"
    assert local_api.json("GET", "/apis/nope/v1")[0] == 404


def test_create_conflicts_and_validation(local_api: LocalApi) -> None:
    status, created = local_api.json("POST", PODS, body=pod_body("web-1"))
    assert status == 201
    meta = created["metadata"]
    assert meta["uid"] and meta["creationTimestamp"].endswith("Z") and meta["resourceVersion"].isdigit()
    assert created["status"]["phase"] == "Pending"
    status, dup = local_api.json("POST", PODS, body=pod_body("web-1"))
    assert (status, dup["reason"], dup["message"]) == (409, "AlreadyExists", 'pods "web-1" already exists')
    status, invalid = local_api.json("POST", PODS, body=pod_body("Not_A_Name"))
    assert status == 422 and invalid["reason"] == "Invalid"
    assert invalid["details"]["causes"][0]["field"] == "metadata.name"
    status, generated = local_api.json("POST", PODS, body=pod_body("", metadata={"generateName": "web-"}))
    assert status == 201 and generated["metadata"]["name"].startswith("web-")
    assert len(generated["metadata"]["name"]) == len("web-") + 5
    status, bad = local_api.json("POST", DEPLOYMENTS, body=deployment_body("neg", replicas=-1))
    assert status == 422 and bad["details"]["causes"][0]["field"] == "spec.replicas"
    status, missing = local_api.json("POST", "/api/v1/namespaces/nowhere/pods", body=pod_body("x"))
    assert status == 404 and missing["message"] == 'namespaces "nowhere" not found'


def test_a_body_that_does_not_decode_is_a_bad_request(local_api: LocalApi) -> None:
    body = deployment_body("typed")
    body["spec"]["replicas"] = "3"
    status, refused = local_api.json("POST", DEPLOYMENTS, body=body)
    assert (status, refused["reason"]) == (400, "BadRequest")
    assert "replicas" in refused["message"]
    assert local_api.json("GET", DEPLOYMENTS + "/typed")[0] == 404


def test_bad_requests_change_nothing(local_api: LocalApi) -> None:
    before = local_api.resource_version()
    cases = [
        ({"body": b"{not json", "headers": {"Content-Type": "application/json"}}, 400, "BadRequest"),
        ({"body": b"kind: [unclosed", "headers": {"Content-Type": "application/yaml"}}, 400, "BadRequest"),
        ({"body": b"[1, 2]", "headers": {"Content-Type": "application/json"}}, 400, "BadRequest"),
        (
            {"body": b"x" * (3 * 1024 * 1024 + 1), "headers": {"Content-Type": "application/json"}},
            413,
            "RequestEntityTooLarge",
        ),
        ({"body": b"{}", "headers": {"Content-Type": "text/plain"}}, 415, "UnsupportedMediaType"),
        (
            {"body": b"{}", "headers": {"Content-Type": "application/vnd.kubernetes.protobuf"}},
            400,
            "BadRequest",
        ),
        (
            {
                "body": b"k8s\x00\x0a\x10\x0a\x02v1\x12\x0aPriorityXY",
                "headers": {"Content-Type": "application/vnd.kubernetes.protobuf"},
            },
            415,
            "UnsupportedMediaType",
        ),
        (
            {
                "body": json.dumps(
                    pod_body("x", metadata={"name": "x", "namespace": "kube-system"})
                ).encode(),
                "headers": {"Content-Type": "application/json"},
            },
            400,
            "BadRequest",
        ),
    ]
    for kwargs, code, reason in cases:
        status, body = local_api.json("POST", PODS, **kwargs)
        assert (status, body["reason"]) == (code, reason), kwargs.get("headers")
    assert local_api.json("GET", "/api/v1/namespaces/default/widgets")[0] == 404
    assert local_api.json("GET", PODS, headers={"Accept": "text/html"})[0] == 406
    status, body = local_api.json(
        "PATCH", PODS + "/missing", body=b"{}", headers={"Content-Type": "application/apply-patch+yaml"}
    )
    assert status == 422, body
    status, body = local_api.json("GET", PODS + "?labelSelector=a%20b%20c")
    assert status == 400 and body["reason"] == "BadRequest"
    status, body = local_api.json("GET", PODS + "?fieldSelector=spec.image%3Dx")
    assert (status, body["message"]) == (400, "field label not supported: spec.image")
    assert local_api.resource_version() == before


def test_update_conflict_generation_and_status_split(local_api: LocalApi) -> None:
    _, created = local_api.json("POST", DEPLOYMENTS, body=deployment_body("app"))
    assert created["metadata"]["generation"] == 1
    stale = json.loads(json.dumps(created))
    created["spec"]["replicas"] = 4
    created["status"] = {"replicas": 99}
    status, updated = local_api.json("PUT", DEPLOYMENTS + "/app", body=created)
    assert status == 200 and updated["metadata"]["generation"] == 2 and "replicas" not in updated["status"]
    stale["spec"]["replicas"] = 5
    status, conflict = local_api.json("PUT", DEPLOYMENTS + "/app", body=stale)
    assert status == 409 and conflict["reason"] == "Conflict"
    status_body = {**updated, "status": {"replicas": 4, "observedGeneration": 2}, "spec": {"replicas": 1}}
    status, after = local_api.json("PUT", DEPLOYMENTS + "/app/status", body=status_body)
    assert status == 200 and after["status"]["replicas"] == 4 and after["spec"]["replicas"] == 4
    assert after["metadata"]["generation"] == 2
    rv = after["metadata"]["resourceVersion"]
    status, same = local_api.json("PUT", DEPLOYMENTS + "/app", body=after)
    assert same["metadata"]["resourceVersion"] == rv, "a no-op update writes nothing"
    status, mismatch = local_api.json(
        "PUT", DEPLOYMENTS + "/app", body={**after, "metadata": {**after["metadata"], "name": "other"}}
    )
    assert status == 400 and mismatch["reason"] == "BadRequest"


def test_patches_and_scale_subresource(local_api: LocalApi) -> None:
    local_api.json("POST", DEPLOYMENTS, body=deployment_body("web"))
    status, scale = local_api.json("GET", DEPLOYMENTS + "/web/scale")
    assert status == 200 and scale["kind"] == "Scale" and scale["apiVersion"] == "autoscaling/v1"
    assert scale["spec"]["replicas"] == 2 and scale["status"]["selector"] == "app=web"
    status, scale = local_api.json(
        "PATCH",
        DEPLOYMENTS + "/web/scale",
        body=b'{"spec":{"replicas":5}}',
        headers={"Content-Type": "application/merge-patch+json"},
    )
    assert status == 200 and scale["spec"]["replicas"] == 5
    status, bad = local_api.json(
        "PATCH",
        DEPLOYMENTS + "/web/scale",
        body=b'{"spec":{"replicas":-1}}',
        headers={"Content-Type": "application/merge-patch+json"},
    )
    assert status == 422 and bad["reason"] == "Invalid"
    _, dep = local_api.json("GET", DEPLOYMENTS + "/web")
    assert dep["spec"]["replicas"] == 5 and dep["metadata"]["generation"] == 2
    smp = {
        "spec": {
            "template": {
                "spec": {
                    "$setElementOrder/containers": [{"name": "c"}],
                    "containers": [{"name": "c", "image": "lb-demo:v2"}],
                }
            }
        }
    }
    status, dep = local_api.json(
        "PATCH",
        DEPLOYMENTS + "/web",
        body=json.dumps(smp).encode(),
        headers={"Content-Type": "application/strategic-merge-patch+json"},
    )
    assert status == 200 and dep["spec"]["template"]["spec"]["containers"][0]["image"] == "lb-demo:v2"
    ops = [{"op": "add", "path": "/metadata/labels", "value": {"tier": "web"}}]
    status, dep = local_api.json(
        "PATCH",
        DEPLOYMENTS + "/web",
        body=json.dumps(ops).encode(),
        headers={"Content-Type": "application/json-patch+json"},
    )
    assert status == 200 and dep["metadata"]["labels"] == {"tier": "web"}, dep
    status, _ = local_api.json(
        "PATCH",
        DEPLOYMENTS + "/web/scale?dryRun=All",
        body=b'{"spec":{"replicas":9}}',
        headers={"Content-Type": "application/merge-patch+json"},
    )
    assert status == 200 and local_api.json("GET", DEPLOYMENTS + "/web")[1]["spec"]["replicas"] == 5


def test_list_pagination_selectors_and_cross_namespace(local_api: LocalApi) -> None:
    for index in range(7):
        local_api.json(
            "POST",
            PODS,
            body=pod_body(
                f"p{index}", metadata={"name": f"p{index}", "labels": {"app": "web" if index % 2 else "db"}}
            ),
        )
    names, token = [], ""
    while True:
        _, page = local_api.json("GET", PODS + f"?limit=3&continue={token}")
        names += [p["metadata"]["name"] for p in page["items"]]
        token = page["metadata"].get("continue", "")
        if not token:
            break
    assert names == [f"p{i}" for i in range(7)]
    _, web = local_api.json("GET", PODS + "?labelSelector=app%3Dweb")
    assert [p["metadata"]["name"] for p in web["items"]] == ["p1", "p3", "p5"]
    _, some = local_api.json(
        "GET", "/api/v1/pods?labelSelector=app+in+(db)&fieldSelector=metadata.name!%3Dp0"
    )
    assert [p["metadata"]["name"] for p in some["items"]] == ["p2", "p4", "p6"]
    _, empty = local_api.json("GET", "/api/v1/namespaces/kube-public/configmaps")
    assert empty["items"] == [] and empty["kind"] == "ConfigMapList"


def test_tables_are_served_when_asked(local_api: LocalApi) -> None:
    local_api.json("POST", PODS, body=pod_body("t1"))
    accept = {"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"}
    status, table = local_api.json("GET", PODS + "?limit=500", headers=accept)
    assert status == 200 and table["kind"] == "Table"
    assert [c["name"] for c in table["columnDefinitions"]][:5] == [
        "Name",
        "Ready",
        "Status",
        "Restarts",
        "Age",
    ]
    assert table["rows"][0]["object"]["kind"] == "PartialObjectMetadata"


def test_graceful_pod_deletion_and_binding(local_api: LocalApi) -> None:
    local_api.json(
        "POST", "/api/v1/nodes", body={"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"}}
    )
    local_api.json("POST", PODS, body=pod_body("bound"))
    binding = {
        "apiVersion": "v1",
        "kind": "Binding",
        "metadata": {"name": "bound"},
        "target": {"apiVersion": "v1", "kind": "Node", "name": "n1"},
    }
    assert local_api.json("POST", PODS + "/bound/binding", body=binding)[0] == 201
    assert local_api.json("POST", PODS + "/bound/binding", body=binding)[0] == 409
    status, terminating = local_api.json("DELETE", PODS + "/bound")
    assert status == 200 and terminating["metadata"]["deletionTimestamp"]
    assert terminating["metadata"]["deletionGracePeriodSeconds"] == 30
    assert local_api.json("GET", PODS + "/bound")[0] == 200
    status, _ = local_api.json("DELETE", PODS + "/bound", body={"gracePeriodSeconds": 0})
    assert status == 200 and local_api.json("GET", PODS + "/bound")[0] == 404
    local_api.json("POST", PODS, body=pod_body("unbound"))
    assert local_api.json("DELETE", PODS + "/unbound")[0] == 200
    assert local_api.json("GET", PODS + "/unbound")[0] == 404


def test_service_ip_and_node_port_allocation(local_api: LocalApi) -> None:
    svc: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "a"},
        "spec": {"type": "NodePort", "selector": {"app": "a"}, "ports": [{"port": 80, "nodePort": 30111}]},
    }
    status, a = local_api.json("POST", "/api/v1/namespaces/default/services", body=svc)
    assert status == 201 and a["spec"]["clusterIP"].startswith("127.96.")
    assert a["spec"]["ports"][0]["nodePort"] == 30111
    svc["metadata"]["name"] = "b"
    status, clash = local_api.json("POST", "/api/v1/namespaces/default/services", body=svc)
    assert status == 422 and "already allocated" in clash["message"]
    del svc["spec"]["ports"][0]["nodePort"]
    status, b = local_api.json("POST", "/api/v1/namespaces/default/services", body=svc)
    assert status == 201 and 30000 <= b["spec"]["ports"][0]["nodePort"] <= 32767
    assert b["spec"]["clusterIP"] != a["spec"]["clusterIP"]
    allocated = (
        b["spec"].pop("clusterIP"),
        b["spec"].pop("clusterIPs"),
        b["spec"]["ports"][0].pop("nodePort"),
    )
    status, kept = local_api.json("PUT", "/api/v1/namespaces/default/services/b", body=b)
    assert status == 200, kept
    assert (
        kept["spec"]["clusterIP"],
        kept["spec"]["clusterIPs"],
        kept["spec"]["ports"][0]["nodePort"],
    ) == allocated


def test_garbage_collection_of_owned_objects(local_api: LocalApi) -> None:
    _, dep = local_api.json("POST", DEPLOYMENTS, body=deployment_body("gc"))
    owner = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "gc",
        "uid": dep["metadata"]["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }
    rs = deployment_body("gc-rs")
    rs.update(kind="ReplicaSet", metadata={"name": "gc-rs", "ownerReferences": [owner]})
    _, rs = local_api.json("POST", "/apis/apps/v1/namespaces/default/replicasets", body=rs)
    rs_owner = {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "name": "gc-rs",
        "uid": rs["metadata"]["uid"],
        "controller": True,
    }
    local_api.json(
        "POST", PODS, body=pod_body("gc-pod", metadata={"name": "gc-pod", "ownerReferences": [rs_owner]})
    )
    status, deleted = local_api.json("DELETE", DEPLOYMENTS + "/gc", body={"propagationPolicy": "Foreground"})
    assert status == 200 and "foregroundDeletion" in deleted["metadata"]["finalizers"]
    wait_until(lambda: local_api.json("GET", DEPLOYMENTS + "/gc")[0] == 404)
    assert local_api.json("GET", "/apis/apps/v1/namespaces/default/replicasets/gc-rs")[0] == 404
    wait_until(lambda: local_api.json("GET", PODS + "/gc-pod")[0] == 404)

    _, dep = local_api.json("POST", DEPLOYMENTS, body=deployment_body("orphan"))
    owner = {**owner, "name": "orphan", "uid": dep["metadata"]["uid"]}
    local_api.json("POST", PODS, body=pod_body("kept", metadata={"name": "kept", "ownerReferences": [owner]}))
    local_api.json("DELETE", DEPLOYMENTS + "/orphan?propagationPolicy=Orphan")
    wait_until(lambda: local_api.json("GET", DEPLOYMENTS + "/orphan")[0] == 404)
    _, kept = local_api.json("GET", PODS + "/kept")
    assert "ownerReferences" not in kept["metadata"]


def test_namespace_deletion_removes_its_content(local_api: LocalApi) -> None:
    local_api.json(
        "POST",
        "/api/v1/namespaces",
        body={"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "doomed"}},
    )
    local_api.json(
        "POST", "/api/v1/namespaces/doomed/configmaps", body={"metadata": {"name": "cm"}, "data": {}}
    )
    assert local_api.json("GET", "/api/v1/namespaces/doomed/serviceaccounts/default")[0] == 200
    status, ns = local_api.json("DELETE", "/api/v1/namespaces/doomed")
    assert status == 200 and ns["status"]["phase"] == "Terminating"
    wait_until(lambda: local_api.json("GET", "/api/v1/namespaces/doomed")[0] == 404)
    assert local_api.json("GET", "/api/v1/namespaces/doomed/configmaps/cm")[0] == 404


def test_objects_deserialize_and_validate_with_official_schemas(local_api: LocalApi) -> None:
    ns = "/api/v1/namespaces/default"
    creates = [
        (PODS, pod_body("v")),
        (DEPLOYMENTS, deployment_body("v")),
        (
            f"{ns}/services",
            {"metadata": {"name": "v"}, "spec": {"selector": {"app": "v"}, "ports": [{"port": 80}]}},
        ),
        ("/api/v1/nodes", {"metadata": {"name": "node-v"}}),
        (f"{ns}/configmaps", {"metadata": {"name": "v"}, "data": {"k": "v"}}),
        (
            f"{ns}/endpoints",
            {
                "metadata": {"name": "v"},
                "subsets": [{"addresses": [{"ip": "127.0.0.2"}], "ports": [{"port": 80}]}],
            },
        ),
        (
            "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices",
            {
                "metadata": {"name": "v-1", "labels": {"kubernetes.io/service-name": "v"}},
                "addressType": "IPv4",
                "endpoints": [{"addresses": ["127.0.0.2"], "conditions": {"ready": True}}],
                "ports": [{"port": 80}],
            },
        ),
        (
            f"{ns}/events",
            {
                "metadata": {"name": "v.1"},
                "involvedObject": {"kind": "Pod", "name": "v", "namespace": "default"},
                "reason": "Started",
                "message": "m",
                "type": "Normal",
            },
        ),
        (
            "/apis/apps/v1/namespaces/default/replicasets",
            {**deployment_body("v"), "kind": "ReplicaSet", "metadata": {"name": "v"}},
        ),
        (
            "/apis/rbac.authorization.k8s.io/v1/namespaces/default/roles",
            {
                "metadata": {"name": "v"},
                "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}],
            },
        ),
    ]
    for path, body in creates:
        status, created = local_api.json("POST", path, body=body)
        assert status == 201, created
    api = client.ApiClient(local_api.kube_configuration())
    for path, model in (
        (PODS + "/v", "V1Pod"),
        (PODS, "V1PodList"),
        (DEPLOYMENTS + "/v", "V1Deployment"),
        (DEPLOYMENTS + "/v/scale", "V1Scale"),
        (f"{ns}/services/v", "V1Service"),
        ("/api/v1/namespaces/default", "V1Namespace"),
        (f"{ns}/serviceaccounts/default", "V1ServiceAccount"),
        ("/api/v1/nodes/node-v", "V1Node"),
        (f"{ns}/configmaps/v", "V1ConfigMap"),
        (f"{ns}/endpoints/v", "V1Endpoints"),
        ("/apis/discovery.k8s.io/v1/namespaces/default/endpointslices/v-1", "V1EndpointSlice"),
        (f"{ns}/events/v.1", "CoreV1Event"),
        ("/apis/apps/v1/namespaces/default/replicasets/v", "V1ReplicaSet"),
        ("/apis/rbac.authorization.k8s.io/v1/namespaces/default/roles/v", "V1Role"),
    ):
        _, obj = local_api.json("GET", path)
        kubernetes_validate.validate(obj, "1.37.0", strict=True)
        response = local_api.request("GET", path)
        assert api.deserialize(response.data.decode(), model, "application/json") is not None, path


def test_field_validation_strict_warn_and_pruning(local_api: LocalApi) -> None:
    body = pod_body("fv")
    body["spec"]["containers"][0]["bogus"] = 1
    status, strict = local_api.json("POST", PODS + "?fieldValidation=Strict", body=body)
    assert (status, strict["message"]) == (
        400,
        'strict decoding error: unknown field "spec.containers[0].bogus"',
    )
    response = local_api.request("POST", PODS + "?fieldValidation=Warn", body=body)
    assert response.status == 201
    assert response.headers["Warning"] == '299 - "unknown field \\"spec.containers[0].bogus\\""'
    assert "bogus" not in json.loads(response.data)["spec"]["containers"][0]
    assert local_api.json("POST", PODS + "?fieldValidation=Loud", body=body)[0] == 400


def test_events_expire_an_hour_after_their_last_change(local_api: LocalApi) -> None:
    def event(name: str, stamp: str) -> dict:
        return {
            "metadata": {"name": name},
            "involvedObject": {"kind": "Pod", "name": "p", "namespace": "default"},
            "reason": "Test",
            "message": "m",
            "type": "Normal",
            "lastTimestamp": stamp,
        }

    local_api.json("POST", "/api/v1/namespaces/default/events", body=event("old", "2020-01-01T00:00:00Z"))
    local_api.json(
        "POST",
        "/api/v1/namespaces/default/events",
        body=event("new", time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())),
    )

    def expire(after: timedelta) -> int:
        run = local_api.server.gc.expire_events(now=datetime.now(UTC) + after)
        return asyncio.run_coroutine_threadsafe(run, local_api.loop).result(30)

    assert expire(timedelta(minutes=30)) == 0, "both were created just now"
    assert expire(timedelta(hours=2)) == 2
    assert local_api.json("GET", "/api/v1/namespaces/default/events")[1]["items"] == []


def test_collection_delete_dry_run_and_other_response_forms(local_api: LocalApi) -> None:
    for name, app in (("a1", "a"), ("a2", "a"), ("b1", "b")):
        local_api.json("POST", PODS, body=pod_body(name, metadata={"name": name, "labels": {"app": app}}))
    status, dry = local_api.json("POST", PODS + "?dryRun=All", body=pod_body("dry"))
    assert status == 201 and dry["metadata"]["name"] == "dry"
    assert local_api.json("GET", PODS + "/dry")[0] == 404
    response = local_api.request("GET", PODS + "/a1", headers={"Accept": "application/yaml"})
    assert response.headers["Content-Type"].startswith("application/yaml") and b"name: a1" in response.data
    accept = {"Accept": "application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io"}
    _, partial = local_api.json("GET", PODS, headers=accept)
    assert partial["kind"] == "PartialObjectMetadataList" and "spec" not in partial["items"][0]
    status, deleted = local_api.json("DELETE", PODS + "?labelSelector=app%3Da")
    assert status == 200 and sorted(p["metadata"]["name"] for p in deleted["items"]) == ["a1", "a2"]
    _, left = local_api.json("GET", PODS)
    assert [p["metadata"]["name"] for p in left["items"]] == ["b1"]
    assert local_api.json("DELETE", "/api/v1/namespaces")[0] == 405


def test_watch_with_a_label_selector_sees_objects_enter_and_leave(local_api: LocalApi) -> None:
    local_api.json("POST", PODS, body=pod_body("mover", metadata={"name": "mover", "labels": {"app": "x"}}))
    _, listed = local_api.json("GET", PODS + "?labelSelector=app%3Dy")
    rv = listed["metadata"]["resourceVersion"]
    merge = {"Content-Type": "application/merge-patch+json"}
    for app in ("y", "y2", "x"):
        patch = json.dumps({"metadata": {"labels": {"app": app if app != "y2" else "y", "v": app}}}).encode()
        local_api.json("PATCH", PODS + "/mover", body=patch, headers=merge)
    response = local_api.request(
        "GET", PODS + f"?watch=true&resourceVersion={rv}&labelSelector=app%3Dy&timeoutSeconds=1"
    )
    events = [json.loads(line) for line in response.data.splitlines()]
    assert [e["type"] for e in events] == ["ADDED", "MODIFIED", "DELETED"]


def test_server_side_apply_creates_then_merges(local_api: LocalApi) -> None:
    apply = {"Content-Type": "application/apply-patch+yaml"}
    manifest = deployment_body("ssa", replicas=1)
    url = DEPLOYMENTS + "/ssa?fieldManager=kubectl&force=false"
    assert (
        local_api.json("PATCH", DEPLOYMENTS + "/ssa", body=json.dumps(manifest).encode(), headers=apply)[0]
        == 422
    )
    status, created = local_api.json("PATCH", url, body=json.dumps(manifest).encode(), headers=apply)
    assert status == 201 and created["spec"]["replicas"] == 1
    # A second manager applying only replicas takes it over (forced) and leaves the rest alone.
    yaml_body = b"apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: ssa\nspec:\n  replicas: 3\n"
    scaler = DEPLOYMENTS + "/ssa?fieldManager=scaler&force=true"
    status, updated = local_api.json("PATCH", scaler, body=yaml_body, headers=apply)
    assert status == 200 and updated["spec"]["replicas"] == 3 and updated["metadata"]["generation"] == 2
    assert updated["spec"]["template"]["spec"]["containers"][0]["image"] == "lb-demo"
