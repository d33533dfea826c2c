"""The Ingress and autoscaling panels: kubectl's view of the two kinds, and the page's snapshot."""

from __future__ import annotations

from datetime import UTC, datetime

from django.template.loader import render_to_string

from dashboard.beyond import hpa_views, ingress_views

NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
INGRESS = {
    "metadata": {"name": "backend", "creationTimestamp": "2026-03-01T11:55:00Z"},
    "spec": {
        "ingressClassName": "nginx",
        "rules": [
            {
                "http": {
                    "paths": [
                        {
                            "path": "/",
                            "pathType": "Prefix",
                            "backend": {"service": {"name": "backend-service", "port": {"name": "http"}}},
                        }
                    ]
                }
            }
        ],
    },
    "status": {
        "loadBalancer": {"ingress": [{"ip": "127.0.0.1", "ports": [{"port": 8080, "protocol": "TCP"}]}]}
    },
}
HPA = {
    "metadata": {"name": "backend", "creationTimestamp": "2026-03-01T11:50:00Z"},
    "spec": {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "backend"},
        "minReplicas": 1,
        "maxReplicas": 10,
        "metrics": [
            {
                "type": "Resource",
                "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}},
            }
        ],
    },
    "status": {
        "currentReplicas": 1,
        "desiredReplicas": 4,
        "lastScaleTime": "2026-03-01T11:59:30Z",
        "currentMetrics": [
            {
                "type": "Resource",
                "resource": {"name": "cpu", "current": {"averageUtilization": 205, "averageValue": "102m"}},
            }
        ],
        "conditions": [
            {
                "type": "AbleToScale",
                "status": "True",
                "reason": "SucceededRescale",
                "message": "the HPA controller was able to update the target scale to 4",
            }
        ],
    },
}
RESCALE = {
    "reason": "SuccessfulRescale",
    "lastTimestamp": "2026-03-01T11:59:30Z",
    "involvedObject": {"kind": "HorizontalPodAutoscaler", "name": "backend"},
    "message": "New size: 4; reason: cpu resource utilization (percentage of request) above target",
}


def test_ingress_view_shows_class_address_and_rules() -> None:
    (view,) = ingress_views([INGRESS], now=NOW)
    assert (view.name, view.ingress_class, view.address, view.age) == (
        "backend",
        "nginx",
        "127.0.0.1:8080",
        "5m",
    )
    (path,) = view.paths
    assert (path.host, path.path, path.path_type, path.backend) == (
        "*",
        "/",
        "Prefix",
        "backend-service:http",
    )
    html = render_to_string("dashboard/_ingresses.html", {"ingresses": [view], "oob": "true"})
    assert 'id="ingresses"' in html and "127.0.0.1:8080" in html and "backend-service:http" in html


def test_hpa_view_shows_utilisation_replicas_and_the_last_rescale() -> None:
    (view,) = hpa_views([HPA], [RESCALE], now=NOW)
    assert (view.current, view.target) == ("205%", "50% of the cpu request")
    assert (view.min_replicas, view.max_replicas, view.current_replicas, view.desired_replicas) == (
        1,
        10,
        1,
        4,
    )
    assert view.last_scale == "30s ago"
    assert view.last_reason.endswith("above target")
    html = render_to_string("dashboard/_hpas.html", {"hpas": [view], "oob": ""})
    assert "205%" in html and "1 → 4" in html and "SucceededRescale" in html


def test_empty_panels_say_what_to_do() -> None:
    assert "No Ingress in this namespace" in render_to_string("dashboard/_ingresses.html", {"ingresses": []})
    assert "kubectl autoscale deployment backend" in render_to_string("dashboard/_hpas.html", {"hpas": []})
    assert hpa_views([{"metadata": {"name": "x"}, "spec": {}}], [], now=NOW)[0].current == "<unknown>"
