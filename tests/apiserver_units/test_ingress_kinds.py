"""Ingress and IngressClass: kube-apiserver's validation messages and printIngress's cells."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import pytest

from sandbox.apiserver.tables import table_for, table_row
from sandbox.apiserver.validation import Invalid, default_object, validate_object

NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)


def ingress(**spec: object) -> dict:
    base = {
        "rules": [
            {
                "host": "shop.example",
                "http": {
                    "paths": [
                        {
                            "path": "/",
                            "pathType": "Prefix",
                            "backend": {"service": {"name": "backend-service", "port": {"number": 80}}},
                        }
                    ]
                },
            }
        ]
    }
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"name": "backend", "namespace": "default", "creationTimestamp": "2026-03-01T11:58:00Z"},
        "spec": {**base, **spec},
    }


def causes(plural: str, obj: dict, old: dict | None = None) -> list[tuple[str, str]]:
    default_object(plural, obj)
    with pytest.raises(Invalid) as err:
        validate_object(plural, obj, old=old)
    return [(c["field"], c["message"]) for c in err.value.causes]


def path_of(obj: dict) -> dict:
    return obj["spec"]["rules"][0]["http"]["paths"][0]


def test_valid_ingress_passes() -> None:
    obj = default_object("ingresses", ingress(ingressClassName="nginx"))
    validate_object("ingresses", obj)


def test_rules_or_default_backend_required() -> None:
    obj = ingress()
    obj["spec"] = {}
    assert causes("ingresses", obj) == [
        ("spec", "Invalid value: []: either `defaultBackend` or `rules` must be specified")
    ]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            {"pathType": None},
            ("spec.rules[0].http.paths[0].pathType", "Required value: pathType must be specified"),
        ),
        (
            {"pathType": "Regex"},
            (
                "spec.rules[0].http.paths[0].pathType",
                'Unsupported value: "Regex": supported values: "Exact", "ImplementationSpecific", "Prefix"',
            ),
        ),
        (
            {"path": "api"},
            ("spec.rules[0].http.paths[0].path", 'Invalid value: "api": must be an absolute path'),
        ),
        (
            {"path": "/a//b"},
            ("spec.rules[0].http.paths[0].path", "Invalid value: \"/a//b\": must not contain '//'"),
        ),
        (
            {"path": "/a/.."},
            ("spec.rules[0].http.paths[0].path", "Invalid value: \"/a/..\": cannot end with '/..'"),
        ),
        (
            {"backend": {"service": {"name": "backend-service", "port": {}}}},
            ("spec.rules[0].http.paths[0].backend", "Required value: port name or number is required"),
        ),
        (
            {"backend": {"service": {"name": "backend-service", "port": {"number": 70000}}}},
            (
                "spec.rules[0].http.paths[0].backend.service.port.number",
                "Invalid value: 70000: must be between 1 and 65535, inclusive",
            ),
        ),
        (
            {"backend": {"service": {"name": "backend-service", "port": {"number": 80, "name": "http"}}}},
            (
                "spec.rules[0].http.paths[0].backend",
                'Invalid value: "": cannot set both port name & port number',
            ),
        ),
        (
            {"backend": {}},
            (
                "spec.rules[0].http.paths[0].backend",
                'Invalid value: "": resource or service backend is required',
            ),
        ),
    ],
)
def test_path_and_backend_messages(change: dict, expected: tuple[str, str]) -> None:
    obj = ingress()
    path_of(obj).update(change)
    if change.get("pathType", "") is None:
        del path_of(obj)["pathType"]
    assert expected in causes("ingresses", obj)


def test_hosts_must_be_dns_names() -> None:
    obj = ingress()
    obj["spec"]["rules"][0]["host"] = "127.0.0.1"
    assert (
        "spec.rules[0].host",
        'Invalid value: "127.0.0.1": must be a DNS name, not an IP address',
    ) in causes("ingresses", obj)
    wildcard = ingress()
    wildcard["spec"]["rules"][0]["host"] = "*.example.com"
    validate_object("ingresses", default_object("ingresses", wildcard))
    bad = ingress()
    bad["spec"]["rules"][0]["host"] = "a.*.example.com"
    assert causes("ingresses", bad)[0][1].startswith(
        "Invalid value: \"a.*.example.com\": a wildcard DNS-1123 subdomain must start with '*.'"
    )


def test_class_field_and_legacy_annotation_conflict() -> None:
    obj = ingress(ingressClassName="nginx")
    obj["metadata"]["annotations"] = {"kubernetes.io/ingress.class": "nginx"}
    assert causes("ingresses", obj) == [
        (
            "annotations.kubernetes.io/ingress.class",
            'Invalid value: "nginx": can not be set when the class field is also set',
        )
    ]


def test_ingress_table_cells() -> None:
    obj = ingress(ingressClassName="nginx")
    obj["status"] = {
        "loadBalancer": {"ingress": [{"ip": "127.0.0.1", "ports": [{"port": 8080, "protocol": "TCP"}]}]}
    }
    table = table_for("ingresses", [obj])
    assert [c["name"] for c in table["columnDefinitions"]] == [
        "Name",
        "Class",
        "Hosts",
        "Address",
        "Ports",
        "Age",
    ]
    assert table_row("ingresses", obj, now=NOW)["cells"] == [
        "backend",
        "nginx",
        "shop.example",
        "127.0.0.1",
        "80",
        "2m",
    ]
    many = copy.deepcopy(obj)
    many["spec"]["rules"] = [{"host": f"h{i}.test"} for i in range(5)]
    many["spec"]["tls"] = [{"hosts": ["h0.test"]}]
    del many["spec"]["ingressClassName"]
    del many["status"]
    assert table_row("ingresses", many, now=NOW)["cells"][1:5] == [
        "<none>",
        "h0.test,h1.test,h2.test + 2 more...",
        "",
        "80, 443",
    ]


def test_ingress_class_validation_and_table() -> None:
    cls: dict[str, Any] = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "IngressClass",
        "metadata": {"name": "nginx", "creationTimestamp": "2026-03-01T11:00:00Z"},
        "spec": {"controller": "lb-demo.dev/sandbox-ingress"},
    }
    validate_object("ingressclasses", default_object("ingressclasses", copy.deepcopy(cls)))
    assert table_row("ingressclasses", cls, now=NOW)["cells"] == [
        "nginx",
        "lb-demo.dev/sandbox-ingress",
        "<none>",
        "60m",
    ]
    bad = copy.deepcopy(cls)
    bad["spec"]["controller"] = "nginx"
    assert causes("ingressclasses", bad) == [
        ("spec.controller", 'Invalid value: "nginx": must be a domain-prefixed path (such as "acme.io/foo")')
    ]
    changed = copy.deepcopy(cls)
    changed["spec"]["controller"] = "example.com/other"
    assert causes("ingressclasses", changed, old=cls) == [
        ("spec.controller", 'Invalid value: "example.com/other": field is immutable')
    ]
