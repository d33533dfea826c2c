"""Fixtures for the server-side apply and generic-path tests: the shared sandbox, a namespace
per test, the official Python client configured for the sandbox, and (for what needs a small
watch history, such as an expired continue token) an in-process API server, `local_api`."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from kubernetes import client

from tests.apiserver.conftest import local_api, namespace  # noqa: F401 - fixtures, re-exported
from tests.conftest import Sandbox


@pytest.fixture
def api(sandbox: Sandbox) -> Iterator[client.ApiClient]:
    """A kubernetes.client ApiClient for the shared sandbox (admin token)."""
    config = client.Configuration()
    config.host = sandbox.url
    config.api_key = {"authorization": f"Bearer {sandbox.token}"}
    config.ssl_ca_cert = str(sandbox.state_dir / "ca.crt")
    with client.ApiClient(config) as api_client:
        yield api_client
