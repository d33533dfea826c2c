"""`pods/proxy` and `services/proxy` through real `kubectl proxy`, as the Kubernetes Basics
tutorial uses them: curl-like requests to localhost reach the pod, errors are kube-apiserver's."""

from __future__ import annotations

import json
import re
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest

from tests.conftest import KUBECTL
from tests.sandbox.conftest import Kube, wait_until


@pytest.fixture
def proxy_url(kube: Kube) -> Iterator[str]:
    """`kubectl proxy --port=0` against the sandbox; its base URL."""
    proc = subprocess.Popen([str(KUBECTL), "proxy", "--port=0"], env=kube.box.kubectl_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        found = re.search(r"127\.0\.0\.1:(\d+)", line)
        assert found, line
        yield f"http://127.0.0.1:{found.group(1)}/api/v1/namespaces/{kube.namespace}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def call(url: str, *, method: str = "GET", body: bytes | None = None) -> tuple[int, bytes]:
    """One HTTP request; (status, body) whatever the status."""
    request = urllib.request.Request(url, data=body, method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def test_pod_proxy_reaches_the_named_pod_with_method_path_query_and_body(kube: Kube, proxy_url: str) -> None:
    pod = kube.ready_pods()[0]["metadata"]["name"]
    status, body = call(f"{proxy_url}/pods/{pod}:8080/proxy/")
    assert status == 200
    assert json.loads(body)["pod"]["name"] == pod
    status, body = call(f"{proxy_url}/pods/{pod}:http/proxy/echo?x=1", method="PUT", body=b"hello")
    assert status == 200
    echoed = json.loads(body)["request"]
    assert (echoed["method"], echoed["target"], echoed["body_bytes"]) == ("PUT", "/echo?x=1", 5)
    status, body = call(f"{proxy_url}/pods/{pod}/proxy/status/418")
    assert status == 418 and json.loads(body)["pod"]["name"] == pod
    status, body = call(f"{proxy_url}/pods/{pod}:8080/proxy/", method="HEAD")
    assert (status, body) == (200, b"")


def test_service_proxy_spreads_over_ready_endpoints(kube: Kube, proxy_url: str) -> None:
    ready = {p["metadata"]["name"] for p in kube.ready_pods()}
    seen = set()
    for _ in range(30):
        status, body = call(f"{proxy_url}/services/backend-service:80/proxy/")
        assert status == 200
        seen.add(json.loads(body)["pod"]["name"])
    assert seen <= ready and len(seen) >= 2
    status, body = call(f"{proxy_url}/services/backend-service:http/proxy/echo", method="POST", body=b"{}")
    assert status == 200 and json.loads(body)["request"]["method"] == "POST"


def test_proxy_errors_are_kube_apiservers(kube: Kube, proxy_url: str) -> None:
    pod = kube.ready_pods()[0]["metadata"]["name"]
    status, body = call(f"{proxy_url}/pods/nope:8080/proxy/")
    assert (status, json.loads(body)["message"]) == (404, 'pods "nope" not found')
    status, body = call(f"{proxy_url}/services/backend-service:81/proxy/")
    assert (status, json.loads(body)["message"]) == (
        503, 'no service port 81 found for service "backend-service"')
    status, body = call(f"{proxy_url}/pods/{pod}:9/proxy/")
    message = json.loads(body)["message"]
    assert status == 503 and message.startswith("error trying to reach service: dial tcp ")
    assert message.endswith(":9: connect: connection refused")
    kube.run("create", "service", "clusterip", "empty", "--tcp=80:8080")
    wait_until(lambda: kube.run("get", "endpoints", "empty", check=False), what="Endpoints of Service empty")
    status, body = call(f"{proxy_url}/services/empty:80/proxy/")
    assert (status, json.loads(body)["message"]) == (503, 'no endpoints available for service "empty"')


WS_ECHO = """
import os
from aiohttp import web
async def ws(request):
    sock = web.WebSocketResponse()
    await sock.prepare(request)
    async for msg in sock:
        await sock.send_str("echo:" + msg.data)
    return sock
async def plain(request):
    return web.Response(text="plain " + request.headers.get("Upgrade", "-"), status=404)
app = web.Application()
app.router.add_get("/ws", ws)
app.router.add_get("/nows", plain)
web.run_app(app, host=os.environ["BIND_ADDRESS"], port=8080, print=None)  # the pod IP (shared host network)
"""


def test_a_websocket_reaches_the_pod_through_kubectl_proxy(kube: Kube, proxy_url: str) -> None:
    """An upgrade through `pods/proxy` and `services/proxy` (a dashboard behind `kubectl proxy`):
    the pod's 101 comes back and messages flow both ways, big ones too; a pod that does not
    switch protocols answers as usual."""
    import asyncio

    import aiohttp

    WS_TIMEOUT = aiohttp.ClientWSTimeout(ws_receive=30, ws_close=10)

    kube.run("run", "wsecho", "--image=python", "--labels=app=wsecho", "--port=8080", "--", "python3", "-c",
             WS_ECHO)
    kube.run("expose", "pod", "wsecho", "--port=80", "--target-port=8080")
    wait_until(lambda: kube.ready_pods("app=wsecho"), timeout=60, what="the echo pod Ready")

    def answering() -> tuple[int, bytes] | None:
        answer = call(f"{proxy_url}/pods/wsecho:8080/proxy/nows")
        return answer if answer[0] == 404 else None

    assert wait_until(answering, timeout=30, what="the echo server listening")[1] == b"plain -"

    async def talk(url: str) -> list[str]:
        async with aiohttp.ClientSession() as session, session.ws_connect(url, timeout=WS_TIMEOUT) as ws:
            got = []
            for text in ("hello", "x" * 300_000):
                await ws.send_str(text)
                got.append((await ws.receive(timeout=30)).data)
            return got

    ws_base = proxy_url.replace("http://", "ws://")
    for path in ("/pods/wsecho:8080/proxy/ws", "/services/wsecho:80/proxy/ws"):
        assert asyncio.run(talk(ws_base + path)) == ["echo:hello", "echo:" + "x" * 300_000], path

    async def refused() -> tuple[int, str]:
        async with aiohttp.ClientSession() as session:
            try:
                await session.ws_connect(ws_base + "/pods/wsecho:8080/proxy/nows", timeout=WS_TIMEOUT)
            except aiohttp.WSServerHandshakeError as exc:
                return exc.status, ""
        return 0, "switched"

    assert asyncio.run(refused()) == (404, "")
