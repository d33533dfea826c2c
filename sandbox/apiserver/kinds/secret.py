"""Secrets (core/v1), the sandbox's `pkg/registry/core/secret/strategy.go`.

- Decoding: `data` values are `[]byte`, so each must be padded standard base64 (else 400
  `illegal base64 data at input byte N`, see `schemas.go_base64_decode`) and is stored in
  canonical form. `stringData` is write-only: on every write its keys are merged into `data`
  (overriding), and it is never stored or returned (`Convert_v1_Secret_To_core_Secret`).
- Defaults: `type: Opaque`.
- Validation (`ValidateSecret`, `ValidateSecretUpdate`): data keys are config keys, at most
  1 MiB of data, the keys each type requires (service-account-token's annotation,
  dockercfg/dockerconfigjson's JSON document, basic-auth's username or password, ssh-auth's
  private key, tls's certificate and key), `type` immutable, and once `immutable: true` neither
  `immutable` nor `data` may change.
- Warnings: a `kubernetes.io/tls` Secret whose key does not match its certificate
  (`tls.X509KeyPair`'s error, as `warningsForSecret` reports it).
- Table: NAME, TYPE, DATA (the number of keys), AGE; field selector `type`.
- The tokens controller: a `kubernetes.io/service-account-token` Secret naming an existing
  ServiceAccount is filled in at once with a legacy token (accepted by `auth.py` while the
  Secret holds it), `ca.crt` and `namespace`, and the account's uid annotation.

Values are never logged: errors name keys, and an invalid JSON document is shown as
`<secret contents redacted>` exactly as kube-apiserver does.
"""

from __future__ import annotations

import base64
import json
import re
from datetime import datetime
from typing import TYPE_CHECKING, Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from sandbox.apiserver.auth import legacy_claims
from sandbox.apiserver.printing import CORE, Row, age_col, age_of, col, doc, name_col, name_of
from sandbox.apiserver.schemas import go_base64_decode
from sandbox.apiserver.store import copy_object
from sandbox.apiserver.strategy import Resource, Strategy
from sandbox.apiserver.validation.fielderrors import Errors
from sandbox.apiserver.validation.names import config_map_key_errors

if TYPE_CHECKING:
    from sandbox.apiserver.registry import Registry

OPAQUE = "Opaque"
SERVICE_ACCOUNT_TOKEN = "kubernetes.io/service-account-token"
DOCKERCFG = "kubernetes.io/dockercfg"
DOCKER_CONFIG_JSON = "kubernetes.io/dockerconfigjson"
BASIC_AUTH = "kubernetes.io/basic-auth"
SSH_AUTH = "kubernetes.io/ssh-auth"
TLS = "kubernetes.io/tls"
SERVICE_ACCOUNT_NAME_KEY = "kubernetes.io/service-account.name"
SERVICE_ACCOUNT_UID_KEY = "kubernetes.io/service-account.uid"
MAX_SECRET_SIZE = 1024 * 1024
REDACTED = "<secret contents redacted>"
IMMUTABLE = "field is immutable when `immutable` is set"


def decoded(secret: dict) -> dict[str, bytes]:
    """The Secret's data, decoded (keys whose value is not valid base64 are left out)."""
    out: dict[str, bytes] = {}
    data = secret.get("data")
    for key, value in (data.items() if isinstance(data, dict) else ()):
        try:
            out[key] = go_base64_decode(value) if isinstance(value, str) else b""
        except ValueError:
            continue
    return out


def _merge_string_data(obj: dict) -> None:
    """stringData's keys overwrite data's, base64-encoded; stringData itself is dropped. A
    stringData that would not decode (a number as a value) is left for decoding to refuse."""
    string_data = obj.get("stringData")
    if string_data is None:
        obj.pop("stringData", None)
        return
    if not isinstance(string_data, dict) or not all(isinstance(v, str) for v in string_data.values()):
        return
    data = obj.get("data")
    if data is None:
        data = obj["data"] = {}
    if not isinstance(data, dict):
        return
    for key, value in string_data.items():
        data[key] = base64.b64encode(value.encode()).decode()
    del obj["stringData"]


# --- Go's encoding/json errors for `json.Unmarshal(b, &map[string]interface{}{})` -----------------

_GO_TYPES = {dict: "object", list: "array", str: "string", bool: "bool", int: "number", float: "number"}


def _quote_char(char: str) -> str:
    """`quoteChar` of Go's JSON scanner."""
    if char == "'":
        return "'\\''"
    if char == '"':
        return "'\"'"
    return "'" + json.dumps(char)[1:-1] + "'"


def _container_at(text: str, pos: int) -> str:
    """`{` or `[`: the innermost open container before ``pos`` (strings skipped)."""
    stack: list[str] = []
    in_string = escaped = False
    for char in text[:pos]:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "{[":
            stack.append(char)
        elif char in "}]" and stack:
            stack.pop()
    return stack[-1] if stack else ""


def _reject_constant(name: str) -> None:
    raise ValueError(name)


def go_json_error(raw: bytes) -> str | None:
    """Why Go's json.Unmarshal into a map would refuse ``raw`` (its message), or None."""
    text = raw.decode("utf-8", "replace")
    if not text.strip():
        return "unexpected end of JSON input"
    try:
        value = json.loads(text, parse_constant=_reject_constant)
    except ValueError as exc:
        if not isinstance(exc, json.JSONDecodeError):
            char = text.lstrip()[:1] or text[:1]
            return f"invalid character {_quote_char(char)} looking for beginning of value"
        pos, msg = exc.pos, exc.msg
        if pos >= len(text.rstrip()) or msg.startswith("Unterminated string"):
            return "unexpected end of JSON input"
        char = text[pos]
        where = {
            "Expecting value": "looking for beginning of value",
            "Expecting property name enclosed in double quotes": "looking for beginning of object key string",
            "Expecting ':' delimiter": "after object key",
            "Extra data": "after top-level value",
        }.get(msg)
        if msg == "Expecting ',' delimiter":
            in_object = _container_at(text, pos) == "{"
            where = "after object key:value pair" if in_object else "after array element"
        elif msg.startswith("Invalid control character"):
            where = "in string literal"
        elif msg.startswith("Invalid \\escape"):
            char, where = text[pos + 1] if pos + 1 < len(text) else char, "in string escape code"
        return f"invalid character {_quote_char(char)} {where or 'looking for beginning of value'}"
    if value is None or isinstance(value, dict):
        return None
    kind = _GO_TYPES.get(type(value), "value")
    return f"json: cannot unmarshal {kind} into Go value of type map[string]interface {{}}"


# --- validation ------------------------------------------------------------------------------------


def _validate_secret(errs: Errors, obj: dict) -> None:
    data = obj.get("data") or {}
    values = decoded(obj)
    if isinstance(data, dict):
        for key in data:
            for msg in config_map_key_errors(key):
                errs.invalid(f"data[{key}]", key, msg)
        if sum(len(v) for v in values.values()) > MAX_SECRET_SIZE:
            errs.too_long("data", f"may not be more than {MAX_SECRET_SIZE} bytes")
    secret_type = obj.get("type")
    if secret_type == SERVICE_ACCOUNT_TOKEN:
        annotations = (obj.get("metadata") or {}).get("annotations") or {}
        if not annotations.get(SERVICE_ACCOUNT_NAME_KEY):
            errs.required(f"metadata.annotations[{SERVICE_ACCOUNT_NAME_KEY}]")
    elif secret_type in (DOCKERCFG, DOCKER_CONFIG_JSON):
        key = ".dockercfg" if secret_type == DOCKERCFG else ".dockerconfigjson"
        if key not in values:
            errs.required(f"data[{key}]")
        else:
            error = go_json_error(values[key])
            if error is not None:
                errs.invalid(f"data[{key}]", REDACTED, error)
    elif secret_type == BASIC_AUTH:
        if "username" not in values and "password" not in values:
            errs.required("data[username]")
            errs.required("data[password]")
    elif secret_type == SSH_AUTH:
        if not values.get("ssh-privatekey"):
            errs.required("data[ssh-privatekey]")
    elif secret_type == TLS:
        if "tls.crt" not in values:
            errs.required("data[tls.crt]")
        if "tls.key" not in values:
            errs.required("data[tls.key]")


def _validate_secret_update(errs: Errors, obj: dict, old: dict) -> None:
    if obj.get("type") != old.get("type"):
        errs.invalid("type", obj.get("type"), "field is immutable")
    if old.get("immutable") is True:
        if obj.get("immutable") is not True:
            errs.forbidden("immutable", IMMUTABLE)
        if (obj.get("data") or {}) != (old.get("data") or {}):
            errs.forbidden("data", IMMUTABLE)


_PEM = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----")


def tls_key_pair_error(cert_pem: bytes, key_pem: bytes) -> str | None:
    """`tls.X509KeyPair`'s error for a certificate and key, or None when they form a pair."""
    if not any(m.group(1) == b"CERTIFICATE" for m in _PEM.finditer(cert_pem)):
        return "tls: failed to find any PEM data in certificate input"
    if not any(m.group(1).endswith(b"PRIVATE KEY") for m in _PEM.finditer(key_pem)):
        return "tls: failed to find any PEM data in key input"
    try:
        cert = x509.load_pem_x509_certificate(cert_pem)
    except ValueError as exc:
        return f"x509: malformed certificate: {exc}"
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError):
        return "tls: failed to parse private key"
    raw = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    if cert.public_key().public_bytes(*raw) != key.public_key().public_bytes(*raw):
        return "tls: private key does not match public key"
    return None


RESOURCE = Resource("", "v1", "Secret", "secrets", "io.k8s.api.core.v1.Secret", field_selectors=("type",))


class SecretStrategy(Strategy):
    """Secrets: stringData merged into data, type defaults and rules, immutability, printSecret."""

    resource = RESOURCE

    def default(self, obj: dict) -> None:
        """Merge stringData into data; `type` defaults to Opaque."""
        _merge_string_data(obj)
        if not obj.get("type"):
            obj["type"] = OPAQUE

    def validate(self, errs: Errors, obj: dict) -> None:
        """`ValidateSecret`."""
        _validate_secret(errs, obj)

    def validate_update(self, errs: Errors, obj: dict, old: dict) -> None:
        """`ValidateSecretUpdate`: type is immutable, and so is everything once `immutable`."""
        _validate_secret_update(errs, obj, old)

    def warnings(self, obj: dict, old: dict | None) -> list[str]:
        """`warningsForSecret`: a TLS Secret's key must match its certificate."""
        if obj.get("type") != TLS:
            return []
        values = decoded(obj)
        error = tls_key_pair_error(values.get("tls.crt", b""), values.get("tls.key", b""))
        return [error] if error else []

    async def after_create(self, registry: Registry, obj: dict) -> None:
        """The tokens controller: a service-account-token Secret of an existing ServiceAccount
        gets the account's uid annotation and `token`, `ca.crt`, `namespace` data."""
        meta = obj["metadata"]
        annotations = meta.get("annotations") or {}
        if obj.get("type") != SERVICE_ACCOUNT_TOKEN or (obj.get("data") or {}).get("token") \
                or registry.issuer is None:
            return
        from sandbox.apiserver.kinds import serviceaccount

        sa = registry.store.get(serviceaccount.RESOURCE.key, meta["namespace"],
                                annotations.get(SERVICE_ACCOUNT_NAME_KEY, ""))
        wanted_uid = annotations.get(SERVICE_ACCOUNT_UID_KEY)
        if sa is None or (wanted_uid and wanted_uid != sa.obj["metadata"]["uid"]):
            return
        token = registry.issuer.sign(legacy_claims(sa.obj, meta["name"]))
        filled = copy_object(obj)
        filled["metadata"].setdefault("annotations", {})[SERVICE_ACCOUNT_UID_KEY] = sa.obj["metadata"]["uid"]
        data = filled.setdefault("data", {})
        data["token"] = base64.b64encode(token.encode()).decode()
        data["namespace"] = base64.b64encode(meta["namespace"].encode()).decode()
        data["ca.crt"] = base64.b64encode(registry.ca_pem).decode()
        await registry.update(RESOURCE, meta["namespace"], meta["name"], filled)

    def columns(self) -> list[dict[str, Any]]:
        """printSecret's columns."""
        return [name_col(),
                col("Type", description=doc(CORE + "Secret", "type")),
                col("Data", description=doc(CORE + "Secret", "data")),
                age_col()]

    def row(self, obj: dict, now: datetime) -> Row:
        """printSecret's cells: the number of keys, never a value."""
        data = obj.get("data")
        return [name_of(obj), str(obj.get("type") or ""), len(data) if isinstance(data, dict) else 0,
                age_of(obj, now)]


STRATEGY = SecretStrategy()
