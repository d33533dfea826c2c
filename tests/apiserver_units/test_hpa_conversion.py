"""autoscaling/v1 <-> v2 HorizontalPodAutoscaler conversion (pkg/apis/autoscaling/v1/conversion.go):
what a v1 client reads of a v2 object, and that what it writes back loses nothing."""

from __future__ import annotations

import json
from typing import Any

import pytest

from sandbox.apiserver.kinds.horizontalpodautoscaler import (
    BEHAVIOR_ANNOTATION,
    CONDITIONS_ANNOTATION,
    METRIC_SPECS_ANNOTATION,
    METRIC_STATUSES_ANNOTATION,
    STRATEGY,
    v1_to_v2,
    v2_to_v1,
)
from sandbox.apiserver.resources import lookup

REF = {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}
CPU = {
    "type": "Resource",
    "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}},
}
OTHERS = [
    {
        "type": "Resource",
        "resource": {"name": "memory", "target": {"type": "AverageValue", "averageValue": "100Mi"}},
    },
    {
        "type": "ContainerResource",
        "containerResource": {
            "name": "cpu",
            "container": "app",
            "target": {"type": "Utilization", "averageUtilization": 70},
        },
    },
    {
        "type": "Pods",
        "pods": {"metric": {"name": "qps"}, "target": {"type": "AverageValue", "averageValue": "10"}},
    },
    {
        "type": "Object",
        "object": {
            "describedObject": {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "name": "main"},
            "metric": {"name": "hits", "selector": {"matchLabels": {"a": "b"}}},
            "target": {"type": "Value", "value": "2k"},
        },
    },
    {
        "type": "External",
        "external": {"metric": {"name": "queue"}, "target": {"type": "AverageValue", "averageValue": "30"}},
    },
]
STATUS = {
    "currentReplicas": 2,
    "desiredReplicas": 3,
    "lastScaleTime": "2026-01-01T00:00:00Z",
    "currentMetrics": [
        {
            "type": "Resource",
            "resource": {"name": "cpu", "current": {"averageUtilization": 64, "averageValue": "32m"}},
        },
        {"type": "Pods", "pods": {"metric": {"name": "qps"}, "current": {"averageValue": "12"}}},
    ],
    "conditions": [
        {
            "type": "AbleToScale",
            "status": "True",
            "lastTransitionTime": "2026-01-01T00:00:00Z",
            "reason": "ReadyForNewScale",
            "message": "recommended size matches current size",
        }
    ],
}


def v2(metrics: list, **spec: object) -> dict:
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "web", "namespace": "default", "annotations": {"team": "lb"}},
        "spec": {"scaleTargetRef": REF, "minReplicas": 1, "maxReplicas": 5, "metrics": metrics, **spec},
        "status": STATUS,
    }


def test_a_cpu_utilization_target_is_v1s_target_cpu_utilization_percentage() -> None:
    v1 = v2_to_v1(v2([CPU]))
    assert v1["apiVersion"] == "autoscaling/v1"
    assert v1["spec"] == {
        "scaleTargetRef": REF,
        "minReplicas": 1,
        "maxReplicas": 5,
        "targetCPUUtilizationPercentage": 50,
    }
    assert v1["status"] == {
        "currentReplicas": 2,
        "desiredReplicas": 3,
        "lastScaleTime": "2026-01-01T00:00:00Z",
        "currentCPUUtilizationPercentage": 64,
    }
    annotations = v1["metadata"]["annotations"]
    assert METRIC_SPECS_ANNOTATION not in annotations  # nothing v1 cannot say
    assert json.loads(annotations[METRIC_STATUSES_ANNOTATION]) == [
        {
            "type": "Resource",
            "resource": {"name": "cpu", "currentAverageUtilization": 64, "currentAverageValue": "32m"},
        },
        {"type": "Pods", "pods": {"metricName": "qps", "currentAverageValue": "12"}},
    ]
    assert json.loads(annotations[CONDITIONS_ANNOTATION]) == STATUS["conditions"]
    assert annotations["team"] == "lb"


def test_other_metrics_travel_in_the_annotation_in_v1s_shape() -> None:
    v1 = v2_to_v1(v2([*OTHERS, CPU]))
    assert v1["spec"]["targetCPUUtilizationPercentage"] == 50
    assert json.loads(v1["metadata"]["annotations"][METRIC_SPECS_ANNOTATION]) == [
        {"type": "Resource", "resource": {"name": "memory", "targetAverageValue": "100Mi"}},
        {
            "type": "ContainerResource",
            "containerResource": {"name": "cpu", "targetAverageUtilization": 70, "container": "app"},
        },
        {"type": "Pods", "pods": {"metricName": "qps", "targetAverageValue": "10"}},
        {
            "type": "Object",
            "object": {
                "target": {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "name": "main"},
                "metricName": "hits",
                "targetValue": "2k",
                "selector": {"matchLabels": {"a": "b"}},
            },
        },
        {"type": "External", "external": {"metricName": "queue", "targetAverageValue": "30"}},
    ]


@pytest.mark.parametrize("metrics", [[CPU], [*OTHERS, CPU], OTHERS], ids=["cpu", "cpu+others", "others"])
def test_what_a_v1_client_writes_back_converts_to_the_same_v2_object(metrics: list) -> None:
    behavior = {
        "scaleDown": {
            "stabilizationWindowSeconds": 30,
            "selectPolicy": "Max",
            "policies": [{"type": "Pods", "value": 1, "periodSeconds": 15}],
        }
    }
    original = v2(metrics, behavior=behavior)
    v1 = v2_to_v1(original)
    assert json.loads(v1["metadata"]["annotations"][BEHAVIOR_ANNOTATION])["ScaleDown"]["Policies"] == [
        {"Type": "Pods", "Value": 1, "PeriodSeconds": 15}
    ]  # Kubernetes marshals its internal type
    back = v1_to_v2(v1)
    assert back == original  # the annotations are consumed, nothing is lost
    assert v2_to_v1(back) == v1


def test_a_v1_object_without_a_target_gets_the_default_cpu_utilization() -> None:
    v1 = {
        "apiVersion": "autoscaling/v1",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "web"},
        "spec": {"scaleTargetRef": REF, "maxReplicas": 3},
    }
    assert v1_to_v2(v1)["spec"]["metrics"] == [
        {
            "type": "Resource",
            "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}},
        }
    ]


def test_v2_never_stores_the_round_trip_annotations() -> None:
    obj = v2([CPU])
    obj["metadata"]["annotations"][METRIC_SPECS_ANNOTATION] = "[]"
    STRATEGY.default_object(obj)
    assert obj["metadata"]["annotations"] == {"team": "lb"}


def test_the_versions_are_one_kind_with_one_store_key() -> None:
    served_v1, served_v2 = (lookup("autoscaling", v, "horizontalpodautoscalers") for v in ("v1", "v2"))
    assert served_v1 is not None and served_v2 is not None
    assert served_v1.key == served_v2.key and served_v1.storage == "v2" and not served_v2.storage
    assert served_v1.definition == "io.k8s.api.autoscaling.v1.HorizontalPodAutoscaler"


def test_what_v1_serves_passes_the_official_clients_strict_model(official: Any) -> None:
    for metrics in ([CPU], [*OTHERS, CPU]):
        converted = v2_to_v1({**v2(metrics), "metadata": {**v2(metrics)["metadata"], "uid": "u",
                                                           "creationTimestamp": "2026-01-01T00:00:00Z"}})
        model = official("horizontalpodautoscalers.v1", converted)
        assert model.spec.target_cpu_utilization_percentage == 50
        assert model.status.current_cpu_utilization_percentage == 64
