"""Pure logic of the apps/v1 workloads: defaults, validation messages, Table cells, the
controllers' placement and identity rules, and the Deployment's annotation copy."""

from __future__ import annotations

import copy
from datetime import UTC, datetime

import pytest

from sandbox.apiserver.tables import table_for, table_row
from sandbox.apiserver.validation import Invalid, default_object, validate_object
from sandbox.controllers.daemonset import DAEMON_TOLERATIONS, add_daemon_tolerations, should_run, target_node
from sandbox.controllers.deployment import new_rs_annotations
from sandbox.controllers.history import revision_template, template_patch
from sandbox.controllers.statefulset import new_pod, ordinal_of, replica_status
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
