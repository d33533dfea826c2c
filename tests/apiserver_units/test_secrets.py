"""Secrets' pure rules: Go's base64 decoding (offsets in its errors), stringData merged into
data, the per-type rules and immutability with kube-apiserver's messages, Go's JSON errors for
docker config documents, the TLS key-pair warning, and printSecret's cells."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import pytest

from sandbox.apiserver.kinds.secret import STRATEGY, go_json_error, tls_key_pair_error
from sandbox.apiserver.schemas import go_base64_decode
from sandbox.apiserver.tables import table_row
from sandbox.apiserver.validation import Invalid, Undecodable, default_object, validate_object


def secret(**fields: object) -> dict:
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "namespace": "default"}, **fields}


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def refused(obj: dict, *, old: dict | None = None) -> Invalid:
    default_object("secrets", obj)
    with pytest.raises(Invalid) as caught:
        validate_object("secrets", obj, old=old)
    return caught.value


@pytest.mark.parametrize(("text", "offset"), [
    ("admin", 4), ("My-pass-123", 2), ("abc", 0), ("a", 0), ("YQ=", 3), ("YQ==x", 4), ("YW Jj", 2),
    ("=YWJ", 0), ("Y===", 1),
])
def test_base64_errors_carry_gos_offsets(text: str, offset: int) -> None:
    with pytest.raises(ValueError, match=rf"^illegal base64 data at input byte {offset}$"):
        go_base64_decode(text)


def test_base64_decoding_skips_line_breaks_and_data_is_stored_canonically() -> None:
    assert go_base64_decode("YWJj\nZGVm\r\nZ2g=") == b"abcdefgh"
    assert go_base64_decode("") == b""
    obj = default_object("secrets", secret(data={"k": "YWJj\nZGVm"}))
    assert obj["data"] == {"k": "YWJjZGVm"}


def test_plain_text_data_is_a_decoding_error() -> None:
    obj = default_object("secrets", secret(data={"password": "admin"}))
    with pytest.raises(Undecodable) as caught:
        validate_object("secrets", obj)
    assert caught.value.message == ('Secret in version "v1" cannot be handled as a Secret: illegal base64 '
                                    "data at input byte 4")


def test_string_data_overrides_data_and_disappears() -> None:
    obj = default_object("secrets", secret(data={"a": b64("old"), "b": b64("kept")},
                                           stringData={"a": "new", "c": ""}))
    validate_object("secrets", obj)
    assert obj == secret(data={"a": b64("new"), "b": b64("kept"), "c": ""}, type="Opaque")


def test_type_rules_and_messages() -> None:
    assert refused(secret(type="kubernetes.io/tls", data={"tls.crt": ""})).message == \
        'Secret "s" is invalid: data[tls.key]: Required value'
    assert refused(secret(type="kubernetes.io/ssh-auth", data={"ssh-privatekey": ""})).message == \
        'Secret "s" is invalid: data[ssh-privatekey]: Required value'
    ok = default_object("secrets", secret(type="kubernetes.io/basic-auth", stringData={"password": ""}))
    validate_object("secrets", ok)
    causes = refused(secret(data={"..x": "", "a b": ""})).causes
    assert [(c["field"], c["message"][:60]) for c in causes] == [
        ("data[..x]", "Invalid value: \"..x\": must not start with '..'"),
        ("data[a b]", "Invalid value: \"a b\": a valid config key must consist of alp"),
    ]
    big = refused(secret(data={"k": base64.b64encode(b"x" * (1024 * 1024 + 1)).decode()}))
    assert big.message == 'Secret "s" is invalid: data: Too long: may not be more than 1048576 bytes'


@pytest.mark.parametrize(("document", "error"), [
    ("", "unexpected end of JSON input"),
    ('{"auths": ', "unexpected end of JSON input"),
    ("{x", "invalid character 'x' looking for beginning of object key string"),
    ('{"a" 1}', "invalid character '1' after object key"),
    ('{"a": 1 "b": 2}', "invalid character '\"' after object key:value pair"),
    ("[1 2]", "invalid character '2' after array element"),
    ("{} x", "invalid character 'x' after top-level value"),
    ("hello", "invalid character 'h' looking for beginning of value"),
    ("[]", "json: cannot unmarshal array into Go value of type map[string]interface {}"),
    ('"s"', "json: cannot unmarshal string into Go value of type map[string]interface {}"),
    ('{"auths": {}}', None),
    ("null", None),
])
def test_docker_config_json_errors_read_like_go(document: str, error: str | None) -> None:
    assert go_json_error(document.encode()) == error


def test_docker_config_contents_are_redacted_in_the_message() -> None:
    invalid = refused(secret(type="kubernetes.io/dockerconfigjson", stringData={".dockerconfigjson": "[1]"}))
    assert invalid.message == ('Secret "s" is invalid: data[.dockerconfigjson]: Invalid value: "<secret '
                               'contents redacted>": json: cannot unmarshal array into Go value of type '
                               "map[string]interface {}")


def test_type_is_immutable_and_immutable_secrets_keep_their_data() -> None:
    old = default_object("secrets", secret(immutable=True, data={"k": b64("v")}))
    old["metadata"].update(uid="u", creationTimestamp="2026-01-01T00:00:00Z")
    changed = secret(immutable=True, data={"k": b64("w")}, type="Other")
    changed["metadata"].update(uid="u", creationTimestamp="2026-01-01T00:00:00Z")
    assert refused(changed, old=old).message == (
        'Secret "s" is invalid: [type: Invalid value: "Other": field is immutable, data: Forbidden: field is '
        "immutable when `immutable` is set]")
    relabelled = default_object("secrets", secret(immutable=True, data={"k": b64("v")}))
    relabelled["metadata"].update(uid="u", creationTimestamp="2026-01-01T00:00:00Z", labels={"a": "b"})
    validate_object("secrets", relabelled, old=old)


def test_tls_key_pair_errors() -> None:
    assert tls_key_pair_error(b"", b"") == "tls: failed to find any PEM data in certificate input"
    cert = b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
    assert tls_key_pair_error(cert, b"junk") == "tls: failed to find any PEM data in key input"
    assert STRATEGY.warnings(secret(type="Opaque"), None) == []


def test_table_shows_type_and_key_count_never_values() -> None:
    obj = default_object("secrets", secret(stringData={"a": "hunter2", "b": "x"}))
    obj["metadata"]["creationTimestamp"] = "2026-03-01T11:59:00Z"
    row = table_row("secrets", obj, now=datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC))
    assert row["cells"] == ["s", "Opaque", 2, "60s"]
    assert [c["name"] for c in STRATEGY.columns()] == ["Name", "Type", "Data", "Age"]


def test_immutable_config_maps_keep_their_data() -> None:
    meta = {"name": "c", "namespace": "default", "uid": "u", "creationTimestamp": "2026-01-01T00:00:00Z"}
    old = default_object("configmaps", {"apiVersion": "v1", "kind": "ConfigMap", "metadata": dict(meta),
                                        "immutable": True, "data": {"k": "v"}})
    changed = default_object("configmaps", {"apiVersion": "v1", "kind": "ConfigMap", "metadata": dict(meta),
                                            "immutable": False, "data": {"k": "w"}})
    with pytest.raises(Invalid) as caught:
        validate_object("configmaps", changed, old=old)
    assert caught.value.message == (
        'ConfigMap "c" is invalid: [immutable: Forbidden: field is immutable when `immutable` is set, data: '
        "Forbidden: field is immutable when `immutable` is set]")
