"""Server-side Tables: the columns and cells `kubectl get` prints, computed like the real printers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from sandbox.apiserver.tables import (
    format_endpoints,
    human_duration,
    table_for,
    table_row,
    table_supported,
    watch_event_table,
)

NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)


def ago(seconds: float) -> str:
    return (NOW - timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


def cells(plural: str, obj: dict) -> list:
    return table_row(plural, obj, now=NOW)["cells"]


def pod(
    *statuses: dict, phase: str = "Running", deleting: bool = False, init: list | None = None, **extra
) -> dict:
    metadata = {
        "name": "backend-5d8f7-abcde",
        "namespace": "default",
        "creationTimestamp": ago(200),
        "uid": "u",
    }
    if deleting:
        metadata["deletionTimestamp"] = ago(1)
    spec: dict = {"containers": [{"name": s["name"]} for s in statuses] or [{"name": "backend"}]}
    status: dict = {"phase": phase, "containerStatuses": list(statuses), **extra}
    if init is not None:
        spec["initContainers"] = [{"name": s["name"]} for s in init]
        status["initContainerStatuses"] = init
    return {"metadata": metadata, "spec": spec, "status": status}


def running(
    name: str = "backend", *, ready: bool = True, restarts: int = 0, last: float | None = None
) -> dict:
    status: dict = {
        "name": name,
        "ready": ready,
        "restartCount": restarts,
        "state": {"running": {"startedAt": ago(60)}},
    }
    if last is not None:
        status["lastState"] = {"terminated": {"exitCode": 1, "reason": "Error", "finishedAt": ago(last)}}
    return status


def waiting(reason: str, *, restarts: int = 0, last: float | None = None) -> dict:
    status: dict = {
        "name": "backend",
        "ready": False,
        "restartCount": restarts,
        "state": {"waiting": {"reason": reason}},
    }
    if last is not None:
        status["lastState"] = {"terminated": {"exitCode": 1, "reason": "Error", "finishedAt": ago(last)}}
    return status


@pytest.mark.parametrize(
    ("obj", "ready", "status", "restarts"),
    [
        (pod(waiting("ContainerCreating"), phase="Pending"), "0/1", "ContainerCreating", "0"),
        (pod(running()), "1/1", "Running", "0"),
        (pod(running(ready=False)), "0/1", "Running", "0"),
        (pod(running(), deleting=True), "1/1", "Terminating", "0"),
        (pod(waiting("CrashLoopBackOff", restarts=5, last=300)), "0/1", "CrashLoopBackOff", "5 (5m ago)"),
        (pod(waiting("ImagePullBackOff"), phase="Pending"), "0/1", "ImagePullBackOff", "0"),
        (pod(waiting("ErrImagePull"), phase="Pending"), "0/1", "ErrImagePull", "0"),
        (pod(phase="Pending"), "0/1", "Pending", "0"),
        (
            pod(
                {
                    "name": "backend",
                    "ready": False,
                    "restartCount": 0,
                    "state": {"terminated": {"exitCode": 0, "reason": "Completed"}},
                },
                phase="Succeeded",
            ),
            "0/1",
            "Completed",
            "0",
        ),
        (
            pod(
                {
                    "name": "backend",
                    "ready": False,
                    "restartCount": 0,
                    "state": {"terminated": {"exitCode": 137, "signal": 9}},
                },
                phase="Failed",
            ),
            "0/1",
            "Signal:9",
            "0",
        ),
        (
            pod(
                waiting("PodInitializing"),
                phase="Pending",
                init=[{"name": "setup", "ready": False, "restartCount": 0, "state": {"running": {}}}],
            ),
            "0/1",
            "Init:0/1",
            "0",
        ),
        (
            pod(
                waiting("PodInitializing"),
                phase="Pending",
                init=[
                    {
                        "name": "setup",
                        "ready": False,
                        "restartCount": 3,
                        "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                    }
                ],
            ),
            "0/1",
            "Init:CrashLoopBackOff",
            "3",
        ),
        (pod(running(), phase="Running", reason="NodeLost", deleting=True), "1/1", "Unknown", "0"),
        (pod(running("a"), running("b", ready=False, restarts=2, last=30)), "1/2", "Running", "2 (30s ago)"),
    ],
    ids=[
        "ContainerCreating",
        "Running",
        "running-not-ready",
        "Terminating",
        "CrashLoopBackOff",
        "ImagePullBackOff",
        "ErrImagePull",
        "Pending",
        "Completed",
        "killed-by-signal",
        "Init",
        "Init-CrashLoopBackOff",
        "NodeLost",
        "two-containers",
    ],
)
def test_pod_status_cells_like_kubectl(obj: dict, ready: str, status: str, restarts: str) -> None:
    row = cells("pods", obj)
    assert row[:5] == ["backend-5d8f7-abcde", ready, status, restarts, "3m20s"]


def test_pod_wide_cells_and_row_conditions() -> None:
    obj = pod(running(), podIP="127.244.0.5", podIPs=[{"ip": "127.244.0.5"}])
    obj["spec"]["nodeName"] = "sandbox-node-2"
    assert cells("pods", obj)[5:] == ["127.244.0.5", "sandbox-node-2", "<none>", "<none>"]
    obj["spec"]["readinessGates"] = [{"conditionType": "example.com/gate"}]
    obj["status"]["conditions"] = [{"type": "example.com/gate", "status": "True"}]
    assert cells("pods", obj)[8] == "1/1"
    done = pod(phase="Succeeded")
    assert table_row("pods", done, now=NOW)["conditions"] == [
        {
            "type": "Completed",
            "status": "True",
            "reason": "Succeeded",
            "message": "The pod has completed successfully.",
        }
    ]


def test_table_shape_and_columns() -> None:
    table = table_for("pods", [pod(running())], resource_version="42")
    assert (table["kind"], table["apiVersion"], table["metadata"]) == (
        "Table",
        "meta.k8s.io/v1",
        {"resourceVersion": "42"},
    )
    names = [(c["name"], c["priority"]) for c in table["columnDefinitions"]]
    assert names == [
        ("Name", 0),
        ("Ready", 0),
        ("Status", 0),
        ("Restarts", 0),
        ("Age", 0),
        ("IP", 1),
        ("Node", 1),
        ("Nominated Node", 1),
        ("Readiness Gates", 1),
    ]
    for column in table["columnDefinitions"]:
        assert set(column) == {"name", "type", "format", "description", "priority"}
    assert table["columnDefinitions"][0]["format"] == "name"
    assert table["columnDefinitions"][0]["description"].startswith("Name must be unique within a namespace.")
    assert table["rows"][0]["object"] == {
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": pod(running())["metadata"],
    }


@pytest.mark.parametrize(
    ("plural", "columns"),
    [
        (
            "deployments",
            ["Name", "Ready", "Up-to-date", "Available", "Age", "Containers", "Images", "Selector"],
        ),
        ("replicasets", ["Name", "Desired", "Current", "Ready", "Age", "Containers", "Images", "Selector"]),
        ("services", ["Name", "Type", "Cluster-IP", "External-IP", "Port(s)", "Age", "Selector"]),
        ("endpoints", ["Name", "Endpoints", "Age"]),
        ("endpointslices", ["Name", "AddressType", "Ports", "Endpoints", "Age"]),
        (
            "events",
            [
                "Last Seen",
                "Type",
                "Reason",
                "Object",
                "Subobject",
                "Source",
                "Message",
                "First Seen",
                "Count",
                "Name",
            ],
        ),
        (
            "nodes",
            [
                "Name",
                "Status",
                "Roles",
                "Age",
                "Version",
                "Internal-IP",
                "External-IP",
                "OS-Image",
                "Kernel-Version",
                "Container-Runtime",
            ],
        ),
        ("namespaces", ["Name", "Status", "Age"]),
        ("configmaps", ["Name", "Data", "Age"]),
        ("serviceaccounts", ["Name", "Secrets", "Age"]),
        ("roles", ["Name", "Created At"]),
        ("rolebindings", ["Name", "Role", "Age", "Users", "Groups", "ServiceAccounts"]),
    ],
)
def test_every_kind_has_the_real_columns_and_one_cell_each(plural: str, columns: list[str]) -> None:
    assert table_supported(plural)
    table = table_for(plural, [{"metadata": {"name": "x", "creationTimestamp": ago(5)}}])
    assert [c["name"] for c in table["columnDefinitions"]] == columns
    assert len(table["rows"][0]["cells"]) == len(columns)


def test_deployment_and_replicaset_cells() -> None:
    template = {
        "spec": {"containers": [{"name": "backend", "image": "lb-demo"}, {"name": "log", "image": "busybox"}]}
    }
    dep = {
        "metadata": {"name": "backend", "creationTimestamp": ago(3 * 86400 + 5 * 3600)},
        "spec": {
            "replicas": 5,
            "template": template,
            "selector": {
                "matchLabels": {"app": "backend"},
                "matchExpressions": [
                    {"key": "tier", "operator": "In", "values": ["web", "api"]},
                    {"key": "canary", "operator": "DoesNotExist"},
                ],
            },
        },
        "status": {"readyReplicas": 3, "updatedReplicas": 4, "availableReplicas": 3},
    }
    assert cells("deployments", dep) == [
        "backend",
        "3/5",
        4,
        3,
        "3d5h",
        "backend,log",
        "lb-demo,busybox",
        "app=backend,!canary,tier in (api,web)",
    ]
    rs = {
        "metadata": {"name": "backend-5d8f7", "creationTimestamp": ago(59)},
        "spec": {"replicas": 3, "template": template, "selector": {"matchLabels": {"app": "backend"}}},
        "status": {"replicas": 3, "readyReplicas": 2},
    }
    assert cells("replicasets", rs) == [
        "backend-5d8f7",
        3,
        3,
        2,
        "59s",
        "backend,log",
        "lb-demo,busybox",
        "app=backend",
    ]


@pytest.mark.parametrize(
    ("spec", "status", "expected"),
    [
        (
            {
                "type": "NodePort",
                "clusterIP": "10.96.0.5",
                "clusterIPs": ["10.96.0.5"],
                "selector": {"app": "backend"},
                "ports": [{"port": 80, "nodePort": 30080, "protocol": "TCP"}],
            },
            {},
            ["NodePort", "10.96.0.5", "<none>", "80:30080/TCP", "app=backend"],
        ),
        (
            {
                "type": "ClusterIP",
                "clusterIP": "None",
                "ports": [{"port": 80, "protocol": "TCP"}, {"port": 53, "protocol": "UDP"}],
            },
            {},
            ["ClusterIP", "None", "<none>", "80/TCP,53/UDP", "<none>"],
        ),
        (
            {"type": "LoadBalancer", "clusterIP": "10.96.0.6", "ports": [{"port": 443, "nodePort": 31443}]},
            {"loadBalancer": {}},
            ["LoadBalancer", "10.96.0.6", "<pending>", "443:31443/TCP", "<none>"],
        ),
        (
            {"type": "LoadBalancer", "clusterIP": "10.96.0.6", "ports": []},
            {"loadBalancer": {"ingress": [{"ip": "192.0.2.1"}]}},
            ["LoadBalancer", "10.96.0.6", "192.0.2.1", "<none>", "<none>"],
        ),
        (
            {"type": "ExternalName", "externalName": "example.com"},
            {},
            ["ExternalName", "<none>", "example.com", "<none>", "<none>"],
        ),
    ],
    ids=["NodePort", "headless", "LoadBalancer-pending", "LoadBalancer", "ExternalName"],
)
def test_service_cells(spec: dict, status: dict, expected: list) -> None:
    row = cells(
        "services", {"metadata": {"name": "s", "creationTimestamp": ago(10)}, "spec": spec, "status": status}
    )
    assert row[1:5] + row[6:] == expected


def test_endpoints_cells() -> None:
    subsets = [
        {
            "addresses": [{"ip": f"127.244.0.{i}"} for i in range(5, 9)],
            "notReadyAddresses": [{"ip": "127.244.0.9"}],
            "ports": [{"port": 8080}],
        }
    ]
    assert format_endpoints(subsets) == "127.244.0.5:8080,127.244.0.6:8080,127.244.0.7:8080 + 1 more..."
    assert format_endpoints([]) == "<none>"
    assert (
        format_endpoints([{"notReadyAddresses": [{"ip": "127.244.0.9"}], "ports": [{"port": 8080}]}])
        == "<none>"
    )
    slice_ = {
        "metadata": {"name": "backend-service-abcde", "creationTimestamp": ago(5)},
        "addressType": "IPv4",
        "ports": [{"port": 8080, "name": "http"}],
        "endpoints": [{"addresses": ["127.244.0.5"]}, {"addresses": ["127.244.0.6"]}],
    }
    assert cells("endpointslices", slice_) == [
        "backend-service-abcde",
        "IPv4",
        "8080",
        "127.244.0.5,127.244.0.6",
        "5s",
    ]
    empty = {"metadata": {"name": "e"}, "addressType": "IPv4", "endpoints": []}
    assert cells("endpointslices", empty)[2:4] == ["<unset>", "<unset>"]


def test_event_cells() -> None:
    event = {
        "metadata": {"name": "backend.17a", "creationTimestamp": ago(70)},
        "type": "Warning",
        "reason": "BackOff",
        "message": "Back-off restarting failed container\n",
        "count": 4,
        "involvedObject": {"kind": "Pod", "name": "backend", "fieldPath": "spec.containers{backend}"},
        "source": {"component": "kubelet", "host": "sandbox-node-1"},
        "firstTimestamp": ago(70),
        "lastTimestamp": ago(3),
    }
    assert cells("events", event) == [
        "3s",
        "Warning",
        "BackOff",
        "pod/backend",
        "spec.containers{backend}",
        "kubelet, sandbox-node-1",
        "Back-off restarting failed container",
        "70s",
        4,
        "backend.17a",
    ]
    bare = {
        "metadata": {"name": "e"},
        "involvedObject": {"kind": "Node"},
        "eventTime": "2026-03-01T11:59:50.000000Z",
        "reportingComponent": "",
    }
    assert cells("events", bare) == ["10s", "", "", "node", "", "<unknown>", "", "10s", 1, "e"]


def test_node_cells() -> None:
    node = {
        "metadata": {
            "name": "sandbox-node-1",
            "creationTimestamp": ago(600),
            "labels": {"node-role.kubernetes.io/control-plane": ""},
        },
        "spec": {"unschedulable": True},
        "status": {
            "conditions": [{"type": "Ready", "status": "False"}],
            "addresses": [{"type": "InternalIP", "address": "127.0.1.1"}],
            "nodeInfo": {
                "kubeletVersion": "v1.37.1",
                "osImage": "Linux",
                "kernelVersion": "6.1",
                "containerRuntimeVersion": "sandbox://1",
            },
        },
    }
    assert cells("nodes", node) == [
        "sandbox-node-1",
        "NotReady,SchedulingDisabled",
        "control-plane",
        "10m",
        "v1.37.1",
        "127.0.1.1",
        "<none>",
        "Linux",
        "6.1",
        "sandbox://1",
    ]


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (-5, "<invalid>"),
        (-1, "0s"),
        (0, "0s"),
        (5, "5s"),
        (119, "119s"),
        (120, "2m"),
        (182, "3m2s"),
        (599, "9m59s"),
        (600, "10m"),
        (3 * 3600 - 1, "179m"),
        (3 * 3600, "3h"),
        (5 * 3600 + 180, "5h3m"),
        (8 * 3600, "8h"),
        (47 * 3600, "47h"),
        (48 * 3600, "2d"),
        (50 * 3600, "2d2h"),
        (8 * 86400, "8d"),
        (400 * 86400, "400d"),
        (800 * 86400, "2y70d"),
        (3000 * 86400, "8y"),
    ],
)
def test_human_duration(seconds: int, text: str) -> None:
    assert human_duration(seconds) == text


def test_watch_events_carry_column_definitions_only_first() -> None:
    obj = pod(running())
    obj["metadata"]["resourceVersion"] = "77"
    first = watch_event_table("pods", obj, first=True)
    later = watch_event_table("pods", obj, first=False)
    assert first["columnDefinitions"] and first["metadata"] == {"resourceVersion": "77"}
    assert later["columnDefinitions"] is None
    assert later["rows"][0]["cells"][:4] == first["rows"][0]["cells"][:4]


def test_include_object() -> None:
    obj = pod(running())
    assert table_row("pods", obj, include_object="Object", now=NOW)["object"] is obj
    assert table_row("pods", obj, include_object="None", now=NOW)["object"] is None
