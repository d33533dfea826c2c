"""Ingress routing semantics as a pure function: pathType, hosts, precedence, classes, endpoints."""

from __future__ import annotations

from typing import Any

import pytest

from sandbox.ingress_rules import Backend, RouteTable, backend_endpoints, build_routes, normalize_host

CONTROLLER = "lb-demo.dev/sandbox-ingress"
CLASSES: list[dict[str, Any]] = [
    {
        "metadata": {"name": "nginx", "annotations": {"ingressclass.kubernetes.io/is-default-class": "true"}},
        "spec": {"controller": CONTROLLER},
    },
    {"metadata": {"name": "other"}, "spec": {"controller": "example.com/other"}},
]


def path(p: str, path_type: str, service: str) -> dict:
    backend = {"service": {"name": service, "port": {"number": 80}}}
    return {"path": p, "pathType": path_type, "backend": backend}


def ingress(name: str, rules: list[dict], *, created: str = "2026-01-01T00:00:00Z", **spec: object) -> dict:
    return {
        "metadata": {"name": name, "namespace": "default", "creationTimestamp": created},
        "spec": {"rules": rules, **spec},
    }


def service_of(table: RouteTable, host: str, p: str) -> str | None:
    target = table.route(host, p)
    return target.backend.service if target else None


@pytest.mark.parametrize(
    ("path_type", "rule", "request_path", "matches"),
    [
        ("Prefix", "/foo", "/foo", True),
        ("Prefix", "/foo", "/foo/", True),
        ("Prefix", "/foo", "/foo/bar", True),
        ("Prefix", "/foo", "/foobar", False),
        ("Prefix", "/foo/", "/foo", True),
        ("Prefix", "/", "/anything", True),
        ("Prefix", "/aaa/bb", "/aaa/bbb", False),
        ("Exact", "/foo", "/foo", True),
        ("Exact", "/foo", "/foo/", False),
        ("Exact", "/foo", "/FOO", False),
        ("ImplementationSpecific", "/foo", "/foobar", True),
        ("ImplementationSpecific", "/foo", "/fo", False),
    ],
)
def test_path_types(path_type: str, rule: str, request_path: str, matches: bool) -> None:
    table = build_routes(
        [ingress("a", [{"http": {"paths": [path(rule, path_type, "svc")]}}])], CLASSES, controller=CONTROLLER
    )
    assert (service_of(table, "x", request_path) == "svc") is matches


def test_longest_path_wins_and_exact_beats_prefix() -> None:
    table = build_routes(
        [
            ingress(
                "a",
                [
                    {
                        "http": {
                            "paths": [
                                path("/", "Prefix", "root"),
                                path("/api", "Prefix", "api"),
                                path("/api/v1", "Prefix", "v1"),
                                path("/api", "Exact", "exact"),
                            ]
                        }
                    }
                ],
            )
        ],
        CLASSES,
        controller=CONTROLLER,
    )
    assert service_of(table, "x", "/api") == "exact"
    assert service_of(table, "x", "/api/users") == "api"
    assert service_of(table, "x", "/api/v1/users") == "v1"
    assert service_of(table, "x", "/other") == "root"


def test_hosts_exact_then_wildcard_then_any_and_default_backend() -> None:
    table = build_routes(
        [
            ingress(
                "a",
                [
                    {"host": "shop.example.com", "http": {"paths": [path("/", "Prefix", "shop")]}},
                    {"host": "*.example.com", "http": {"paths": [path("/", "Prefix", "wild")]}},
                    {"http": {"paths": [path("/only", "Prefix", "any")]}},
                ],
                defaultBackend={"service": {"name": "fallback", "port": {"number": 80}}},
            ),
        ],
        CLASSES,
        controller=CONTROLLER,
    )
    assert service_of(table, "shop.example.com:8080", "/x") == "shop"
    assert service_of(table, "blog.example.com", "/x") == "wild"
    assert service_of(table, "a.b.example.com", "/only") == "any"
    assert service_of(table, "example.com", "/only") == "any"
    assert service_of(table, "example.com", "/nothing") == "fallback"


def test_no_match_without_default_backend_is_none() -> None:
    table = build_routes(
        [ingress("a", [{"host": "a.test", "http": {"paths": [path("/", "Prefix", "a")]}}])],
        CLASSES,
        controller=CONTROLLER,
    )
    assert table.route("b.test", "/") is None


def test_classes_decide_which_ingresses_are_served_and_the_oldest_wins_a_duplicate() -> None:
    rules = [{"http": {"paths": [path("/", "Prefix", "x")]}}]
    table = build_routes(
        [
            ingress(
                "theirs", [{"http": {"paths": [path("/", "Prefix", "theirs")]}}], ingressClassName="other"
            ),
            ingress(
                "newer", [{"http": {"paths": [path("/", "Prefix", "newer")]}}], created="2026-02-01T00:00:00Z"
            ),
            ingress("older", [{"http": {"paths": [path("/", "Prefix", "older")]}}], ingressClassName="nginx"),
            ingress("missing-class", rules, ingressClassName="nope"),
        ],
        CLASSES,
        controller=CONTROLLER,
    )
    assert service_of(table, "h", "/") == "older"
    assert table.ingresses == ["default/older", "default/newer"]
    no_default = [CLASSES[0] | {"metadata": {"name": "nginx"}}]
    assert build_routes([ingress("unclassed", rules)], no_default, controller=CONTROLLER).ingresses == []


def test_normalize_host() -> None:
    assert normalize_host("Shop.Example.COM:8080") == "shop.example.com"
    assert normalize_host("example.com.") == "example.com"
    assert normalize_host("[::1]:80") == "[::1]"


def test_backend_endpoints_resolve_service_port_to_ready_pod_addresses() -> None:
    services = {"default/web": {"spec": {"ports": [{"name": "http", "port": 80, "targetPort": 8080}]}}}
    slices = [
        {
            "ports": [{"name": "http", "port": 8080}],
            "endpoints": [
                {"addresses": ["127.244.1.2"], "conditions": {"ready": True}, "targetRef": {"name": "web-a"}},
                {
                    "addresses": ["127.244.1.3"],
                    "conditions": {"ready": False, "terminating": True, "serving": True},
                    "targetRef": {"name": "web-b"},
                },
                {"addresses": ["127.244.1.4"], "conditions": {}, "targetRef": {"name": "web-c"}},
            ],
        }
    ]
    expected = [("127.244.1.2", 8080, "web-a"), ("127.244.1.4", 8080, "web-c")]
    assert backend_endpoints(Backend("default", "web", 80), services, slices) == expected
    assert backend_endpoints(Backend("default", "web", "http"), services, slices) == expected
    assert backend_endpoints(Backend("default", "web", 81), services, slices) == []
    assert backend_endpoints(Backend("default", "gone", 80), services, slices) == []
