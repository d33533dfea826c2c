"""Chunked lists as kube-apiserver serves them: every continue page is read at the first page's
resourceVersion (like etcd reading at a revision), and once that revision is compacted away the
continue is answered 410 Expired with the real message and a fresh token to go on."""

from __future__ import annotations

import json

from kubernetes import client

from tests.apiserver.conftest import LocalApi

CONFIGMAPS = "/api/v1/namespaces/default/configmaps"


def config_map(name: str, value: str) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"value": value}}


def names(page: dict) -> list[str]:
    return [item["metadata"]["name"] for item in page["items"]]


def pages(api: LocalApi, url: str, token: str) -> list[dict]:
    """The continue pages after a first page, following tokens until the last."""
    found = []
    while token:
        status, page = api.json("GET", f"{url}&continue={token}")
        assert status == 200, page
        found.append(page)
        token = page["metadata"].get("continue", "")
    return found


EXPIRED = (
    "The provided continue parameter is too old to display a consistent list result. You can start a new "
    "list without the continue parameter, or use the continue token in this response to retrieve the "
    "remainder of the results. Continuing with the provided token results in an inconsistent list - objects "
    "that were created, modified, or deleted between the time the first chunk was returned and now may show "
    "up in the list."
)


def test_continue_pages_show_the_first_pages_snapshot(local_api: LocalApi) -> None:
    for name in ("a", "b", "c", "d", "e", "f"):
        local_api.json("POST", CONFIGMAPS, body=config_map(name, "v1"))
    status, first = local_api.json("GET", CONFIGMAPS + "?limit=2")
    assert status == 200 and names(first) == ["a", "b"]
    pinned = first["metadata"]["resourceVersion"]
    local_api.json("PUT", CONFIGMAPS + "/c", body=config_map("c", "v2"))
    local_api.json("DELETE", CONFIGMAPS + "/d")
    local_api.json("POST", CONFIGMAPS, body=config_map("cc", "v1"))
    rest = pages(local_api, CONFIGMAPS + "?limit=2", first["metadata"]["continue"])
    assert [names(p) for p in rest] == [["c", "d"], ["e", "f"]]
    assert rest[0]["items"][0]["data"] == {"value": "v1"}, "c as it was when the list began"
    assert {p["metadata"]["resourceVersion"] for p in rest} == {pinned}
    assert rest[0]["metadata"]["remainingItemCount"] == 2
    _, fresh = local_api.json("GET", CONFIGMAPS)
    assert names(fresh) == ["a", "b", "c", "cc", "e", "f"]


def test_expired_continue_is_410_with_a_token_to_go_on(local_api: LocalApi) -> None:
    for name in ("a", "b", "c", "d"):
        local_api.json("POST", CONFIGMAPS, body=config_map(name, "v1"))
    _, first = local_api.json("GET", CONFIGMAPS + "?limit=2")
    local_api.json("PUT", CONFIGMAPS + "/c", body=config_map("c", "v2"))
    for i in range(60):  # more changes than the server's history holds (50): the revision is compacted
        local_api.json("PUT", CONFIGMAPS + "/a", body=config_map("a", f"w{i}"))
    status, expired = local_api.json("GET", CONFIGMAPS + f"?limit=2&continue={first['metadata']['continue']}")
    assert status == 410
    assert (expired["kind"], expired["reason"], expired["code"], expired["message"]) == (
        "Status",
        "Expired",
        410,
        EXPIRED,
    )
    token = expired["metadata"]["continue"]
    status, rest = local_api.json("GET", CONFIGMAPS + f"?limit=2&continue={token}")
    assert status == 200 and names(rest) == ["c", "d"]
    assert rest["items"][0]["data"] == {"value": "v2"}, "the fresh token lists the latest state"
    assert int(rest["metadata"]["resourceVersion"]) == local_api.resource_version()


def test_official_client_pages_through_a_changing_list(local_api: LocalApi) -> None:
    for i in range(5):
        local_api.json("POST", CONFIGMAPS, body=config_map(f"k{i}", "v1"))
    with client.ApiClient(local_api.kube_configuration()) as api:
        core = client.CoreV1Api(api)
        first = core.list_namespaced_config_map("default", limit=3)
        local_api.json("DELETE", CONFIGMAPS + "/k4")
        second = core.list_namespaced_config_map("default", limit=3, _continue=first.metadata._continue)
    assert [c.metadata.name for c in first.items + second.items] == [f"k{i}" for i in range(5)]
    assert second.metadata.resource_version == first.metadata.resource_version
    assert second.metadata._continue is None
    assert json.loads(local_api.request("GET", CONFIGMAPS).data)["items"][-1]["metadata"]["name"] == "k3"
