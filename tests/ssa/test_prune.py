"""`kubectl apply --prune -l ...` without an allowlist: kubectl 1.37 maps and lists every kind of its
default prune set (core ConfigMaps … ReplicationControllers, batch Jobs/CronJobs, Ingresses,
apps DaemonSets … StatefulSets, Namespaces, PersistentVolumes) and deletes what it applied
before and no longer applies."""

from __future__ import annotations

import uuid

import yaml

from tests.conftest import Sandbox


def manifests(label: str, *names: str) -> str:
    """ConfigMaps ``names`` and a Service, all carrying the prune label."""
    docs: list[dict] = [
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": n, "labels": {"set": label}},
            "data": {"k": "v"},
        }
        for n in names
    ]
    docs.append(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "front", "labels": {"set": label}},
            "spec": {"ports": [{"port": 80}], "selector": {"app": "none"}},
        }
    )
    return yaml.safe_dump_all(docs)


def test_prune_deletes_what_the_manifests_no_longer_hold(sandbox: Sandbox, namespace: str) -> None:
    label = uuid.uuid4().hex[:8]
    sandbox.kubectl("apply", "-n", namespace, "-f", "-", stdin=manifests(label, "keep", "drop"))
    sandbox.kubectl("create", "configmap", "bystander", "-n", namespace)
    sandbox.kubectl("label", "configmap", "bystander", "-n", namespace, f"set={label}")
    only = yaml.safe_dump(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "keep", "labels": {"set": label}},
            "data": {"k": "v"},
        }
    )
    result = sandbox.run_kubectl(
        "apply", "--prune", "-l", f"set={label}", "-n", namespace, "-f", "-", stdin=only
    )
    assert result.stdout.splitlines() == [
        "configmap/keep unchanged",
        "configmap/drop pruned",
        "service/front pruned",
    ]
    left = sandbox.kubectl("get", "configmaps,services", "-n", namespace, "-l", f"set={label}", "-o", "name")
    assert left.split() == ["configmap/bystander", "configmap/keep"], "never applied: not pruned"
