"""`kubectl logs --timestamps/--since/--since-time/--tail/--limit-bytes` on a real container of the
shared sandbox: the kubelet keeps a CRI timestamp per line, `pods/log` filters and prefixes by it."""

from __future__ import annotations

import json
import re

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from tests import polling
from tests.conftest import Sandbox

STAMP = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z"
SCRIPT = "echo one; echo two >&2; sleep 2; echo three; echo four"


@pytest.fixture
def talker(sandbox: Sandbox, namespace: str) -> str:
    """A finished pod that printed one, two (stderr), then two seconds later three and four."""
    sandbox.kubectl(
        "run", "talker", "-n", namespace, "--image=busybox", "--restart=Never", "--", "sh", "-c", SCRIPT
    )
    polling.wait_until(
        lambda: (
            sandbox.kubectl("get", "pod", "talker", "-n", namespace, "-o", "jsonpath={.status.phase}")
            == "Succeeded"
        ),
        timeout=120,
        interval=0.5,
        what="the talker pod to finish",
    )
    return "talker"


def test_timestamps_since_tail_and_limit(
    sandbox: Sandbox, namespace: str, talker: str, api: client.ApiClient
) -> None:
    def logs(*flags: str) -> str:
        return sandbox.kubectl("logs", talker, "-n", namespace, *flags)

    assert logs() == "one\ntwo\nthree\nfour\n"
    stamped = logs("--timestamps").splitlines()
    assert [re.fullmatch(rf"({STAMP}) (\w+)", line) is not None for line in stamped] == [True] * 4
    times = [line.split(" ", 1)[0] for line in stamped]
    assert times == sorted(times)
    assert logs("--since-time", times[2]) == "three\nfour\n", "records older than since-time are dropped"
    assert logs("--since=1h") == "one\ntwo\nthree\nfour\n"
    assert logs("--tail=1", "--timestamps") == stamped[-1] + "\n"
    assert logs("--tail=3", "--since-time", times[2]) == "three\nfour\n", "tail first, then since"
    assert logs("--limit-bytes=5") == "one\nt"

    core = client.CoreV1Api(api)
    text = core.read_namespaced_pod_log(talker, namespace, timestamps=True, since_seconds=3600, tail_lines=2)
    assert re.fullmatch(rf"{STAMP} three\n{STAMP} four\n", text), "the official client's options too"
    with pytest.raises(ApiException) as raised:
        core.read_namespaced_pod_log(talker, namespace, since_seconds=0)
    assert raised.value.status == 422
    assert json.loads(raised.value.body)["message"] == (
        'PodLogOptions "talker" is invalid: sinceSeconds: Invalid value: 0: must be greater than 0'
    )
    bad = sandbox.run_kubectl(
        "get", "--raw", f"/api/v1/namespaces/{namespace}/pods/talker/log?sinceTime=yesterday", check=False
    )
    assert bad.returncode == 1 and 'parsing time "yesterday"' in bad.stderr
