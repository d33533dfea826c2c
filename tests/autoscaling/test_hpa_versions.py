"""HorizontalPodAutoscalers at autoscaling/v1 and v2 from one stored object, against a live sandbox:
the official Python client's AutoscalingV1Api and V2Api, kubectl 1.37 at either version, list and
watch at v1, discovery (v2 preferred), bad v1 objects refused with kube-apiserver's causes."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException

from tests.conftest import Sandbox

REF = {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}


@pytest.fixture
def namespace(sandbox: Sandbox) -> Iterator[str]:
    name = f"hpa-{uuid.uuid4().hex[:8]}"
    sandbox.kubectl("create", "namespace", name)
    yield name
    sandbox.kubectl("delete", "namespace", name, "--wait=false")


@pytest.fixture
def api(sandbox: Sandbox) -> Iterator[client.ApiClient]:
    with config.new_client_from_config(str(sandbox.kubeconfig)) as api_client:
        yield api_client


def v1_hpa(name: str, **spec: Any) -> dict:
    return {
        "apiVersion": "autoscaling/v1",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": name},
        "spec": {"scaleTargetRef": REF, "minReplicas": 1, "maxReplicas": 4, **spec},
    }


def test_one_object_read_and_written_at_either_version(
    api: client.ApiClient, namespace: str, sandbox: Sandbox
) -> None:
    v1, v2 = client.AutoscalingV1Api(api), client.AutoscalingV2Api(api)
    created = v1.create_namespaced_horizontal_pod_autoscaler(
        namespace, v1_hpa("web", targetCPUUtilizationPercentage=70)
    )
    assert created.spec.target_cpu_utilization_percentage == 70
    seen = v2.read_namespaced_horizontal_pod_autoscaler("web", namespace)
    assert seen.api_version == "autoscaling/v2"
    assert [
        (m.type, m.resource.name, m.resource.target.type, m.resource.target.average_utilization)
        for m in seen.spec.metrics
    ] == [("Resource", "cpu", "Utilization", 70)]
    assert seen.metadata.uid == created.metadata.uid

    # A v2 client adds a memory metric and a scale-down rule v1 cannot express ...
    body = api.sanitize_for_serialization(seen)
    body["spec"]["metrics"].insert(
        0,
        {
            "type": "Resource",
            "resource": {"name": "memory", "target": {"type": "AverageValue", "averageValue": "64Mi"}},
        },
    )
    body["spec"]["behavior"] = {
        "scaleDown": {
            "stabilizationWindowSeconds": 30,
            "policies": [{"type": "Pods", "value": 1, "periodSeconds": 15}],
        }
    }
    v2.replace_namespaced_horizontal_pod_autoscaler("web", namespace, body)
    # ... a v1 client sees them in the annotations, changes maxReplicas and writes back ...
    old = v1.read_namespaced_horizontal_pod_autoscaler("web", namespace)
    annotations = old.metadata.annotations
    assert json.loads(annotations["autoscaling.alpha.kubernetes.io/metrics"]) == [
        {"type": "Resource", "resource": {"name": "memory", "targetAverageValue": "64Mi"}}
    ]
    assert "autoscaling.alpha.kubernetes.io/behavior" in annotations
    old.spec.max_replicas = 6
    v1.replace_namespaced_horizontal_pod_autoscaler("web", namespace, old)
    # ... and nothing was lost: the v2 object has both metrics, the behavior, the new maximum.
    now = v2.read_namespaced_horizontal_pod_autoscaler("web", namespace)
    assert [m.resource.name for m in now.spec.metrics] == ["memory", "cpu"]
    assert now.spec.behavior.scale_down.stabilization_window_seconds == 30
    assert now.spec.max_replicas == 6
    assert not (now.metadata.annotations or {})  # v2 never shows the round-trip annotations
    # A JSON merge patch at v1 changes the v1 field.
    v1.patch_namespaced_horizontal_pod_autoscaler(
        "web", namespace, {"spec": {"targetCPUUtilizationPercentage": 40}}
    )
    cpu = [
        m
        for m in v2.read_namespaced_horizontal_pod_autoscaler("web", namespace).spec.metrics
        if m.resource.name == "cpu"
    ]
    assert cpu[0].resource.target.average_utilization == 40

    listed = v1.list_namespaced_horizontal_pod_autoscaler(namespace)
    assert listed.api_version == "autoscaling/v1" and [
        i.spec.target_cpu_utilization_percentage for i in listed.items
    ] == [40]
    # The HPA controller's status, at v1: currentReplicas, and conditions in their annotation.
    table = sandbox.kubectl("get", "horizontalpodautoscalers.v1.autoscaling", "-n", namespace)
    assert table.split("\n")[0].split() == [
        "NAME",
        "REFERENCE",
        "TARGETS",
        "MINPODS",
        "MAXPODS",
        "REPLICAS",
        "AGE",
    ]
    assert table.split("\n")[1].split()[:2] == ["web", "Deployment/web"]
    as_v1 = json.loads(
        sandbox.kubectl(
            "get", "horizontalpodautoscalers.v1.autoscaling", "web", "-n", namespace, "-o", "json"
        )
    )
    assert as_v1["apiVersion"] == "autoscaling/v1" and as_v1["spec"]["targetCPUUtilizationPercentage"] == 40
    assert "currentReplicas" in as_v1["status"]


def test_watch_at_v1_streams_v1_objects(api: client.ApiClient, namespace: str) -> None:
    v1, v2 = client.AutoscalingV1Api(api), client.AutoscalingV2Api(api)
    v2.create_namespaced_horizontal_pod_autoscaler(
        namespace,
        {
            "apiVersion": "autoscaling/v2",
            "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "busy"},
            "spec": {
                "scaleTargetRef": REF,
                "maxReplicas": 3,
                "metrics": [
                    {
                        "type": "Resource",
                        "resource": {
                            "name": "cpu",
                            "target": {"type": "Utilization", "averageUtilization": 55},
                        },
                    }
                ],
            },
        },
    )
    stream = watch.Watch()
    events = []
    for event in stream.stream(v1.list_namespaced_horizontal_pod_autoscaler, namespace, timeout_seconds=10):
        events.append(event)
        break
    stream.stop()
    assert events[0]["type"] == "ADDED"
    assert events[0]["object"].api_version == "autoscaling/v1"
    assert events[0]["object"].spec.target_cpu_utilization_percentage == 55


def test_discovery_serves_both_versions_with_v2_preferred(sandbox: Sandbox) -> None:
    versions = sandbox.kubectl("api-versions").split()
    assert "autoscaling/v1" in versions and "autoscaling/v2" in versions
    group = json.loads(sandbox.kubectl("get", "--raw", "/apis/autoscaling"))
    assert [v["version"] for v in group["versions"]] == ["v2", "v1"]
    assert group["preferredVersion"]["version"] == "v2"
    resources = sandbox.kubectl("api-resources", "--api-group=autoscaling", "--no-headers").split()
    assert resources[:5] == [
        "horizontalpodautoscalers",
        "hpa",
        "autoscaling/v2",
        "true",
        "HorizontalPodAutoscaler",
    ]
    document = json.loads(sandbox.kubectl("get", "--raw", "/openapi/v3/apis/autoscaling/v1"))
    assert "io.k8s.api.autoscaling.v1.HorizontalPodAutoscaler" in document["components"]["schemas"]


def test_bad_v1_objects_are_refused_with_causes_and_change_nothing(
    api: client.ApiClient, namespace: str, sandbox: Sandbox
) -> None:
    v1 = client.AutoscalingV1Api(api)
    with pytest.raises(ApiException) as invalid:
        v1.create_namespaced_horizontal_pod_autoscaler(
            namespace, v1_hpa("bad", maxReplicas=0, targetCPUUtilizationPercentage=0)
        )
    assert invalid.value.status == 422
    status = json.loads(invalid.value.body)
    assert status["message"].startswith('HorizontalPodAutoscaler.autoscaling "bad" is invalid: ')
    assert {(c["field"], c["message"]) for c in status["details"]["causes"]} >= {
        ("spec.maxReplicas", "Invalid value: 0: must be greater than 0"),
        ("spec.metrics[0].resource.target.averageUtilization", "Invalid value: 0: must be greater than 0"),
    }
    undecodable = sandbox.run_kubectl("create", "-n", namespace, "-f", "-", check=False,
                                      stdin=json.dumps(v1_hpa("bad", targetCPUUtilizationPercentage="high")))
    assert undecodable.returncode == 1
    assert "Error from server (BadRequest)" in undecodable.stderr
    assert "HorizontalPodAutoscalerSpec.spec.targetCPUUtilizationPercentage of type int32" in \
        undecodable.stderr
    assert v1.list_namespaced_horizontal_pod_autoscaler(namespace).items == []


def test_server_side_apply_at_v1(namespace: str, sandbox: Sandbox) -> None:
    for target in (33, 44):
        manifest = json.dumps(v1_hpa("applied", targetCPUUtilizationPercentage=target))
        out = sandbox.kubectl("apply", "--server-side", "-n", namespace, "-f", "-", stdin=manifest)
        assert "horizontalpodautoscaler.autoscaling/applied serverside-applied" in out
    row = sandbox.kubectl("get", "hpa", "applied", "-n", namespace, "--no-headers").split()
    assert row[:3] == ["applied", "Deployment/web", "cpu:"] and row[3].endswith("/44%"), row


def test_kubectl_autoscale_of_1_37_creates_the_preferred_v2(namespace: str, sandbox: Sandbox) -> None:
    sandbox.kubectl("create", "deployment", "web", "--image=lb-demo", "--replicas=0", "-n", namespace)
    done = sandbox.run_kubectl("autoscale", "deployment", "web", "--cpu-percent=50", "--max=3",
                               "-n", namespace, "-v=6")
    url = f"{sandbox.url}/apis/autoscaling/v2/namespaces/{namespace}/horizontalpodautoscalers"
    assert f'verb="POST" url="{url}' in done.stderr
    as_v1 = json.loads(sandbox.kubectl("get", "horizontalpodautoscalers.v1.autoscaling", "web",
                                       "-n", namespace, "-o", "json"))
    assert as_v1["spec"]["targetCPUUtilizationPercentage"] == 50
