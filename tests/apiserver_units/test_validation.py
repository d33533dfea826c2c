"""Defaulting and validation: defaulted objects are what real clients accept, bad objects get the
causes and messages a real API server gives."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from sandbox.apiserver.validation import Invalid, Undecodable, default_object, validate_object
from sandbox.qos import qos_class

REPO = Path(__file__).resolve().parents[2]
PLURALS = {"Deployment": "deployments", "Service": "services", "Pod": "pods"}


def manifests() -> list[dict]:
    """The repo's own sample manifests (what `kubectl apply -f k8s/` sends)."""
    return [
        d
        for name in ("backend.yaml", "frontend.yaml")
        for d in yaml.safe_load_all((REPO / "k8s" / name).read_text())
        if d
    ]


def meta(name: str, namespace: str | None = "default") -> dict:
    out: dict = {
        "name": name,
        "uid": "0b6a7c3e-1111-4a2b-9c3d-000000000001",
        "resourceVersion": "7",
        "creationTimestamp": "2026-01-01T00:00:00Z",
    }
    if namespace:
        out["namespace"] = namespace
    return out


def pod(**spec) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": meta("p"),
        "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}], **spec},
    }


def deployment(**spec) -> dict:
    base = {
        "selector": {"matchLabels": {"app": "x"}},
        "template": {
            "metadata": {"labels": {"app": "x"}},
            "spec": {"containers": [{"name": "web", "image": "nginx"}]},
        },
    }
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta("d"), "spec": {**base, **spec}}


def invalid(plural: str, obj: dict, *, old: dict | None = None) -> Invalid:
    default_object(plural, obj)
    with pytest.raises(Invalid) as info:
        validate_object(plural, obj, old=old)
    return info.value


SAMPLES: dict[str, dict] = {
    "nodes": {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": meta("sandbox-node-1", None),
        "status": {
            "capacity": {"cpu": "2", "memory": "4Gi", "pods": "110"},
            "conditions": [{"type": "Ready", "status": "True"}],
        },
    },
    "namespaces": {"apiVersion": "v1", "kind": "Namespace", "metadata": meta("lab", None)},
    "configmaps": {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta("cfg"), "data": {"a.b": "1"}},
    "serviceaccounts": {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta("default")},
    "endpoints": {
        "apiVersion": "v1",
        "kind": "Endpoints",
        "metadata": meta("backend-service"),
        "subsets": [{"addresses": [{"ip": "127.244.0.5"}], "ports": [{"name": "http", "port": 8080}]}],
    },
    "endpointslices": {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": meta("s-1"),
        "addressType": "IPv4",
        "ports": [{"name": "http", "port": 8080}],
        "endpoints": [{"addresses": ["127.244.0.5"], "conditions": {"ready": True}}],
    },
    "events": {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": meta("p.1"),
        "reason": "Scheduled",
        "involvedObject": {"kind": "Pod", "name": "p", "namespace": "default"},
        "type": "Normal",
    },
    "replicasets": {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": meta("d-5d8f7"),
        "spec": {
            "selector": {"matchLabels": {"app": "x"}},
            "template": {
                "metadata": {"labels": {"app": "x"}},
                "spec": {"containers": [{"name": "web", "image": "nginx"}]},
            },
        },
    },
    "roles": {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": meta("r"),
        "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}],
    },
    "rolebindings": {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": meta("rb"),
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "r"},
        "subjects": [{"kind": "ServiceAccount", "name": "dash", "namespace": "default"}],
    },
    "poddisruptionbudgets": {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": meta("pdb"),
        "spec": {"maxUnavailable": "25%", "selector": {"matchLabels": {"app": "web"}}},
    },
}


# --- defaults ----------------------------------------------------------------------------------


@pytest.mark.parametrize("doc", manifests(), ids=lambda d: d["kind"])
def test_repo_manifests_default_to_objects_the_official_client_accepts(doc: dict, official) -> None:
    plural = PLURALS[doc["kind"]]
    obj = default_object(
        plural, {**copy.deepcopy(doc), "metadata": {**doc["metadata"], **meta(doc["metadata"]["name"])}}
    )
    validate_object(plural, obj)
    official(plural, obj)


@pytest.mark.parametrize("plural", sorted(SAMPLES))
def test_every_served_kind_defaults_to_a_valid_object(plural: str, official) -> None:
    obj = default_object(plural, copy.deepcopy(SAMPLES[plural]))
    validate_object(plural, obj)
    official(plural, obj)


def test_pod_gets_the_api_server_and_admission_defaults() -> None:
    obj = default_object(
        "pods",
        pod(
            containers=[
                {
                    "name": "web",
                    "image": "nginx",
                    "ports": [{"containerPort": 80}],
                    "readinessProbe": {"httpGet": {"port": 80}},
                    "env": [{"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}],
                },
                {
                    "name": "side",
                    "image": "busybox:1.36",
                    "resources": {"limits": {"cpu": "1", "memory": "64Mi"}},
                },
            ]
        ),
    )
    spec = obj["spec"]
    assert {
        k: spec[k]
        for k in (
            "restartPolicy",
            "dnsPolicy",
            "schedulerName",
            "terminationGracePeriodSeconds",
            "securityContext",
            "enableServiceLinks",
            "serviceAccountName",
            "serviceAccount",
            "preemptionPolicy",
            "priority",
        )
    } == {
        "restartPolicy": "Always",
        "dnsPolicy": "ClusterFirst",
        "schedulerName": "default-scheduler",
        "terminationGracePeriodSeconds": 30,
        "securityContext": {},
        "enableServiceLinks": True,
        "serviceAccountName": "default",
        "serviceAccount": "default",
        "preemptionPolicy": "PreemptLowerPriority",
        "priority": 0,
    }
    assert spec["tolerations"] == [
        {
            "key": "node.kubernetes.io/not-ready",
            "operator": "Exists",
            "effect": "NoExecute",
            "tolerationSeconds": 300,
        },
        {
            "key": "node.kubernetes.io/unreachable",
            "operator": "Exists",
            "effect": "NoExecute",
            "tolerationSeconds": 300,
        },
    ]
    web, side = spec["containers"]
    assert web["imagePullPolicy"] == "Always"  # no tag means :latest
    assert side["imagePullPolicy"] == "IfNotPresent"
    assert web["terminationMessagePath"] == "/dev/termination-log"
    assert web["terminationMessagePolicy"] == "File"
    assert web["resources"] == {}
    assert web["ports"] == [{"containerPort": 80, "protocol": "TCP"}]
    assert web["readinessProbe"] == {
        "httpGet": {"port": 80, "path": "/", "scheme": "HTTP"},
        "timeoutSeconds": 1,
        "periodSeconds": 10,
        "successThreshold": 1,
        "failureThreshold": 3,
    }
    assert web["env"][0]["valueFrom"]["fieldRef"] == {"fieldPath": "status.podIP", "apiVersion": "v1"}
    assert side["resources"]["requests"] == {"cpu": "1", "memory": "64Mi"}  # requests default to limits
    assert obj["status"] == {"phase": "Pending", "qosClass": "Burstable"}


@pytest.mark.parametrize(
    ("resources", "expected"),
    [
        ([{}], "BestEffort"),
        ([{"requests": {"cpu": "50m"}}], "Burstable"),
        (
            [{"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"cpu": "1000m", "memory": "1024Mi"}}],
            "Guaranteed",
        ),
        ([{"limits": {"cpu": "1", "memory": "1Gi"}}, {}], "Burstable"),
    ],
)
def test_qos_class(resources: list[dict], expected: str) -> None:
    spec = {"containers": [{"name": f"c{i}", "resources": r} for i, r in enumerate(resources)]}
    assert qos_class(spec) == expected


def test_deployment_and_service_defaults() -> None:
    dep = default_object("deployments", deployment())
    assert dep["spec"]["replicas"] == 1
    assert dep["spec"]["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"},
    }
    assert dep["spec"]["revisionHistoryLimit"] == 10
    assert dep["spec"]["progressDeadlineSeconds"] == 600
    assert dep["spec"]["template"]["spec"]["restartPolicy"] == "Always"
    assert "enableServiceLinks" not in dep["spec"]["template"]["spec"]  # a Pod default, not a template one
    svc = default_object(
        "services",
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": meta("s"),
            "spec": {"ports": [{"port": 80}], "selector": {"app": "x"}},
        },
    )
    assert svc["spec"] == {
        "ports": [{"port": 80, "protocol": "TCP", "targetPort": 80}],
        "selector": {"app": "x"},
        "type": "ClusterIP",
        "sessionAffinity": "None",
        "internalTrafficPolicy": "Cluster",
        "ipFamilies": ["IPv4"],
        "ipFamilyPolicy": "SingleStack",
    }
    ns = default_object("namespaces", copy.deepcopy(SAMPLES["namespaces"]))
    assert ns["spec"] == {"finalizers": ["kubernetes"]}
    assert ns["status"] == {"phase": "Active"}
    assert ns["metadata"]["labels"] == {"kubernetes.io/metadata.name": "lab"}


# --- validation --------------------------------------------------------------------------------


def test_negative_replicas_is_the_real_message() -> None:
    err = invalid("deployments", deployment(replicas=-1))
    assert err.message == (
        'Deployment.apps "d" is invalid: spec.replicas: Invalid value: -1: must be greater than or equal to 0'
    )
    assert err.causes == [
        {
            "reason": "FieldValueInvalid",
            "field": "spec.replicas",
            "message": "Invalid value: -1: must be greater than or equal to 0",
        }
    ]


def test_name_that_is_not_dns1123() -> None:
    obj = pod()
    obj["metadata"]["name"] = "Bad_Name"
    err = invalid("pods", obj)
    assert err.causes[0]["field"] == "metadata.name"
    assert err.causes[0]["message"].startswith(
        'Invalid value: "Bad_Name": a lowercase RFC 1123 subdomain must '
        "consist of lower case alphanumeric characters, '-' or '.'"
    )
    assert err.message.startswith('Pod "Bad_Name" is invalid: metadata.name: Invalid value: "Bad_Name"')


def test_service_names_are_dns1035_labels() -> None:
    svc = {"apiVersion": "v1", "kind": "Service", "metadata": meta("1svc"), "spec": {"ports": [{"port": 80}]}}
    err = invalid("services", svc)
    assert err.causes[0]["message"].startswith(
        'Invalid value: "1svc": a DNS-1035 label must consist of lower '
        "case alphanumeric characters or '-', start with an alphabetic "
        "character"
    )


def test_missing_name_and_containers() -> None:
    obj = {"apiVersion": "v1", "kind": "Pod", "metadata": {"namespace": "default"}, "spec": {}}
    err = invalid("pods", obj)
    assert {(c["field"], c["reason"], c["message"]) for c in err.causes} == {
        ("metadata.name", "FieldValueRequired", "Required value: name or generateName is required"),
        ("spec.containers", "FieldValueRequired", "Required value"),
    }
    assert err.message.startswith('Pod "" is invalid: [')


def test_container_rules_name_image_duplicates_ports() -> None:
    err = invalid(
        "pods",
        pod(
            containers=[
                {
                    "name": "web",
                    "image": "nginx",
                    "ports": [{"containerPort": 70000}, {"containerPort": 80, "hostPort": -1}],
                },
                {"name": "web"},
                {"image": "x"},
            ]
        ),
    )
    assert [(c["field"], c["message"]) for c in err.causes] == [
        (
            "spec.containers[0].ports[0].containerPort",
            "Invalid value: 70000: must be between 1 and 65535, inclusive",
        ),
        ("spec.containers[0].ports[1].hostPort", "Invalid value: -1: must be between 1 and 65535, inclusive"),
        ("spec.containers[1].name", 'Duplicate value: "web"'),
        ("spec.containers[1].image", "Required value"),
        ("spec.containers[2].name", "Required value"),
    ]
    assert [c["reason"] for c in err.causes] == [
        "FieldValueInvalid",
        "FieldValueInvalid",
        "FieldValueDuplicate",
        "FieldValueRequired",
        "FieldValueRequired",
    ]


def test_unsupported_values_list_what_is_supported() -> None:
    err = invalid("pods", pod(restartPolicy="Sometimes"))
    assert err.causes == [
        {
            "reason": "FieldValueNotSupported",
            "field": "spec.restartPolicy",
            "message": 'Unsupported value: "Sometimes": supported values: "Always", "Never", "OnFailure"',
        }
    ]


def test_probe_needs_exactly_one_handler() -> None:
    err = invalid(
        "pods",
        pod(
            containers=[
                {
                    "name": "web",
                    "image": "nginx",
                    "livenessProbe": {"periodSeconds": 5},
                    "readinessProbe": {"httpGet": {"port": 80}, "tcpSocket": {"port": 80}},
                }
            ]
        ),
    )
    assert [(c["field"], c["message"]) for c in err.causes] == [
        ("spec.containers[0].livenessProbe", "Required value: must specify a handler type"),
        (
            "spec.containers[0].readinessProbe.tcpSocket",
            "Forbidden: may not specify more than 1 handler type",
        ),
    ]


def test_labels_and_selectors_syntax() -> None:
    obj = deployment()
    obj["metadata"]["labels"] = {"bad key!": "v", "ok": "bad value!"}
    obj["spec"]["selector"]["matchExpressions"] = [{"key": "tier", "operator": "Near", "values": ["a"]}]
    err = invalid("deployments", obj)
    fields = [c["field"] for c in err.causes]
    assert fields[:2] == ["metadata.labels", "metadata.labels"]
    assert "spec.selector.matchExpressions[0].operator" in fields
    assert err.causes[0]["message"].startswith(
        'Invalid value: "bad key!": name part must consist of alphanumeric characters'
    )
    assert err.causes[1]["message"].startswith(
        'Invalid value: "bad value!": a valid label must be an empty '
        "string or consist of alphanumeric characters"
    )


def test_deployment_selector_must_exist_and_match_the_template() -> None:
    err = invalid("deployments", deployment(selector={"matchLabels": {"app": "y"}}))
    assert err.causes == [
        {
            "reason": "FieldValueInvalid",
            "field": "spec.template.metadata.labels",
            "message": 'Invalid value: {"app":"x"}: `selector` does not match template `labels`',
        }
    ]
    obj = deployment()
    del obj["spec"]["selector"]
    assert invalid("deployments", obj).causes[0] == {
        "reason": "FieldValueRequired",
        "field": "spec.selector",
        "message": "Required value",
    }


def test_rolling_update_limits() -> None:
    err = invalid(
        "deployments",
        deployment(
            strategy={"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": "0%"}}
        ),
    )
    assert err.causes[0]["field"] == "spec.strategy.rollingUpdate.maxUnavailable"
    assert err.causes[0]["message"] == 'Invalid value: "0%": may not be 0 when `maxSurge` is 0'


def test_service_ports() -> None:
    svc = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": meta("s"),
        "spec": {
            "type": "ClusterIP",
            "ports": [
                {"name": "http", "port": 0},
                {"port": 81},
                {"name": "http", "port": 82, "nodePort": 30001},
            ],
        },
    }
    err = invalid("services", svc)
    assert [(c["field"], c["reason"]) for c in err.causes] == [
        ("spec.ports[0].port", "FieldValueInvalid"),
        ("spec.ports[0].targetPort", "FieldValueInvalid"),  # defaulted from the port, as on a real server
        ("spec.ports[1].name", "FieldValueRequired"),
        ("spec.ports[2].name", "FieldValueDuplicate"),
        ("spec.ports[2].nodePort", "FieldValueForbidden"),
    ]
    assert err.causes[4]["message"] == "Forbidden: may not be used when `type` is 'ClusterIP'"
    empty = {"apiVersion": "v1", "kind": "Service", "metadata": meta("s"), "spec": {}}
    assert invalid("services", empty).causes[0]["field"] == "spec.ports"


def test_resource_requests_may_not_exceed_limits() -> None:
    err = invalid(
        "pods",
        pod(
            containers=[
                {
                    "name": "web",
                    "image": "nginx",
                    "resources": {"requests": {"cpu": "2"}, "limits": {"cpu": "1500m"}},
                }
            ]
        ),
    )
    assert err.causes[0]["field"] == "spec.containers[0].resources.requests"
    assert err.causes[0]["message"] == 'Invalid value: "2": must be less than or equal to cpu limit of 1500m'


# --- updates -----------------------------------------------------------------------------------


def stored(plural: str, obj: dict) -> dict:
    default_object(plural, obj)
    validate_object(plural, obj)
    return obj


def test_deployment_selector_is_immutable() -> None:
    old = stored("deployments", deployment())
    new = copy.deepcopy(old)
    new["spec"]["selector"] = {"matchLabels": {"app": "x", "tier": "web"}}
    new["spec"]["template"]["metadata"]["labels"]["tier"] = "web"
    with pytest.raises(Invalid) as info:
        validate_object("deployments", new, old=old)
    assert info.value.causes == [
        {
            "reason": "FieldValueInvalid",
            "field": "spec.selector",
            "message": 'Invalid value: {"matchLabels":{"app":"x","tier":"web"}}: field is immutable',
        }
    ]
    scaled = copy.deepcopy(old)
    scaled["spec"]["replicas"] = 5
    validate_object("deployments", scaled, old=old)


def test_service_cluster_ip_may_not_change() -> None:
    old = stored(
        "services",
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": meta("s"),
            "spec": {"ports": [{"port": 80}], "clusterIP": "10.96.0.10"},
        },
    )
    new = copy.deepcopy(old)
    new["spec"]["clusterIP"] = "10.96.0.11"
    with pytest.raises(Invalid) as info:
        validate_object("services", new, old=old)
    assert info.value.message == (
        'Service "s" is invalid: spec.clusterIPs[0]: Invalid value: ["10.96.0.11"]: may not change once set'
    )


def test_pod_spec_is_immutable_except_image_deadline_and_new_tolerations() -> None:
    old = stored("pods", pod())
    allowed = copy.deepcopy(old)
    allowed["spec"]["containers"][0]["image"] = "nginx:1.28"
    allowed["spec"]["activeDeadlineSeconds"] = 60
    allowed["spec"]["tolerations"].append({"key": "k", "operator": "Exists", "effect": "NoSchedule"})
    allowed["spec"]["nodeName"] = "sandbox-node-1"  # binding a pending pod
    validate_object("pods", allowed, old=old)
    changed = copy.deepcopy(old)
    changed["spec"]["containers"][0]["ports"] = [{"containerPort": 81, "protocol": "TCP"}]
    with pytest.raises(Invalid) as info:
        validate_object("pods", changed, old=old)
    cause = info.value.causes[0]
    assert (cause["field"], cause["reason"]) == ("spec", "FieldValueForbidden")
    assert cause["message"].startswith(
        "Forbidden: pod updates may not change fields other than `spec.containers[*].image`"
    )


def test_owner_references_need_their_identity() -> None:
    obj = pod()
    obj["metadata"]["ownerReferences"] = [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs"}]
    err = invalid("pods", obj)
    assert err.causes == [
        {
            "reason": "FieldValueInvalid",
            "field": "metadata.ownerReferences.uid",
            "message": 'Invalid value: "": uid must not be empty',
        }
    ]


def test_wrong_json_types_are_undecodable_not_invalid() -> None:
    obj = deployment(replicas="3")
    default_object("deployments", obj)
    with pytest.raises(Undecodable) as info:
        validate_object("deployments", obj)
    assert info.value.code == 400
    assert info.value.causes == []
    assert info.value.message == (
        'Deployment in version "v1" cannot be handled as a Deployment: json: cannot unmarshal string into Go '
        "struct field DeploymentSpec.spec.replicas of type int32"
    )
    bad_strategy = deployment(strategy="Recreate")
    default_object("deployments", bad_strategy)
    assert bad_strategy["spec"]["strategy"] == "Recreate"  # defaults never paper over a wrong type
    with pytest.raises(Undecodable):
        validate_object("deployments", bad_strategy)


@pytest.mark.parametrize(
    ("plural", "change", "field", "message"),
    [
        (
            "configmaps",
            {"data": {"bad key": "1"}},
            "data[bad key]",
            'Invalid value: "bad key": a valid config key must consist of alphanumeric characters, '
            "'-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is "
            "'[-._a-zA-Z0-9]+')",
        ),
        (
            "endpointslices",
            {"addressType": "IPv5"},
            "addressType",
            'Unsupported value: "IPv5": supported values: "FQDN", "IPv4", "IPv6"',
        ),
        (
            "endpointslices",
            {"endpoints": [{"addresses": ["300.1.1.1"]}]},
            "endpoints[0].addresses[0]",
            'Invalid value: "300.1.1.1": must be a valid IPv4 address',
        ),
        (
            "endpoints",
            {"subsets": [{"addresses": [{"ip": "nope"}], "ports": [{"port": 8080}]}]},
            "subsets[0].addresses[0].ip",
            'Invalid value: "nope": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)',
        ),
        (
            "events",
            {"involvedObject": {"kind": "Pod", "name": "p", "namespace": "other"}},
            "involvedObject.namespace",
            'Invalid value: "other": does not match event.namespace',
        ),
        (
            "rolebindings",
            {"roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Secret", "name": "r"}},
            "roleRef.kind",
            'Unsupported value: "Secret": supported values: "Role", "ClusterRole"',
        ),
        (
            "nodes",
            {"spec": {"taints": [{"key": "k", "effect": "Sometimes"}]}},
            "metadata.taints[0].effect",
            'Unsupported value: "Sometimes": supported values: "NoSchedule", "PreferNoSchedule", "NoExecute"',
        ),
    ],
)
def test_other_kinds_rules(plural: str, change: dict, field: str, message: str) -> None:
    obj = {**copy.deepcopy(SAMPLES[plural]), **change}
    err = invalid(plural, obj)
    assert {"reason": err.causes[0]["reason"], "field": field, "message": message} == err.causes[0]


def test_nulls_decode_like_go() -> None:
    obj = pod()
    obj["metadata"].update(finalizers=[None, "example.com/keep"], labels=None, annotations={"a": None})
    obj["spec"]["containers"][0].update(args=[None, "x"], ports=[None], workingDir=None)
    default_object("pods", obj)
    assert obj["metadata"]["finalizers"] == ["", "example.com/keep"]
    assert "labels" not in obj["metadata"]
    assert obj["metadata"]["annotations"] == {"a": ""}
    web = obj["spec"]["containers"][0]
    assert web["args"] == ["", "x"]
    assert web["ports"] == [{"protocol": "TCP"}]
    assert "workingDir" not in web
    err = invalid("pods", obj)
    assert {c["field"] for c in err.causes} == {
        "metadata.finalizers[0]",
        "spec.containers[0].ports[0].containerPort",
    }
