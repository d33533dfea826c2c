"""RBAC enforced for ServiceAccount tokens, as kube-apiserver evaluates it, through the bundled
kubectl 1.37 and the official Python client: nothing is allowed without a binding (403 with
the real message), Roles and ClusterRoles granted by RoleBindings and ClusterRoleBindings,
aggregated ClusterRoles, the default view role, `kubectl auth can-i` (SelfSubjectAccessReview)
and `can-i --list` (SelfSubjectRulesReview); the kubeconfig's admin is cluster-admin."""

from __future__ import annotations

import functools
import json
import subprocess

import pytest

from tests import polling
from tests.conftest import KUBECTL, Sandbox

from .conftest import kubectl

pytestmark = pytest.mark.sandbox

wait_for = functools.partial(polling.wait_until, timeout=30.0, interval=0.2)
RBAC = "rbac.authorization.k8s.io/v1"


def as_token(box: Sandbox, token: str, *args: str) -> subprocess.CompletedProcess:
    """kubectl with a ServiceAccount's token instead of the admin's."""
    return subprocess.run([str(KUBECTL), f"--token={token}", *args], env=box.kubectl_env(),
                          capture_output=True, text=True, timeout=60)


def account(box: Sandbox, namespace: str, name: str) -> str:
    """Create a ServiceAccount and return a token for it."""
    kubectl(box, "create", "serviceaccount", name, "-n", namespace)
    return kubectl(box, "create", "token", name, "-n", namespace).stdout.strip()


def test_nothing_is_allowed_without_a_binding(sandbox: Sandbox, namespace: str) -> None:
    token = account(sandbox, namespace, "nobody")
    user = f"system:serviceaccount:{namespace}:nobody"
    result = as_token(sandbox, token, "get", "pods", "-n", namespace)
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f'Error from server (Forbidden): pods is forbidden: User "{user}" cannot list resource "pods" in API '
        f'group "" in the namespace "{namespace}"')
    named = as_token(sandbox, token, "get", "deployment", "web", "-n", namespace)
    assert named.stderr.strip() == (
        f'Error from server (Forbidden): deployments.apps "web" is forbidden: User "{user}" cannot get '
        f'resource "deployments" in API group "apps" in the namespace "{namespace}"')
    nodes = as_token(sandbox, token, "get", "nodes")
    assert 'cannot list resource "nodes" in API group "" at the cluster scope' in nodes.stderr
    can_i = as_token(sandbox, token, "auth", "can-i", "list", "pods", "-n", namespace)
    assert (can_i.returncode, can_i.stdout.strip()) == (1, "no")
    assert as_token(sandbox, token, "auth", "whoami").returncode == 0  # system:basic-user
    assert kubectl(sandbox, "auth", "can-i", "*", "*").stdout.strip() == "yes"


def test_role_and_role_binding_grant_within_their_namespace(sandbox: Sandbox, namespace: str) -> None:
    token = account(sandbox, namespace, "reader")
    kubectl(sandbox, "create", "role", "pod-reader", "-n", namespace, "--verb=get,list,watch",
            "--resource=pods")
    kubectl(sandbox, "create", "rolebinding", "read-pods", "-n", namespace, "--role=pod-reader",
            f"--serviceaccount={namespace}:reader")
    wait_for(lambda: as_token(sandbox, token, "get", "pods", "-n", namespace).returncode == 0)
    can_i = functools.partial(as_token, sandbox, token, "auth", "can-i")
    assert can_i("list", "pods", "-n", namespace).stdout.strip() == "yes"
    assert can_i("delete", "pods", "-n", namespace).stdout.strip() == "no"
    assert can_i("list", "pods", "-n", "default").stdout.strip() == "no"
    listed = can_i("--list", "-n", namespace).stdout
    assert any(line.split()[:1] == ["pods"] and line.rstrip().endswith("[get list watch]")
               for line in listed.splitlines())
    from kubernetes import client

    configuration = client.Configuration()
    configuration.host, configuration.ssl_ca_cert = sandbox.url, str(sandbox.state_dir / "ca.crt")
    configuration.api_key = {"authorization": f"Bearer {token}"}
    review = client.AuthorizationV1Api(client.ApiClient(configuration)).create_self_subject_access_review({
        "spec": {"resourceAttributes": {"namespace": namespace, "verb": "watch", "resource": "pods"}}})
    assert review.status.allowed is True
    assert review.status.reason == (f'RBAC: allowed by RoleBinding "read-pods/{namespace}" of Role '
                                    f'"pod-reader" to ServiceAccount "reader/{namespace}"')


def test_cluster_roles_default_roles_and_aggregation(sandbox: Sandbox, namespace: str) -> None:
    token = account(sandbox, namespace, "viewer")
    kubectl(sandbox, "create", "rolebinding", "view", "-n", namespace, "--clusterrole=view",
            f"--serviceaccount={namespace}:viewer")
    wait_for(lambda: as_token(sandbox, token, "get", "deployments", "-n", namespace).returncode == 0)
    assert as_token(sandbox, token, "get", "secrets", "-n", namespace).returncode == 1  # view hides secrets
    assert as_token(sandbox, token, "get", "endpoints", "-A").returncode == 1
    name = f"monitoring-{namespace}"
    label = {f"example.com/aggregate-to-{name}": "true"}
    for item in [
        {"apiVersion": RBAC, "kind": "ClusterRole", "metadata": {"name": name},
         "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": label}]}, "rules": []},
        {"apiVersion": RBAC, "kind": "ClusterRole",
         "metadata": {"name": f"{name}-endpoints", "labels": label},
         "rules": [{"apiGroups": [""], "resources": ["endpoints"], "verbs": ["list"]}]},
        {"apiVersion": RBAC, "kind": "ClusterRoleBinding", "metadata": {"name": name},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
         "subjects": [{"kind": "ServiceAccount", "name": "viewer", "namespace": namespace}]},
    ]:
        kubectl(sandbox, "apply", "-f", "-", stdin=json.dumps(item))
    wait_for(lambda: as_token(sandbox, token, "get", "endpoints", "-A").returncode == 0)
    bindings = kubectl(sandbox, "get", "clusterrolebinding", name, "-o", "wide").stdout
    assert f"ClusterRole/{name}" in bindings and f"{namespace}/viewer" in bindings
    missing_namespace = kubectl(sandbox, "create", "-f", "-", check=False, stdin=json.dumps({
        "apiVersion": RBAC, "kind": "ClusterRoleBinding", "metadata": {"name": f"{name}-bad"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
        "subjects": [{"kind": "ServiceAccount", "name": "viewer"}]}))
    assert (f'The ClusterRoleBinding "{name}-bad" is invalid: subjects[0].namespace: Required value'
            in missing_namespace.stderr)
    kubectl(sandbox, "delete", "clusterrolebinding", name)
    kubectl(sandbox, "delete", "clusterrole", name, f"{name}-endpoints")
