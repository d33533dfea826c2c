"""List+watch with the official Python client and raw streams: resume from a resourceVersion,
410 Expired after the history window, bookmarks, watch-list and Table-form events."""

from __future__ import annotations

import json
import threading
import time

import pytest
from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException

from .conftest import LocalApi
from .test_protocol import PODS, pod_body


def core(local_api: LocalApi) -> client.CoreV1Api:
    """A CoreV1Api bound to the in-process server."""
    return client.CoreV1Api(client.ApiClient(local_api.kube_configuration()))


def collect(stream, count: int) -> list[tuple[str, str]]:
    """The first `count` events of a watch stream as (type, name)."""
    seen = []
    for event in stream:
        obj = event["object"]
        name = obj.metadata.name if hasattr(obj, "metadata") else obj["metadata"].get("name", "")
        seen.append((event["type"], name))
        if len(seen) == count:
            break
    return seen


def test_watch_resumes_from_a_list_resource_version(local_api: LocalApi) -> None:
    api = core(local_api)
    api.create_namespaced_pod("default", pod_body("before"))
    listed = api.list_namespaced_pod("default")
    assert [p.metadata.name for p in listed.items] == ["before"]
    api.create_namespaced_pod("default", pod_body("after"))
    api.patch_namespaced_pod("before", "default", {"metadata": {"labels": {"touched": "yes"}}})
    api.delete_namespaced_pod("after", "default")
    stream = watch.Watch().stream(
        api.list_namespaced_pod,
        "default",
        resource_version=listed.metadata.resource_version,
        timeout_seconds=5,
    )
    assert collect(stream, 3) == [("ADDED", "after"), ("MODIFIED", "before"), ("DELETED", "after")]


def test_watch_from_a_version_older_than_the_history_is_expired(local_api: LocalApi) -> None:
    api = core(local_api)
    start = api.list_namespaced_pod("default").metadata.resource_version
    for index in range(60):
        api.create_namespaced_pod("default", pod_body(f"churn-{index}"))
    response = local_api.request("GET", PODS + f"?watch=true&resourceVersion={start}")
    event = json.loads(response.data.splitlines()[0])
    assert event["type"] == "ERROR"
    assert event["object"]["code"] == 410 and event["object"]["reason"] == "Expired"
    with pytest.raises(ApiException) as raised:
        for _ in watch.Watch().stream(
            api.list_namespaced_pod, "default", resource_version=start, timeout_seconds=5
        ):
            pass
    assert raised.value.status == 410


def test_bookmarks_at_timeout_and_no_blank_lines(local_api: LocalApi) -> None:
    api = core(local_api)
    rv = api.list_namespaced_pod("default").metadata.resource_version
    api.create_namespaced_pod("default", pod_body("b1"))
    response = local_api.request(
        "GET", PODS + f"?watch=true&resourceVersion={rv}&allowWatchBookmarks=true&timeoutSeconds=1"
    )
    lines = response.data.split(b"\n")
    assert lines[-1] == b"" and all(lines[:-1]), "every line is an event; no blank keep-alives"
    events = [json.loads(line) for line in lines[:-1]]
    assert events[0]["type"] == "ADDED" and {e["type"] for e in events[1:]} == {"BOOKMARK"}
    assert int(events[-1]["object"]["metadata"]["resourceVersion"]) >= int(
        events[0]["object"]["metadata"]["resourceVersion"]
    )


def test_watch_list_sends_initial_events_then_the_end_bookmark(local_api: LocalApi) -> None:
    api = core(local_api)
    for name in ("w1", "w2"):
        api.create_namespaced_pod("default", pod_body(name))
    query = (
        "?watch=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true"
        "&timeoutSeconds=1&fieldSelector=metadata.name%3Dw2"
    )
    events = [json.loads(line) for line in local_api.request("GET", PODS + query).data.splitlines()]
    assert [e["type"] for e in events[:2]] == ["ADDED", "BOOKMARK"]
    assert events[0]["object"]["metadata"]["name"] == "w2"
    assert events[1]["object"]["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}
    query = "?watch=true&sendInitialEvents=true&timeoutSeconds=1"
    assert local_api.json("GET", PODS + query)[0] == 422


def test_watch_events_in_table_form(local_api: LocalApi) -> None:
    api = core(local_api)
    api.create_namespaced_pod("default", pod_body("t1"))
    headers = {"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"}
    timer = threading.Timer(0.3, lambda: api.create_namespaced_pod("default", pod_body("t2")))
    timer.start()
    try:
        response = local_api.request("GET", PODS + "?watch=true&timeoutSeconds=2", headers=headers)
    finally:
        timer.join()
    events = [json.loads(line) for line in response.data.splitlines()]
    assert [e["object"]["kind"] for e in events] == ["Table", "Table"]
    assert events[0]["object"]["columnDefinitions"] and not events[1]["object"]["columnDefinitions"]
    assert events[1]["object"]["rows"][0]["cells"][0] == "t2"


def test_idle_watches_stay_open_with_periodic_bookmarks(local_api: LocalApi) -> None:
    api = core(local_api)
    rv = api.list_namespaced_pod("default").metadata.resource_version
    started = time.monotonic()
    response = local_api.request(
        "GET", PODS + f"?watch=true&resourceVersion={rv}&allowWatchBookmarks=true&timeoutSeconds=2"
    )
    assert time.monotonic() - started >= 1.9, "the stream stays open until timeoutSeconds"
    events = [json.loads(line) for line in response.data.splitlines()]
    assert len(events) >= 3 and {e["type"] for e in events} == {"BOOKMARK"}
    assert all(e["object"]["metadata"]["resourceVersion"] == rv for e in events)
    without = local_api.request("GET", PODS + f"?watch=true&resourceVersion={rv}&timeoutSeconds=1")
    assert without.data == b"", "no bookmarks unless asked, and never blank keep-alive lines"


def test_delete_preconditions(local_api: LocalApi) -> None:
    api = core(local_api)
    created = api.create_namespaced_pod("default", pod_body("guarded"))
    wrong = {"preconditions": {"uid": "not-the-uid"}}
    status, body = local_api.json("DELETE", PODS + "/guarded", body=wrong)
    assert status == 409 and body["reason"] == "Conflict" and "Precondition failed" in body["message"]
    stale = {"preconditions": {"resourceVersion": "1"}}
    assert local_api.json("DELETE", PODS + "/guarded", body=stale)[0] == 409
    right = {
        "preconditions": {"uid": created.metadata.uid, "resourceVersion": created.metadata.resource_version}
    }
    assert local_api.json("DELETE", PODS + "/guarded", body=right)[0] == 200
    assert local_api.json("GET", PODS + "/guarded")[0] == 404
