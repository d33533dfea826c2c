"""`/openapi/v2` served as kube-openapi serves it (content negotiation, ETag, 304, 406), the v3
documents' hash caching, and what kubectl 1.37 still reads from v2: `apply -f` of a `kind: List`."""

from __future__ import annotations

import http.client
import json
import ssl
import uuid
from typing import Any
from urllib.parse import urlsplit

import yaml

from sandbox.apiserver import openapi_v2
from tests.conftest import Sandbox

PROTOBUF = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"


def get(sandbox: Sandbox, path: str, **headers: str) -> tuple[int, dict[str, str], bytes]:
    """GET ``path`` on the sandbox's API with the admin token: (status, headers, body)."""
    url = urlsplit(sandbox.url)
    context = ssl.create_default_context(cafile=str(sandbox.state_dir / "ca.crt"))
    conn = http.client.HTTPSConnection(url.hostname or "127.0.0.1", url.port, context=context, timeout=30)
    try:
        conn.request("GET", path, headers={"Authorization": f"Bearer {sandbox.token}", **headers})
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def test_openapi_v2_negotiates_json_and_protobuf_with_one_etag(sandbox: Sandbox) -> None:
    status, headers, body = get(sandbox, "/openapi/v2", Accept="application/json")
    assert status == 200 and headers["content-type"].startswith("application/json")
    assert json.loads(body)["swagger"] == "2.0"
    etag = headers["etag"]
    assert etag.startswith('"') and len(etag) == 130 and headers["vary"] == "Accept"

    status, headers, proto = get(sandbox, "/openapi/v2", Accept=PROTOBUF)
    assert status == 200
    assert headers["content-type"] == "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"
    assert proto == openapi_v2.protobuf_body() and headers["etag"] == etag

    status, _, body = get(sandbox, "/openapi/v2", Accept=PROTOBUF, **{"If-None-Match": etag})
    assert (status, body) == (304, b"")
    assert get(sandbox, "/openapi/v2", Accept="text/html")[0] == 406


def test_openapi_v3_documents_are_cached_by_their_hash(sandbox: Sandbox) -> None:
    _, _, index = get(sandbox, "/openapi/v3")
    url = json.loads(index)["paths"]["apis/apps/v1"]["serverRelativeURL"]
    status, headers, _ = get(sandbox, url)
    assert status == 200 and headers["cache-control"] == "public, immutable" and "expires" in headers
    assert get(sandbox, url, **{"If-None-Match": headers["etag"]})[0] == 304
    status, headers, _ = get(sandbox, "/openapi/v3/apis/apps/v1?hash=0123")
    assert status == 301 and headers["location"] == url


def test_kubectl_applies_a_list_validated_against_openapi_v2(sandbox: Sandbox) -> None:
    namespace = f"list-{uuid.uuid4().hex[:8]}"
    sandbox.kubectl("create", "namespace", namespace)
    try:
        items: list[dict[str, Any]] = [
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"c{i}"}, "data": {"i": str(i)}}
            for i in range(2)
        ]
        manifest = yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": items})
        out = sandbox.kubectl("apply", "-n", namespace, "-f", "-", stdin=manifest)
        assert out.split("\n")[:2] == ["configmap/c0 created", "configmap/c1 created"]
        items[1]["data"]["bogus"] = {"not": "a string"}
        bad = sandbox.run_kubectl("apply", "-n", namespace, "-f", "-", check=False,
                                  stdin=yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": items}))
        # kubectl validates the List's items itself, against /openapi/v2, before sending anything.
        assert bad.returncode == 1
        assert 'ValidationError(ConfigMap.data.bogus): invalid type for io.k8s.api.core.v1.ConfigMap.data: ' \
            'got "map", expected "string"' in bad.stderr
        data = sandbox.kubectl("get", "configmap", "c1", "-n", namespace, "-o", "jsonpath={.data}")
        assert data == '{"i":"1"}'
    finally:
        sandbox.kubectl("delete", "namespace", namespace, "--wait=false")
