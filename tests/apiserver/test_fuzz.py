"""Hypothesis throws random bodies, selectors and query strings at the API server: it never
answers 5xx, and a request it refuses (4xx) never changes the stored state."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .conftest import LocalApi, _run_local_api

PATHS = [
    "/api/v1/namespaces/default/pods",
    "/api/v1/namespaces/default/pods/fuzz",
    "/api/v1/namespaces/default/pods/fuzz/status",
    "/api/v1/namespaces/default/pods/fuzz/binding",
    "/api/v1/namespaces/default/services",
    "/api/v1/namespaces/default/services/fuzz",
    "/api/v1/namespaces/default/configmaps",
    "/api/v1/namespaces/default/events",
    "/api/v1/namespaces",
    "/api/v1/nodes/fuzz",
    "/api/v1/pods",
    "/apis/apps/v1/namespaces/default/deployments",
    "/apis/apps/v1/namespaces/default/deployments/fuzz",
    "/apis/apps/v1/namespaces/default/deployments/fuzz/scale",
    "/apis/apps/v1/namespaces/default/replicasets/fuzz/status",
    "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices",
    "/apis/nope/v1/things",
    "/api/v1/namespaces/default/widgets/x",
]
CONTENT_TYPES = [
    "application/json",
    "application/yaml",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
    "application/json-patch+json",
    "application/apply-patch+yaml",
    "application/vnd.kubernetes.protobuf",
    "text/plain",
    "",
]
ACCEPTS = [
    "application/json;as=Table;v=v1;g=meta.k8s.io,application/json",
    "application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io",
    "application/json;as=PartialObjectMetadata;v=v1;g=meta.k8s.io",
    "application/yaml",
    "application/vnd.kubernetes.protobuf",
    "text/html",
]
QUERY_KEYS = [
    "limit",
    "continue",
    "resourceVersion",
    "resourceVersionMatch",
    "labelSelector",
    "fieldSelector",
    "gracePeriodSeconds",
    "fieldManager",
    "propagationPolicy",
    "dryRun",
    "fieldValidation",
    "includeObject",
    "container",
    "tailLines",
]

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**40), 2**40)
    | st.floats(allow_nan=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=20,
)
k8s_like = st.fixed_dictionaries(
    {
        "apiVersion": st.sampled_from(["v1", "apps/v1", "bogus/v9"]),
        "kind": st.sampled_from(["Pod", "Service", "Deployment", "ConfigMap", "Scale", "Binding", "Nope"]),
        "metadata": st.fixed_dictionaries(
            {"name": st.sampled_from(["fuzz", "Fuzz!", "", "a" * 300])},
            optional={
                "namespace": st.sampled_from(["default", "other"]),
                "labels": json_values,
                "resourceVersion": st.text(max_size=5),
                "finalizers": json_values,
                "ownerReferences": json_values,
            },
        ),
    },
    optional={"spec": json_values, "status": json_values, "data": json_values, "target": json_values},
)
bodies = (
    k8s_like.map(lambda d: json.dumps(d).encode())
    | json_values.map(lambda v: json.dumps(v).encode())
    | st.binary(max_size=200)
    | st.text(max_size=200).map(str.encode)
)
queries = st.dictionaries(st.sampled_from(QUERY_KEYS), st.text(max_size=30), max_size=4)


@pytest.fixture(scope="module")
def fuzz_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalApi]:
    """One in-process server for all examples of this module."""
    yield from _run_local_api(Path(tmp_path_factory.mktemp("fuzz")) / "state", history_size=200)


def _seed(api: LocalApi) -> None:
    """Objects the random requests can hit."""
    pod = {"metadata": {"name": "fuzz"}, "spec": {"containers": [{"name": "c", "image": "lb-demo"}]}}
    api.request("POST", "/api/v1/namespaces/default/pods", body=pod)
    dep = {
        "metadata": {"name": "fuzz"},
        "spec": {
            "selector": {"matchLabels": {"a": "b"}},
            "template": {"metadata": {"labels": {"a": "b"}}, "spec": pod["spec"]},
        },
    }
    api.request("POST", "/apis/apps/v1/namespaces/default/deployments", body=dep)


def _settle(api: LocalApi) -> None:
    """Let the garbage collector finish what earlier examples started, so only this request can
    change the state while it is measured."""
    while asyncio.run_coroutine_threadsafe(api.server.gc.sweep(), api.loop).result(30):
        pass


def _check(
    api: LocalApi,
    method: str,
    path: str,
    body: bytes | None,
    content_type: str,
    query: dict,
    accept: str = "",
) -> None:
    """Send one request; assert no 5xx and no state change on refusal."""
    _seed(api)
    _settle(api)
    before = api.resource_version()
    headers = {"Content-Type": content_type} if content_type else {}
    if accept:
        headers["Accept"] = accept
    url = path + ("?" + urlencode(query) if query else "")
    response = api.request(method, url, body=body, headers=headers, timeout=20)
    assert response.status < 500, (method, url, body, response.data[:300])
    if response.status >= 400:
        assert api.resource_version() == before, (method, url, body, response.status)
        if response.headers.get("Content-Type", "").startswith("application/json"):
            assert json.loads(response.data)["kind"] == "Status"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    method=st.sampled_from(["POST", "PUT", "PATCH", "DELETE"]),
    path=st.sampled_from(PATHS),
    body=bodies,
    content_type=st.sampled_from(CONTENT_TYPES),
    query=queries,
)
def test_random_writes_never_fail_the_server(
    fuzz_api: LocalApi, method: str, path: str, body: bytes, content_type: str, query: dict
) -> None:
    _check(fuzz_api, method, path, body, content_type, query)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    path=st.sampled_from(PATHS),
    query=queries,
    label=st.text(max_size=40),
    field=st.text(max_size=40),
    accept=st.sampled_from(ACCEPTS)
    | st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=40),
)
def test_random_reads_and_selectors_never_fail_the_server(
    fuzz_api: LocalApi, path: str, query: dict, label: str, field: str, accept: str
) -> None:
    _check(fuzz_api, "GET", path, None, "", {**query, "labelSelector": label, "fieldSelector": field}, accept)
