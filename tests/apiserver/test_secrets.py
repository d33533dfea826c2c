"""Secrets as kube-apiserver serves them, through the bundled kubectl 1.37 and the official
Python client against a live sandbox: `kubectl create secret generic/tls`, stringData merged
into data and never returned, base64 and per-type validation with the real messages,
immutable Secrets, `get` (NAME TYPE DATA AGE), `-o yaml` and `describe`."""

from __future__ import annotations

import base64
import datetime
import json
import re
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.conftest import Sandbox

from .conftest import header_of, kubectl

pytestmark = pytest.mark.sandbox


def secret_doc(name: str, namespace: str, **fields: object) -> str:
    """A Secret manifest as JSON."""
    meta = {"name": name, "namespace": namespace}
    return json.dumps({"apiVersion": "v1", "kind": "Secret", "metadata": meta, **fields})


def get_json(box: Sandbox, *args: str) -> dict:
    """`kubectl get ... -o json`, decoded."""
    return json.loads(kubectl(box, "get", *args, "-o", "json").stdout)


def test_create_generic_get_describe_and_yaml(sandbox: Sandbox, namespace: str) -> None:
    out = kubectl(sandbox, "create", "secret", "generic", "db", "-n", namespace,
                  "--from-literal=user=admin", "--from-literal=password=s3cr3t!").stdout
    assert out.strip() == "secret/db created"
    table = kubectl(sandbox, "get", "secret", "db", "-n", namespace).stdout
    assert header_of(table) == ["NAME", "TYPE", "DATA", "AGE"]
    assert re.search(r"^db\s+Opaque\s+2\s+\d+s$", table, re.M)
    secret = yaml.safe_load(kubectl(sandbox, "get", "secret", "db", "-n", namespace, "-o", "yaml").stdout)
    assert secret["type"] == "Opaque"
    assert {k: base64.b64decode(v).decode() for k, v in secret["data"].items()} == \
        {"user": "admin", "password": "s3cr3t!"}
    described = kubectl(sandbox, "describe", "secret", "db", "-n", namespace).stdout
    assert re.search(r"^Type:\s+Opaque$", described, re.M)
    assert re.search(r"^password:\s+7 bytes$", described, re.M)
    assert re.search(r"^user:\s+5 bytes$", described, re.M)
    assert "s3cr3t" not in described and "admin" not in described


def test_string_data_is_merged_into_data_and_never_returned(sandbox: Sandbox, namespace: str) -> None:
    doc = secret_doc("mixed", namespace, data={"a": base64.b64encode(b"from data").decode(),
                                               "b": base64.b64encode(b"kept").decode()},
                     stringData={"a": "from stringData", "c": "plain"})
    kubectl(sandbox, "create", "-f", "-", stdin=doc)
    secret = get_json(sandbox, "secret", "mixed", "-n", namespace)
    assert "stringData" not in secret
    assert {k: base64.b64decode(v) for k, v in secret["data"].items()} == \
        {"a": b"from stringData", "b": b"kept", "c": b"plain"}
    kubectl(sandbox, "patch", "secret", "mixed", "-n", namespace, "-p", '{"stringData":{"b":"patched"}}')
    patched = get_json(sandbox, "secret", "mixed", "-n", namespace)
    assert base64.b64decode(patched["data"]["b"]) == b"patched" and "stringData" not in patched


def test_plain_text_under_data_is_refused_like_the_real_server(sandbox: Sandbox, namespace: str) -> None:
    result = kubectl(sandbox, "apply", "-f", "-", check=False,
                     stdin=secret_doc("plain", namespace, data={"password": "admin"}))
    assert result.returncode == 1
    assert 'Secret in version "v1" cannot be handled as a Secret: illegal base64 data at input byte 4' \
        in result.stderr
    assert "(BadRequest)" in result.stderr
    assert kubectl(sandbox, "get", "secret", "plain", "-n", namespace, check=False).returncode == 1


def test_typed_secrets_need_their_keys(sandbox: Sandbox, namespace: str) -> None:
    # kubectl prints one cause as `is invalid: <cause>`, several as `is invalid: ` + `* <cause>` lines.
    cases = {
        "kubernetes.io/tls": ' \n* data[tls.crt]: Required value\n* data[tls.key]: Required value\n',
        "kubernetes.io/basic-auth": ' \n* data[username]: Required value\n* data[password]: Required value\n',
        "kubernetes.io/ssh-auth": " data[ssh-privatekey]: Required value\n",
        "kubernetes.io/dockerconfigjson": " data[.dockerconfigjson]: Required value\n",
        "kubernetes.io/service-account-token":
            " metadata.annotations[kubernetes.io/service-account.name]: Required value\n",
    }
    for index, (kind, message) in enumerate(cases.items()):
        result = kubectl(sandbox, "create", "-f", "-", check=False,
                         stdin=secret_doc(f"typed-{index}", namespace, type=kind))
        assert result.returncode == 1
        assert result.stderr == f'The Secret "typed-{index}" is invalid:{message}', result.stderr
    bad_json = secret_doc("registry", namespace, type="kubernetes.io/dockerconfigjson",
                          stringData={".dockerconfigjson": "{not json"})
    result = kubectl(sandbox, "create", "-f", "-", check=False, stdin=bad_json)
    assert ('data[.dockerconfigjson]: Invalid value: "<secret contents redacted>": invalid character '
            "'n' looking for beginning of object key string") in result.stderr
    assert "not json" not in result.stderr


def test_immutable_secret_refuses_data_changes(sandbox: Sandbox, namespace: str) -> None:
    kubectl(sandbox, "create", "-f", "-", stdin=secret_doc("frozen", namespace, immutable=True,
                                                            stringData={"k": "v1"}))
    result = kubectl(sandbox, "patch", "secret", "frozen", "-n", namespace, "-p", '{"stringData":{"k":"v2"}}',
                     check=False)
    assert result.returncode == 1
    assert ('The Secret "frozen" is invalid: data: Forbidden: field is immutable when `immutable` is set'
            in result.stderr)
    result = kubectl(sandbox, "patch", "secret", "frozen", "-n", namespace, "-p", '{"immutable":false}',
                     check=False)
    assert "immutable: Forbidden: field is immutable when `immutable` is set" in result.stderr
    kubectl(sandbox, "label", "secret", "frozen", "-n", namespace, "team=a")
    secret = get_json(sandbox, "secret", "frozen", "-n", namespace)
    assert secret["metadata"]["labels"] == {"team": "a"} and base64.b64decode(secret["data"]["k"]) == b"v1"
    result = kubectl(sandbox, "patch", "secret", "frozen", "-n", namespace, "-p", '{"type":"Other"}',
                     check=False)
    assert 'type: Invalid value: "Other": field is immutable' in result.stderr


def _key_pair(tmp: Path, name: str) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now)
            .not_valid_after(now + datetime.timedelta(days=1)).sign(key, hashes.SHA256()))
    cert_path, key_path = tmp / f"{name}.crt", tmp / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def test_create_secret_tls_and_mismatched_key_warning(sandbox: Sandbox, namespace: str,
                                                      tmp_path: Path) -> None:
    cert, key = _key_pair(tmp_path, "web")
    out = kubectl(sandbox, "create", "secret", "tls", "web-tls", "-n", namespace, f"--cert={cert}",
                  f"--key={key}").stdout
    assert out.strip() == "secret/web-tls created"
    table = kubectl(sandbox, "get", "secret", "web-tls", "-n", namespace).stdout
    assert re.search(r"^web-tls\s+kubernetes\.io/tls\s+2\s+", table, re.M)
    _, other_key = _key_pair(tmp_path, "other")
    doc = secret_doc("odd-tls", namespace, type="kubernetes.io/tls",
                     data={"tls.crt": base64.b64encode(cert.read_bytes()).decode(),
                           "tls.key": base64.b64encode(other_key.read_bytes()).decode()})
    result = kubectl(sandbox, "create", "-f", "-", stdin=doc)
    assert "Warning: tls: private key does not match public key" in result.stderr


def test_official_client_reads_secrets_and_selects_by_type(sandbox: Sandbox, namespace: str) -> None:
    from kubernetes import client, config

    kubectl(sandbox, "create", "secret", "generic", "one", "-n", namespace, "--from-literal=k=v")
    kubectl(sandbox, "create", "-f", "-", stdin=secret_doc("auth", namespace, type="kubernetes.io/basic-auth",
                                                           stringData={"username": "u", "password": "p"}))
    api = client.CoreV1Api(config.new_client_from_config(str(sandbox.kubeconfig)))
    secret = api.read_namespaced_secret("auth", namespace)
    assert secret.type == "kubernetes.io/basic-auth" and secret.string_data is None
    assert base64.b64decode(secret.data["username"]) == b"u"
    picked = api.list_namespaced_secret(namespace, field_selector="type=kubernetes.io/basic-auth")
    assert [s.metadata.name for s in picked.items] == ["auth"]
