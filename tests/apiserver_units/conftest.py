"""Helpers for the unit tests of the API server's pure modules (no server is started here)."""

from __future__ import annotations

import json
from typing import Any

import kubernetes_validate
import pytest
from kubernetes.client import ApiClient

MODEL = {
    "pods": "V1Pod",
    "services": "V1Service",
    "endpoints": "V1Endpoints",
    "events": "CoreV1Event",
    "nodes": "V1Node",
    "namespaces": "V1Namespace",
    "configmaps": "V1ConfigMap",
    "secrets": "V1Secret",
    "leases": "V1Lease",
    "serviceaccounts": "V1ServiceAccount",
    "deployments": "V1Deployment",
    "replicasets": "V1ReplicaSet",
    "statefulsets": "V1StatefulSet",
    "daemonsets": "V1DaemonSet",
    "controllerrevisions": "V1ControllerRevision",
    "endpointslices": "V1EndpointSlice",
    "roles": "V1Role",
    "rolebindings": "V1RoleBinding",
    "ingressclasses": "V1IngressClass",
    "ingresses": "V1Ingress",
    "horizontalpodautoscalers": "V2HorizontalPodAutoscaler",
    "horizontalpodautoscalers.v1": "V1HorizontalPodAutoscaler",
    "jobs": "V1Job",
    "cronjobs": "V1CronJob",
    "poddisruptionbudgets": "V1PodDisruptionBudget",
}


@pytest.fixture(scope="session")
def official() -> Any:
    """Check an object the way real clients would: the official Python client's strict models
    and the official 1.37 JSON schemas (strict: no unknown fields)."""
    client = ApiClient()

    def check(plural: str, obj: dict) -> Any:
        kubernetes_validate.validate(obj, "1.37", strict=True)
        return client.deserialize(json.dumps(obj), MODEL[plural], "application/json")

    return check
