"""Bad input to the token, review and Secret endpoints is a 4xx Status, never a 5xx, and never
changes anything: wrong JSON types, missing fields, unknown bound kinds, stringData nulls."""

from __future__ import annotations

import json

import pytest

from .conftest import LocalApi

SA = "/api/v1/namespaces/default/serviceaccounts"
SECRETS = "/api/v1/namespaces/default/secrets"
ACCESS = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"
RULES = "/apis/authorization.k8s.io/v1/selfsubjectrulesreviews"


@pytest.mark.parametrize(("path", "body", "code"), [
    (f"{SA}/default/token", {"spec": []}, 400),
    (f"{SA}/default/token", {"spec": {"expirationSeconds": "3600"}}, 400),
    (f"{SA}/default/token", {"spec": {"expirationSeconds": 59}}, 422),
    (f"{SA}/default/token", {"spec": {"expirationSeconds": 2**33}}, 422),
    (f"{SA}/default/token", {"spec": {"audiences": "api"}}, 400),
    (f"{SA}/default/token", {"spec": {"boundObjectRef": "pod"}}, 400),
    (f"{SA}/default/token", {"spec": {"boundObjectRef": {"kind": "ConfigMap", "apiVersion": "v1",
                                                         "name": "x"}}}, 400),
    (f"{SA}/default/token", {"spec": {"boundObjectRef": {"kind": "Pod", "apiVersion": "v1",
                                                         "name": "missing"}}}, 404),
    (f"{SA}/default/token", {"kind": "Pod"}, 400),
    (f"{SA}/nobody/token", {}, 404),
    (ACCESS, {"spec": {}}, 422),
    (ACCESS, {"spec": {"resourceAttributes": "pods"}}, 400),
    (ACCESS, {"spec": {"resourceAttributes": {"verb": "get"}, "nonResourceAttributes": {"path": "/"}}}, 422),
    (RULES, {"spec": {}}, 422),
    (RULES, {"spec": 5}, 400),
    (SECRETS, {"metadata": {"name": "s"}, "data": []}, 400),
    (SECRETS, {"metadata": {"name": "s"}, "data": {"k": 5}}, 400),
    (SECRETS, {"metadata": {"name": "s"}, "stringData": ["a"]}, 400),
    (SECRETS, {"metadata": {"name": "s"}, "type": 7}, 400),
    (SECRETS, {"metadata": {"name": "s"}, "immutable": "yes"}, 400),
])
def test_bad_input_is_a_4xx_and_changes_nothing(local_api: LocalApi, path: str, body: dict,
                                                code: int) -> None:
    before = local_api.resource_version()
    status, answer = local_api.json("POST", path, body=body)
    assert (status, answer["kind"], answer["code"]) == (code, "Status", code), answer
    assert local_api.resource_version() == before


def test_null_string_data_values_are_empty_strings(local_api: LocalApi) -> None:
    body = {"metadata": {"name": "n"}, "stringData": {"a": None}}
    status, secret = local_api.json("POST", SECRETS, body=body)
    assert status == 201 and secret["data"] == {"a": ""} and "stringData" not in secret
    assert json.loads(local_api.request("GET", f"{SECRETS}/n").data)["data"] == {"a": ""}
