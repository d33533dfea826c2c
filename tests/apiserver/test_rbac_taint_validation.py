"""Invalid RBAC objects and Node taints through the bundled kubectl 1.37 against the shared
sandbox: the user reads kube-apiserver's own 422 message, and nothing is created or changed."""

from __future__ import annotations

import json
import uuid

import pytest

from tests.conftest import Sandbox

from .conftest import kubectl

pytestmark = pytest.mark.sandbox

RBAC = "rbac.authorization.k8s.io"


def create(box: Sandbox, obj: dict) -> str:
    """`kubectl create -f -` expected to fail; its stderr."""
    result = kubectl(box, "create", "-f", "-", check=False, stdin=json.dumps(obj))
    assert result.returncode == 1, result.stdout
    return result.stderr


def absent(box: Sandbox, *args: str) -> bool:
    result = kubectl(box, "get", *args, check=False)
    return result.returncode == 1 and "NotFound" in result.stderr


def test_role_rules_need_api_groups_and_cluster_roles_verbs(sandbox: Sandbox, namespace: str) -> None:
    role = {"apiVersion": f"{RBAC}/v1", "kind": "Role",
            "metadata": {"name": "no-groups", "namespace": namespace},
            "rules": [{"resources": ["pods"], "verbs": ["get"]}]}
    assert ('The Role "no-groups" is invalid: rules[0].apiGroups: Required value: resource rules must supply '
            "at least one api group") in create(sandbox, role)
    assert absent(sandbox, "role", "no-groups", "-n", namespace)
    name = f"no-verbs-{uuid.uuid4().hex[:6]}"
    cluster_role = {"apiVersion": f"{RBAC}/v1", "kind": "ClusterRole", "metadata": {"name": name},
                    "rules": [{"nonResourceURLs": ["/healthz"]}]}
    assert (f'The ClusterRole "{name}" is invalid: rules[0].verbs: Required value: verbs must contain at '
            "least one value") in create(sandbox, cluster_role)
    assert absent(sandbox, "clusterrole", name)


def test_role_binding_role_ref_cannot_change(sandbox: Sandbox, namespace: str) -> None:
    kubectl(sandbox, "create", "rolebinding", "viewers", "-n", namespace, "--clusterrole=view", "--user=ann")
    shown = kubectl(sandbox, "get", "rolebinding", "viewers", "-n", namespace, "-o", "json")
    binding = json.loads(shown.stdout)
    binding["roleRef"]["name"] = "edit"
    result = kubectl(sandbox, "replace", "-f", "-", check=False, stdin=json.dumps(binding))
    assert result.returncode == 1
    assert ('The RoleBinding "viewers" is invalid: roleRef: Invalid value: rbac.RoleRef{APIGroup:'
            f'"{RBAC}", Kind:"ClusterRole", Name:"edit"}}: cannot change roleRef') in result.stderr
    shown = kubectl(sandbox, "get", "rolebinding", "viewers", "-n", namespace, "-o", "wide").stdout
    assert "ClusterRole/view" in shown


def test_cluster_role_binding_refers_to_a_cluster_role(sandbox: Sandbox) -> None:
    name = f"to-role-{uuid.uuid4().hex[:6]}"
    binding = {"apiVersion": f"{RBAC}/v1", "kind": "ClusterRoleBinding", "metadata": {"name": name},
               "roleRef": {"apiGroup": RBAC, "kind": "Role", "name": "view"},
               "subjects": [{"kind": "Robot", "name": "r2"}]}
    assert (f'The ClusterRoleBinding "{name}" is invalid: \n'
            '* roleRef.kind: Unsupported value: "Role": supported values: "ClusterRole"\n'
            '* subjects[0].kind: Unsupported value: "Robot": supported values: "ServiceAccount", "User", '
            '"Group"\n') in create(sandbox, binding)
    assert absent(sandbox, "clusterrolebinding", name)


def test_node_taints_are_unique_by_key_and_effect(sandbox: Sandbox) -> None:
    name = f"tainted-{uuid.uuid4().hex[:6]}"
    node = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name},
            "spec": {"taints": [{"key": "dedicated", "value": "a", "effect": "NoSchedule"},
                                {"key": "dedicated", "value": "b", "effect": "NoSchedule"},
                                {"key": "dedicated", "effect": "Sometimes"}]}}
    assert (f'The Node "{name}" is invalid: \n'
            '* metadata.taints[1]: Duplicate value: core.Taint{Key:"dedicated", Value:"b", '
            'Effect:"NoSchedule", TimeAdded:<nil>}: taints must be unique by key and effect pair\n'
            '* metadata.taints[2].effect: Unsupported value: "Sometimes": supported values: "NoSchedule", '
            '"PreferNoSchedule", "NoExecute"\n') in create(sandbox, node)
    assert absent(sandbox, "node", name)
