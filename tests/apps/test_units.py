"""Pure logic of the apps/v1 workloads: defaults, validation messages, Table cells, the
controllers' placement and identity rules, and the Deployment's annotation copy."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import pytest

from sandbox.apiserver.tables import table_for, table_row
from sandbox.apiserver.validation import Invalid, default_object, validate_object
from sandbox.controllers.daemonset import (
    DAEMON_TOLERATIONS,
    add_daemon_tolerations,
    rolling_plan,
    should_run,
    target_node,
)
from sandbox.controllers.deployment import new_rs_annotations
from sandbox.controllers.history import revision_template, template_patch
from sandbox.controllers.statefulset import new_pod, ordinal_of, replica_status
from sandbox.kubelet.dns import lookup
from sandbox.scheduler import node_affinity_matches
from tests.apiserver_units.conftest import official  # noqa: F401 (fixture)

NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
META = {
    "name": "web",
    "namespace": "default",
    "uid": "u1",
    "resourceVersion": "1",
    "creationTimestamp": "2026-03-01T11:58:00Z",
}
TEMPLATE = {
    "metadata": {"labels": {"app": "web"}},
    "spec": {"containers": [{"name": "app", "image": "lb-demo:latest"}]},
}


def sts(**spec: object) -> dict:
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": dict(META),
        "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": copy.deepcopy(TEMPLATE), **spec},
    }


def ds(**spec: object) -> dict:
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {**META, "name": "agent"},
        "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": copy.deepcopy(TEMPLATE), **spec},
    }


def causes(plural: str, obj: dict) -> list[str]:
    with pytest.raises(Invalid) as exc:
        validate_object(plural, default_object(plural, obj))
    return [f"{c['field']}: {c['message']}" for c in exc.value.causes]


def test_defaults_match_the_api_server_and_satisfy_the_official_client(official) -> None:  # noqa: F811
    obj = default_object("statefulsets", sts())
    assert obj["spec"]["podManagementPolicy"] == "OrderedReady"
    assert obj["spec"]["updateStrategy"] == {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}
    assert obj["spec"]["persistentVolumeClaimRetentionPolicy"] == {
        "whenDeleted": "Retain",
        "whenScaled": "Retain",
    }
    assert (obj["spec"]["replicas"], obj["spec"]["revisionHistoryLimit"]) == (1, 10)
    validate_object("statefulsets", obj)
    official("statefulsets", obj)
    obj = default_object("daemonsets", ds())
    assert obj["spec"]["updateStrategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0},
    }
    validate_object("daemonsets", obj)
    official("daemonsets", obj)
    revision = {
        "apiVersion": "apps/v1",
        "kind": "ControllerRevision",
        "metadata": dict(META),
        "data": template_patch(obj),
        "revision": 1,
    }
    validate_object("controllerrevisions", revision)
    official("controllerrevisions", revision)


def test_invalid_workloads_name_the_real_causes() -> None:
    assert causes(
        "daemonsets",
        ds(
            updateStrategy={"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": "0%"}}
        ),
    ) == ["spec.updateStrategy.rollingUpdate.maxUnavailable: Required value: cannot be 0 when maxSurge is 0"]
    no_selector = ds()
    del no_selector["spec"]["selector"]
    assert causes("daemonsets", no_selector) == [
        'spec.template.metadata.labels: Invalid value: {"app":"web"}: '
        "`selector` does not match template `labels`"
    ]
    assert causes("daemonsets", ds(updateStrategy={"type": "Sometimes"})) == [
        'spec.updateStrategy: Unsupported value: {"type":"Sometimes"}: '
        'supported values: "OnDelete", "RollingUpdate"'
    ]
    assert causes("statefulsets", sts(selector={"matchLabels": {}})) == [
        'spec.selector: Invalid value: {"matchLabels":{}}: empty selector is invalid for statefulset'
    ]
    assert causes(
        "statefulsets", sts(updateStrategy={"type": "OnDelete", "rollingUpdate": {"partition": 1}})
    ) == [
        'spec.updateStrategy.rollingUpdate: Invalid value: {"partition":1}: only allowed for updateStrategy '
        "'RollingUpdate'"
    ]
    bad_revision = {
        "apiVersion": "apps/v1",
        "kind": "ControllerRevision",
        "metadata": dict(META),
        "revision": -1,
    }
    assert causes("controllerrevisions", bad_revision) == [
        "data: Required value: data is mandatory",
        "revision: Invalid value: -1: must be greater than or equal to 0",
    ]


def test_table_cells_like_kubectl() -> None:
    status = {"replicas": 3, "readyReplicas": 2}
    assert table_row("statefulsets", {**sts(replicas=3), "status": status}, now=NOW)["cells"] == [
        "web",
        "2/3",
        "2m",
        "app",
        "lb-demo:latest",
    ]
    daemon = ds()
    daemon["spec"]["template"]["spec"]["nodeSelector"] = {"disk": "ssd"}
    daemon["status"] = {
        "desiredNumberScheduled": 3,
        "currentNumberScheduled": 3,
        "numberReady": 2,
        "updatedNumberScheduled": 1,
        "numberAvailable": 2,
    }
    assert table_row("daemonsets", daemon, now=NOW)["cells"] == [
        "agent",
        3,
        3,
        2,
        1,
        2,
        "disk=ssd",
        "2m",
        "app",
        "lb-demo:latest",
        "app=web",
    ]
    revision = {
        "metadata": {
            **META,
            "name": "web-abc",
            "ownerReferences": [
                {
                    "apiVersion": "apps/v1",
                    "kind": "StatefulSet",
                    "name": "web",
                    "uid": "u1",
                    "controller": True,
                }
            ],
        },
        "revision": 4,
    }
    assert table_row("controllerrevisions", revision, now=NOW)["cells"] == [
        "web-abc",
        "statefulset.apps/web",
        4,
        "2m",
    ]
    assert [c["name"] for c in table_for("daemonsets", [daemon])["columnDefinitions"]] == [
        "Name",
        "Desired",
        "Current",
        "Ready",
        "Up-to-date",
        "Available",
        "Node Selector",
        "Age",
        "Containers",
        "Images",
        "Selector",
    ]


def test_statefulset_pod_identity_and_claims() -> None:
    obj = default_object(
        "statefulsets", sts(serviceName="web", volumeClaimTemplates=[{"metadata": {"name": "data"}}])
    )
    pod = new_pod(obj, obj["spec"]["template"], 2, "web-rev")
    assert pod["metadata"]["name"] == "web-2"
    assert pod["metadata"]["labels"] == {
        "app": "web",
        "statefulset.kubernetes.io/pod-name": "web-2",
        "apps.kubernetes.io/pod-index": "2",
        "controller-revision-hash": "web-rev",
    }
    assert (pod["spec"]["hostname"], pod["spec"]["subdomain"]) == ("web-2", "web")
    assert pod["spec"]["volumes"] == [{"name": "data", "emptyDir": {}}]
    assert (ordinal_of("web", "web-12"), ordinal_of("web", "web-x"), ordinal_of("web", "webby-1")) == (
        12,
        None,
        None,
    )
    ready = {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}
    pods = [
        {"metadata": {"labels": {"controller-revision-hash": rev}}, "status": st}
        for rev, st in (("a", ready), ("b", ready), ("b", {"phase": "Pending"}))
    ]
    assert replica_status(pods, 0, "a", "b", NOW.timestamp()) == {
        "replicas": 3,
        "readyReplicas": 2,
        "availableReplicas": 2,
        "currentReplicas": 1,
        "updatedReplicas": 2,
    }
    assert revision_template({"data": template_patch(obj)}) == obj["spec"]["template"]


def node(name: str, *taints: dict, **labels: str) -> dict:
    return {"metadata": {"name": name, "labels": labels}, "spec": {"taints": list(taints)}}


SIMULATED = {"key": "lb-demo.dev/simulated", "value": "true", "effect": "NoSchedule"}


def test_daemonset_placement_rules() -> None:
    plain = default_object("daemonsets", ds())
    assert should_run(plain, node("n1")) == (True, True)
    assert should_run(plain, node("sim", SIMULATED)) == (False, True)  # simulated nodes: only when tolerated
    tolerant = default_object("daemonsets", ds())
    tolerant["spec"]["template"]["spec"]["tolerations"] = [
        {"key": "lb-demo.dev/simulated", "operator": "Exists"}
    ]
    assert should_run(tolerant, node("sim", SIMULATED)) == (True, True)
    assert should_run(plain, node("n1", {"key": "evict", "effect": "NoExecute"})) == (False, False)
    for key in ("node.kubernetes.io/unschedulable", "node.kubernetes.io/memory-pressure"):
        assert should_run(plain, node("n1", {"key": key, "effect": "NoSchedule"})) == (True, True)
    assert should_run(
        plain, node("n1", {"key": "node.kubernetes.io/network-unavailable", "effect": "NoSchedule"})
    ) == (False, True)
    plain["spec"]["template"]["spec"]["nodeSelector"] = {"disk": "ssd"}
    assert should_run(plain, node("n1")) == (False, False)
    assert should_run(plain, node("n1", disk="ssd")) == (True, True)
    spec: dict = {"hostNetwork": True, "tolerations": [dict(DAEMON_TOLERATIONS[0])]}
    add_daemon_tolerations(spec)
    assert len(spec["tolerations"]) == len(DAEMON_TOLERATIONS) + 1


def test_node_affinity_filter_honours_match_fields_and_expressions() -> None:
    pinned = {
        "spec": {
            "affinity": {
                "nodeAffinity": {
                    "requiredDuringSchedulingIgnoredDuringExecution": {
                        "nodeSelectorTerms": [
                            {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n2"]}]}
                        ]
                    }
                }
            }
        }
    }
    assert [n for n in ("n1", "n2", "n3") if node_affinity_matches(pinned, node(n))] == ["n2"]
    assert target_node(pinned) == "n2"
    zoned = {
        "spec": {
            "affinity": {
                "nodeAffinity": {
                    "requiredDuringSchedulingIgnoredDuringExecution": {
                        "nodeSelectorTerms": [
                            {"matchExpressions": [{"key": "zone", "operator": "NotIn", "values": ["a"]}]},
                            {"matchExpressions": [{"key": "gpu", "operator": "Exists"}]},
                        ]
                    }
                }
            }
        }
    }
    assert node_affinity_matches(zoned, node("n1", zone="b"))
    assert node_affinity_matches(zoned, node("n1", zone="a", gpu="1"))
    assert not node_affinity_matches(zoned, node("n1", zone="a"))


def test_deployment_annotations_copied_to_the_new_replicaset() -> None:
    deploy = {
        "metadata": {
            "annotations": {
                "kubernetes.io/change-cause": "v2",
                "team": "lb",
                "deployment.kubernetes.io/revision": "7",
                "kubectl.kubernetes.io/last-applied-configuration": "{}",
            }
        }
    }
    assert new_rs_annotations(deploy, {}, 1) == {
        "kubernetes.io/change-cause": "v2",
        "team": "lb",
        "deployment.kubernetes.io/revision": "1",
    }
    have = {"team": "lb", "kubernetes.io/change-cause": "v2", "deployment.kubernetes.io/revision": "3"}
    assert new_rs_annotations(deploy, have, 3) == {}
    rolled = new_rs_annotations(deploy, {**have, "deployment.kubernetes.io/revision-history": "1"}, 5)
    assert rolled == {
        "deployment.kubernetes.io/revision": "5",
        "deployment.kubernetes.io/revision-history": "1,3",
    }


def test_cluster_dns_serves_headless_services_and_statefulset_pod_names() -> None:
    ready = {"conditions": [{"type": "Ready", "status": "True"}]}
    services: list[dict[str, Any]] = [
        {
            "metadata": {"name": "web", "namespace": "ns"},
            "spec": {"clusterIP": "None", "selector": {"app": "web"}},
        },
        {"metadata": {"name": "api", "namespace": "ns"}, "spec": {"clusterIP": "127.96.0.9"}},
    ]
    pods = [
        {
            "metadata": {"name": f"web-{i}", "namespace": "ns", "labels": {"app": "web"}},
            "spec": {"hostname": f"web-{i}", "subdomain": "web"},
            "status": {**(ready if i < 2 else {}), "podIP": f"127.0.0.{i + 10}"},
        }
        for i in range(3)
    ]
    assert lookup("web.ns.svc.cluster.local", services, pods) == ["127.0.0.10", "127.0.0.11"]
    assert lookup("web-1.web.ns.svc", services, pods) == ["127.0.0.11"]
    assert lookup("web-2.web.ns.svc", services, pods) == []  # not ready, not published
    assert lookup("web-0.web.other.svc", services, pods) == []
    assert lookup("api.ns.svc", services, pods) == ["127.96.0.9"]
    assert lookup("x.api.ns.svc", services, pods) == []


def daemon_pod(name: str, node: str, revision: str, *, ready: bool = True) -> dict[str, Any]:
    conditions = [{"type": "Ready", "status": "True" if ready else "False"}]
    return {
        "metadata": {
            "name": name,
            "labels": {"controller-revision-hash": revision},
            "creationTimestamp": "2026-03-01T11:00:00Z",
        },
        "spec": {"nodeName": node},
        "status": {"phase": "Running", "conditions": conditions},
    }


def test_daemonset_rolling_plan_within_max_unavailable_and_max_surge() -> None:
    nodes = {n: node(n) for n in ("n1", "n2", "n3", "n4")}
    now = NOW.timestamp()
    plain = default_object("daemonsets", ds())
    old = {n: [daemon_pod(f"old-{n}", n, "old")] for n in nodes}
    deleted, created = rolling_plan(plain, nodes, old, "new", now)
    assert ([p["metadata"]["name"] for p in deleted], created) == (["old-n1"], [])
    # n1's old pod is gone and its new one not created yet: that node is the one unavailable.
    deleted, _ = rolling_plan(plain, nodes, {n: old[n] for n in ("n2", "n3", "n4")}, "new", now)
    assert deleted == []
    unready_new = {**old, "n1": [daemon_pod("new-n1", "n1", "new", ready=False)]}
    assert rolling_plan(plain, nodes, unready_new, "new", now) == ([], [])
    broken = {**unready_new, "n3": [daemon_pod("old-n3", "n3", "old", ready=False)]}
    assert [p["metadata"]["name"] for p in rolling_plan(plain, nodes, broken, "new", now)[0]] == ["old-n3"]
    plain["spec"]["updateStrategy"]["rollingUpdate"]["maxUnavailable"] = "50%"
    assert [p["metadata"]["name"] for p in rolling_plan(plain, nodes, old, "new", now)[0]] == [
        "old-n1",
        "old-n2",
    ]

    surge = default_object(
        "daemonsets",
        ds(updateStrategy={"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}}),
    )
    assert rolling_plan(surge, nodes, old, "new", now) == ([], ["n1"])
    surged = {**old, "n1": [*old["n1"], daemon_pod("new-n1", "n1", "new", ready=False)]}
    assert rolling_plan(surge, nodes, surged, "new", now) == ([], [])
    surged["n1"][1]["status"]["conditions"][0]["status"] = "True"
    deleted, created = rolling_plan(surge, nodes, surged, "new", now)
    assert ([p["metadata"]["name"] for p in deleted], created) == (["old-n1"], ["n2"])


def test_claim_templates_need_access_modes_and_storage() -> None:
    assert causes("statefulsets", sts(volumeClaimTemplates=[{"metadata": {"name": "data"}, "spec": {}}])) == [
        "spec.volumeClaimTemplates[0].spec.accessModes: Required value: at least 1 access mode is required",
        "spec.volumeClaimTemplates[0].spec.resources[storage]: Required value",
    ]
