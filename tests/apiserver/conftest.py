"""Fixtures for API server tests: an in-process API server (no cluster components) for fast
protocol tests, and helpers to run the bundled kubectl against a live sandbox."""

from __future__ import annotations

import asyncio
import json
import ssl
import subprocess
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import urllib3

from lab.launcher import free_port
from sandbox.apiserver.certs import ensure_certificates
from sandbox.apiserver.server import ApiServer
from tests.conftest import Sandbox


@dataclass
class LocalApi:
    """An ApiServer running on its own event loop thread, and a raw HTTPS client for it."""

    server: ApiServer
    url: str
    token: str
    ca_file: Path
    loop: asyncio.AbstractEventLoop
    http: urllib3.PoolManager

    def request(
        self,
        method: str,
        path: str,
        *,
        body: bytes | dict | None = None,
        headers: dict | None = None,
        token: str | None = None,
        timeout: float = 30.0,
    ) -> urllib3.BaseHTTPResponse:
        """One request; dict bodies are sent as JSON."""
        all_headers = {"Authorization": f"Bearer {self.token if token is None else token}", **(headers or {})}
        if isinstance(body, dict):
            body = json.dumps(body).encode()
            all_headers.setdefault("Content-Type", "application/json")
        return self.http.request(
            method, self.url + path, body=body, headers=all_headers, timeout=timeout, retries=False
        )

    def json(self, method: str, path: str, **kwargs) -> tuple[int, dict]:
        """A request whose JSON answer is decoded."""
        response = self.request(method, path, **kwargs)
        return response.status, json.loads(response.data)

    def resource_version(self) -> int:
        """The store's current global resourceVersion."""
        return self.server.store.resource_version

    def kube_configuration(self):
        """A kubernetes.client Configuration for this server."""
        from kubernetes import client

        config = client.Configuration()
        config.host = self.url
        config.api_key = {"authorization": f"Bearer {self.token}"}
        config.ssl_ca_cert = str(self.ca_file)
        return config


@pytest.fixture
def local_api(tmp_path: Path) -> Iterator[LocalApi]:
    """A fresh in-process API server with a small watch history (50 events) and bookmarks every
    half second."""
    yield from _run_local_api(tmp_path / "state", history_size=50, bookmark_interval=0.5)


def _run_local_api(
    state_dir: Path, *, history_size: int, bookmark_interval: float = 15.0
) -> Iterator[LocalApi]:
    """Start an ApiServer on a loop in a thread; stop it afterwards."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    port = free_port()
    token = uuid.uuid4().hex
    server = ApiServer(
        state_dir=state_dir, token=token, history_size=history_size, bookmark_interval=bookmark_interval
    )
    asyncio.run_coroutine_threadsafe(server.start(port=port), loop).result(30)
    ca_file = ensure_certificates(state_dir)[0]
    context = ssl.create_default_context(cafile=str(ca_file))
    http = urllib3.PoolManager(ssl_context=context, maxsize=8)
    try:
        yield LocalApi(server, f"https://127.0.0.1:{port}", token, ca_file, loop, http)
    finally:
        asyncio.run_coroutine_threadsafe(server.stop(), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
        http.clear()


def kubectl(
    box: Sandbox, *args: str, check: bool = True, timeout: float = 60.0, stdin: str | None = None
) -> subprocess.CompletedProcess:
    """Run the bundled kubectl against a sandbox."""
    return box.run_kubectl(*args, stdin=stdin, check=check, timeout=timeout)


def header_of(output: str) -> list[str]:
    """The column titles of kubectl's table output (split on runs of 2+ spaces)."""
    import re

    return re.split(r"\s{2,}", output.splitlines()[0].strip())


@pytest.fixture
def namespace(sandbox: Sandbox) -> Iterator[str]:
    """A fresh namespace in the shared sandbox for one test, deleted afterwards."""
    name = f"t-{uuid.uuid4().hex[:8]}"
    kubectl(
        sandbox,
        "apply",
        "-f",
        "-",
        stdin=json.dumps({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}),
    )
    yield name
    kubectl(sandbox, "delete", "namespace", name, "--wait=false", check=False)
