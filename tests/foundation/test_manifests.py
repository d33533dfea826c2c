"""The k8s/ manifests: valid for Kubernetes 1.37, the seed's objects, and least-privilege RBAC."""

from __future__ import annotations

from pathlib import Path

import kubernetes_validate
import pytest
import yaml

K8S = Path(__file__).resolve().parents[2] / "k8s"
MANIFESTS = sorted(K8S.rglob("*.yaml"))


def load_all() -> list[dict]:
    """Every object in every manifest under k8s/."""
    return [doc for path in MANIFESTS for doc in yaml.safe_load_all(path.read_text()) if doc]


def find(kind: str, name: str) -> dict:
    """The one object of that kind and name."""
    matches = [o for o in load_all() if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(matches) == 1, f"expected one {kind}/{name}, found {len(matches)}"
    return matches[0]


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: str(p.relative_to(K8S)))
def test_every_manifest_validates_against_the_official_schemas(path: Path) -> None:
    for doc in yaml.safe_load_all(path.read_text()):
        kubernetes_validate.validate(doc, "1.37", strict=True)


def test_manifest_set_is_the_seeds_objects() -> None:
    kinds = {(o["kind"], o["metadata"]["name"]) for o in load_all()}
    assert kinds == {
        ("Deployment", "backend"), ("Service", "backend-service"), ("Pod", "frontend"),
        ("Deployment", "lb-demo-dashboard"), ("Service", "lb-demo-dashboard"),
        ("ServiceAccount", "lb-demo-dashboard"), ("Role", "lb-demo-dashboard"),
        ("RoleBinding", "lb-demo-dashboard"), ("Ingress", "backend"),
        ("HorizontalPodAutoscaler", "backend"),
    }


def test_backend_deployment_matches_the_seed() -> None:
    deploy = find("Deployment", "backend")
    spec = deploy["spec"]
    pod = spec["template"]["spec"]
    (container,) = pod["containers"]
    assert spec["replicas"] == 3
    assert spec["selector"]["matchLabels"] == {"app": "backend"}
    assert spec["template"]["metadata"]["labels"]["app"] == "backend"
    assert container["image"] == "lb-demo"
    assert [p["containerPort"] for p in container["ports"]] == [8080]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["resources"]["requests"].keys() == {"cpu", "memory"}
    assert pod["terminationGracePeriodSeconds"] > 0
    assert "preStop" in container["lifecycle"]
    assert pod["readinessGates"] == [{"conditionType": "lb-demo.dev/serving"}]


def test_backend_service_selects_by_label_on_a_node_port() -> None:
    svc = find("Service", "backend-service")["spec"]
    assert svc["selector"] == {"app": "backend"}
    (port,) = svc["ports"]
    assert (port["port"], port["nodePort"], svc["type"]) == (80, 30080, "NodePort")
    backend_port = find("Deployment", "backend")["spec"]["template"]["spec"]["containers"][0]["ports"][0]
    assert port["targetPort"] in (backend_port["containerPort"], backend_port["name"])


def test_backend_ingress_sends_every_path_to_the_backend_service() -> None:
    spec = find("Ingress", "backend")["spec"]
    assert spec["ingressClassName"] == "nginx"
    (rule,) = spec["rules"]
    (path,) = rule["http"]["paths"]
    assert (path["path"], path["pathType"]) == ("/", "Prefix")
    assert path["backend"]["service"] == {"name": "backend-service", "port": {"name": "http"}}
    assert find("Service", "backend-service")["spec"]["ports"][0]["name"] == "http"


def test_backend_hpa_targets_the_backend_deployment_by_cpu() -> None:
    spec = find("HorizontalPodAutoscaler", "backend")["spec"]
    assert spec["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "backend"}
    assert (spec["minReplicas"], spec["maxReplicas"]) == (1, 10)
    (metric,) = spec["metrics"]
    assert metric["resource"]["name"] == "cpu"
    assert metric["resource"]["target"] == {"type": "Utilization", "averageUtilization": 50}
    container = find("Deployment", "backend")["spec"]["template"]["spec"]["containers"][0]
    assert "cpu" in container["resources"]["requests"], "utilization is measured against the CPU request"


def test_stray_frontend_pod_is_outside_the_service_selector() -> None:
    pod = find("Pod", "frontend")
    assert pod["metadata"]["labels"] == {"app": "frontend"}


def test_dashboard_role_grants_exactly_what_the_dashboard_needs() -> None:
    kinds = {o["kind"] for o in load_all()}
    assert not kinds & {"ClusterRole", "ClusterRoleBinding"}, "nothing cluster-wide"
    grants = {
        (group, resource, verb)
        for rule in find("Role", "lb-demo-dashboard")["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }
    read = {"get", "list", "watch"}
    expected = {("", r, v) for r in ("pods", "services", "endpoints", "events") for v in read}
    expected |= {("apps", r, v) for r in ("deployments", "replicasets") for v in read}
    expected |= {("discovery.k8s.io", "endpointslices", v) for v in read}
    expected |= {("networking.k8s.io", "ingresses", v) for v in read}
    expected |= {("autoscaling", "horizontalpodautoscalers", v) for v in read}
    expected |= {("apps", "deployments/scale", "patch"), ("", "pods", "delete")}
    expected |= {("", "pods/status", "patch")}  # the readiness switch: the pod's readiness-gate condition
    # the lessons: relabel a pod; set image / apply / undo a rollout / reset the Deployment
    expected |= {("", "pods", "patch"), ("apps", "deployments", "patch"), ("apps", "deployments", "update")}
    assert grants == expected
    binding = find("RoleBinding", "lb-demo-dashboard")
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                                  "name": "lb-demo-dashboard"}
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "lb-demo-dashboard"}]


def test_dashboard_deployment_runs_hardened_as_its_service_account() -> None:
    pod = find("Deployment", "lb-demo-dashboard")["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert pod["serviceAccountName"] == "lb-demo-dashboard"
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    env = {e["name"]: e for e in container["env"]}
    assert env["DJANGO_SETTINGS_MODULE"]["value"] == "dashboard.settings_production"
    assert "secretKeyRef" in env["LBDEMO_SECRET_KEY"]["valueFrom"]
