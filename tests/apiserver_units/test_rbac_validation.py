"""RBAC and Node-taint validation as kube-apiserver words it (`pkg/apis/rbac/validation`,
`validateNodeTaints`): each case is one bad field and the exact 422 cause a user reads."""

from __future__ import annotations

import copy

import pytest

from sandbox.apiserver.validation import default_object, validate_object
from sandbox.apiserver.validation.fielderrors import Invalid
from tests.apiserver_units.test_validation import SAMPLES, invalid, meta, pod

RBAC = "rbac.authorization.k8s.io"
CLUSTER_SAMPLES: dict[str, dict] = {
    "clusterroles": {
        "apiVersion": f"{RBAC}/v1",
        "kind": "ClusterRole",
        "metadata": meta("cr", None),
        "rules": [{"nonResourceURLs": ["/healthz"], "verbs": ["get"]}],
    },
    "clusterrolebindings": {
        "apiVersion": f"{RBAC}/v1",
        "kind": "ClusterRoleBinding",
        "metadata": meta("crb", None),
        "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": "view"},
        "subjects": [{"kind": "ServiceAccount", "name": "dash", "namespace": "default"}],
    },
}


def sample(plural: str) -> dict:
    return copy.deepcopy({**SAMPLES, **CLUSTER_SAMPLES}[plural])


def causes(plural: str, change: dict, *, old: dict | None = None) -> list[tuple[str, str, str]]:
    obj = {**sample(plural), **change}
    return [(c["reason"], c["field"], c["message"]) for c in invalid(plural, obj, old=old).causes]


@pytest.mark.parametrize(
    ("plural", "rules", "expected"),
    [
        ("roles", [{"apiGroups": [""], "resources": ["pods"]}],
         [("FieldValueRequired", "rules[0].verbs", "Required value: verbs must contain at least one value")]),
        ("roles", [{"resources": ["pods"], "verbs": ["get"]}],
         [("FieldValueRequired", "rules[0].apiGroups",
           "Required value: resource rules must supply at least one api group")]),
        ("roles", [{"apiGroups": [""], "verbs": ["get"]}],
         [("FieldValueRequired", "rules[0].resources",
           "Required value: resource rules must supply at least one resource")]),
        ("roles", [{"nonResourceURLs": ["/healthz"], "verbs": ["get"]}],
         [("FieldValueInvalid", "rules[0].nonResourceURLs",
           'Invalid value: ["/healthz"]: namespaced rules cannot apply to non-resource URLs')]),
        ("clusterroles", [{"nonResourceURLs": ["/healthz"], "resources": ["pods"], "verbs": ["get"]}],
         [("FieldValueInvalid", "rules[0].nonResourceURLs",
           'Invalid value: ["/healthz"]: rules cannot apply to both regular resources and '
           "non-resource URLs")]),
        ("clusterroles", [{"apiGroups": [""], "resources": ["pods", "secrets"], "resourceNames": ["a"],
                           "verbs": ["get"]}],
         [("FieldValueRequired", "rules[0].resourceNames",
           "Required value: resource names cannot apply to multiple resources")]),
    ],
)
def test_policy_rules(plural: str, rules: list, expected: list) -> None:
    assert causes(plural, {"rules": rules}) == expected


@pytest.mark.parametrize("plural", ["roles", "rolebindings", "clusterroles", "clusterrolebindings"])
def test_the_samples_are_valid(plural: str) -> None:
    """The baseline each case breaks (a ClusterRole may grant non-resource URLs)."""
    obj = sample(plural)
    default_object(plural, obj)
    validate_object(plural, obj)


@pytest.mark.parametrize(
    ("plural", "change", "expected"),
    [
        ("rolebindings", {"roleRef": {"kind": "Secret", "name": "a/b"}},
         [("FieldValueNotSupported", "roleRef.apiGroup",
           f'Unsupported value: "": supported values: "{RBAC}"'),
          ("FieldValueNotSupported", "roleRef.kind",
           'Unsupported value: "Secret": supported values: "Role", "ClusterRole"'),
          ("FieldValueInvalid", "roleRef.name", "Invalid value: \"a/b\": may not contain '/'")]),
        ("clusterrolebindings", {"roleRef": {"apiGroup": RBAC, "kind": "Role", "name": ""}},
         [("FieldValueNotSupported", "roleRef.kind",
           'Unsupported value: "Role": supported values: "ClusterRole"'),
          ("FieldValueRequired", "roleRef.name", "Required value")]),
        ("rolebindings", {"subjects": [{"kind": "Robot", "name": "r2"}]},
         [("FieldValueNotSupported", "subjects[0].kind",
           'Unsupported value: "Robot": supported values: "ServiceAccount", "User", "Group"')]),
        ("rolebindings", {"subjects": [{"kind": "ServiceAccount", "name": "Dash", "apiGroup": RBAC}]},
         [("FieldValueInvalid", "subjects[0].name",
           'Invalid value: "Dash": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric '
           "characters, '-' or '.', and must start and end with an alphanumeric character (e.g. "
           "'example.com', regex used for validation is "
           "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"),
          ("FieldValueNotSupported", "subjects[0].apiGroup",
           f'Unsupported value: "{RBAC}": supported values: ""')]),
        ("clusterrolebindings", {"subjects": [{"kind": "ServiceAccount", "name": "dash"}]},
         [("FieldValueRequired", "subjects[0].namespace", "Required value")]),
        ("rolebindings", {"subjects": [{"kind": "Group", "apiGroup": RBAC}, {"kind": "User", "name": "u",
                                                                               "apiGroup": "example.com"}]},
         [("FieldValueRequired", "subjects[0].name", "Required value"),
          ("FieldValueInvalid", "subjects[0].name", 'Invalid value: "": group name cannot be empty'),
          ("FieldValueNotSupported", "subjects[1].apiGroup",
           f'Unsupported value: "example.com": supported values: "{RBAC}"')]),
    ],
)
def test_binding_role_refs_and_subjects(plural: str, change: dict, expected: list) -> None:
    assert causes(plural, change) == expected


@pytest.mark.parametrize("plural", ["rolebindings", "clusterrolebindings"])
def test_role_ref_cannot_change(plural: str) -> None:
    old = sample(plural)
    ref = {**old["roleRef"], "name": "other"}
    assert causes(plural, {"roleRef": ref}, old=old) == [
        ("FieldValueInvalid", "roleRef",
         f'Invalid value: rbac.RoleRef{{APIGroup:"{RBAC}", Kind:"{ref["kind"]}", Name:"other"}}: '
         "cannot change roleRef")]


@pytest.mark.parametrize(
    ("taints", "expected"),
    [
        ([{"key": "a", "effect": "NoSchedule"}, {"key": "a", "value": "x", "effect": "NoSchedule"},
          {"key": "a", "effect": "NoExecute"}],
         [("FieldValueDuplicate", "metadata.taints[1]",
           'Duplicate value: core.Taint{Key:"a", Value:"x", Effect:"NoSchedule", TimeAdded:<nil>}: '
           "taints must be unique by key and effect pair")]),
        ([{"key": "a", "effect": "Sometimes"}, {"key": "b"}],
         [("FieldValueNotSupported", "metadata.taints[0].effect",
           'Unsupported value: "Sometimes": supported values: "NoSchedule", "PreferNoSchedule", "NoExecute"'),
          ("FieldValueRequired", "metadata.taints[1].effect", "Required value")]),
        ([{"key": "a b", "value": "-x", "effect": "NoSchedule"}],
         [("FieldValueInvalid", "metadata.taints[0].key",
           "Invalid value: \"a b\": name part must consist of alphanumeric characters, '-', '_' or '.', and "
           "must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', "
           "regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"),
          ("FieldValueInvalid", "metadata.taints[0].value",
           "Invalid value: \"-x\": a valid label must be an empty string or consist of alphanumeric "
           "characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. "
           "'MyValue',  or 'my_value',  or '12345', regex used for validation is "
           "'(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')")]),
    ],
)
def test_node_taints(taints: list, expected: list) -> None:
    assert causes("nodes", {"spec": {"taints": taints}}) == expected


def test_an_empty_taint_key_is_empty_and_not_a_qualified_name() -> None:
    """`IsQualifiedName("")` reports both the empty name part and the pattern."""
    assert [m for _, f, m in causes("nodes", {"spec": {"taints": [{"effect": "NoSchedule"}]}})] == [
        'Invalid value: "": name part must be non-empty',
        "Invalid value: \"\": name part must consist of alphanumeric characters, '-', '_' or '.', and must "
        "start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex "
        "used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"]



def test_toleration_effects_list_the_taint_effects_in_go_order() -> None:
    obj = pod()
    obj["spec"]["tolerations"] = [{"key": "a", "operator": "Exists", "effect": "Sometimes"}]
    assert [(c["field"], c["message"]) for c in invalid("pods", obj).causes] == [
        ("spec.tolerations[0].effect",
         'Unsupported value: "Sometimes": supported values: "NoSchedule", "PreferNoSchedule", "NoExecute"')]


CIDR_CHANGE = 'Forbidden: node updates may not change podCIDR except from "" to valid'


def node_causes(spec: dict, *, old_spec: dict | None = None) -> list[tuple[str, str, str]]:
    """The 422 causes of a Node with ``spec`` (an update of one with ``old_spec``); [] when valid."""
    obj = {**sample("nodes"), "spec": spec}
    old = None if old_spec is None else {**sample("nodes"), "spec": old_spec}
    default_object("nodes", obj)
    try:
        validate_object("nodes", obj, old=old)
    except Invalid as exc:
        return [(c["reason"], c["field"], c["message"]) for c in exc.causes]
    return []


@pytest.mark.parametrize(("cidrs", "expected"), [
    (["10.0.0.1/24"], [("FieldValueInvalid", "spec.podCIDRs[0]",
                        'Invalid value: "10.0.0.1/24": must not have bits set beyond the prefix length')]),
    (["010.0.0.0/24"], [("FieldValueInvalid", "spec.podCIDRs[0]",
                         'Invalid value: "010.0.0.0/24": must not have leading 0s in IP or prefix length')]),
    (["pods"], [("FieldValueInvalid", "spec.podCIDRs[0]",
                 'Invalid value: "pods": must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)')]),
    (["10.0.0.0/24", "10.1.0.0/24"], [("FieldValueInvalid", "spec.podCIDRs",
                                       'Invalid value: ["10.0.0.0/24","10.1.0.0/24"]: may specify no more '
                                       "than one CIDR for each IP family")]),
    (["10.0.0.0/24", "fd00::/64"], []),
])
def test_node_pod_cidrs(cidrs: list, expected: list) -> None:
    assert node_causes({"podCIDRs": cidrs}) == expected


def test_node_pod_cidrs_and_provider_id_are_set_once() -> None:
    """The controller manager may assign them once; afterwards they never change."""
    assigned = {"podCIDR": "10.0.0.0/24", "podCIDRs": ["10.0.0.0/24"], "providerID": "sandbox://n1"}
    assert node_causes(assigned, old_spec={}) == []
    assert node_causes({**assigned, "podCIDRs": ["10.9.0.0/24"]}, old_spec=assigned) == [
        ("FieldValueForbidden", "spec.podCIDRs", CIDR_CHANGE)]
    assert node_causes({"podCIDRs": ["10.0.0.0/24", "fd00::/64"], "providerID": "x"}, old_spec=assigned) == [
        ("FieldValueForbidden", "spec.podCIDRs", CIDR_CHANGE),
        ("FieldValueForbidden", "spec.providerID",
         'Forbidden: node updates may not change providerID except from "" to valid')]
    changed_alone = {**sample("nodes"), "spec": {**assigned, "podCIDR": "10.9.0.0/24"}}
    default_object("nodes", changed_alone)  # v1's podCIDR follows podCIDRs[0], as conversion does
    assert changed_alone["spec"]["podCIDR"] == "10.0.0.0/24"
