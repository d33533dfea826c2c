"""Authentication: who a request is, as kube-apiserver's authenticators decide it.

Two kinds of bearer token are accepted (anything else is 401 `Unauthorized`):

- the cluster's admin token (`STATE_DIR/token`, the kubeconfig's), a static token whose user
  is `lb-demo-admin` in the groups `system:masters` (RBAC's superuser group) and
  `system:authenticated`;
- ServiceAccount tokens: JWTs signed RS256 with the sandbox's service-account key
  (`STATE_DIR/sa.key`, created once, 0600), issuer and audience
  `https://kubernetes.default.svc.cluster.local`, with Kubernetes' claims (`sub`
  `system:serviceaccount:<ns>:<name>`, `kubernetes.io` namespace / serviceaccount / pod /
  secret / node references, `jti`). `pkg/serviceaccount`'s validator accepts one when the
  signature, `exp`/`nbf` (60 s leeway), issuer and an audience check out and the
  ServiceAccount (and the pod or Secret it is bound to) still exists with the same uid. Its
  user is `system:serviceaccount:<ns>:<name>` in `system:serviceaccounts`,
  `system:serviceaccounts:<ns>` and `system:authenticated`, with the `extra` the real
  authenticator adds (credential id, bound pod and node).

Tokens come from `serviceaccounts/<name>/token` (TokenRequest, see `kinds/serviceaccount.py`),
or, the legacy way, from a `kubernetes.io/service-account-token` Secret (issuer
`kubernetes/serviceaccount`, no expiry, valid while the Secret holds it; see `kinds/secret.py`).
No token is ever logged.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import web
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from .errors import ApiError

if TYPE_CHECKING:
    from .store import Store

SA_KEY_FILE = "sa.key"
ISSUER = "https://kubernetes.default.svc.cluster.local"
LEGACY_ISSUER = "kubernetes/serviceaccount"
LEGACY = "kubernetes.io/serviceaccount/"
API_AUDIENCES = (ISSUER,)
LEEWAY = 60
ADMIN_USER = "lb-demo-admin"
ADMIN_GROUPS = ("system:masters", "system:authenticated")
SA_PREFIX = "system:serviceaccount:"


@dataclass(frozen=True)
class UserInfo:
    """An authenticated user (`user.Info`): name, uid, groups and extra attributes."""

    username: str
    uid: str = ""
    groups: tuple[str, ...] = ()
    extra: dict[str, list[str]] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        """The `UserInfo` object of a SelfSubjectReview or TokenReview."""
        out: dict[str, Any] = {"username": self.username}
        if self.uid:
            out["uid"] = self.uid
        out["groups"] = list(self.groups)
        if self.extra:
            out["extra"] = self.extra
        return out

    @property
    def service_account(self) -> tuple[str, str] | None:
        """(namespace, name) when this is a ServiceAccount, else None."""
        if not self.username.startswith(SA_PREFIX):
            return None
        namespace, _, name = self.username[len(SA_PREFIX):].partition(":")
        return (namespace, name) if namespace and name else None


UNAUTHORIZED = ApiError(401, "Unauthorized", "Unauthorized")
USER = web.RequestKey("user", UserInfo)  # request[USER]: who is asking, set by the server


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class TokenIssuer:
    """Signs and verifies ServiceAccount JWTs with the sandbox's RSA key (`STATE_DIR/sa.key`)."""

    def __init__(self, state_dir: Path) -> None:
        path = state_dir / SA_KEY_FILE
        if path.exists():
            key = serialization.load_pem_private_key(path.read_bytes(), password=None)
            assert isinstance(key, rsa.RSAPrivateKey)
        else:
            key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            state_dir.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
            os.replace(tmp, path)
        self._key = key
        self._public = key.public_key()
        der = self._public.public_bytes(serialization.Encoding.DER,
                                        serialization.PublicFormat.SubjectPublicKeyInfo)
        self.key_id = _b64url(hashlib.sha256(der).digest())

    def sign(self, claims: dict[str, Any]) -> str:
        """A compact RS256 JWS of ``claims``."""
        header = _b64url(json.dumps({"alg": "RS256", "kid": self.key_id}, separators=(",", ":")).encode())
        payload = _b64url(json.dumps(claims, separators=(",", ":")).encode())
        signing_input = f"{header}.{payload}".encode()
        signature = self._key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
        return f"{header}.{payload}.{_b64url(signature)}"

    def verify(self, token: str) -> dict[str, Any] | None:
        """The claims of a token this key signed, or None (malformed, other key, bad signature)."""
        parts = token.split(".")
        if len(parts) != 3:
            return None
        try:
            header = json.loads(_unb64url(parts[0]))
            if not isinstance(header, dict) or header.get("alg") != "RS256":
                return None
            self._public.verify(_unb64url(parts[2]), f"{parts[0]}.{parts[1]}".encode(), padding.PKCS1v15(),
                                hashes.SHA256())
            claims = json.loads(_unb64url(parts[1]))
        except (ValueError, InvalidSignature, UnicodeDecodeError):
            return None
        return claims if isinstance(claims, dict) else None


def legacy_claims(sa: dict, secret_name: str) -> dict[str, Any]:
    """`serviceaccount.LegacyClaims`: the never-expiring token of a service-account-token Secret."""
    meta = sa["metadata"]
    return {"iss": LEGACY_ISSUER, LEGACY + "namespace": meta["namespace"],
            LEGACY + "secret.name": secret_name, LEGACY + "service-account.name": meta["name"],
            LEGACY + "service-account.uid": meta["uid"],
            "sub": f"{SA_PREFIX}{meta['namespace']}:{meta['name']}"}


def service_account_claims(sa: dict, *, audiences: list[str], expiration: int, pod: dict | None = None,
                           secret: dict | None = None, node: dict | None = None,
                           now: int | None = None) -> dict[str, Any]:
    """`serviceaccount.Claims`: the claims of a bound token for ``sa``."""
    issued = int(time.time()) if now is None else now
    meta = sa["metadata"]
    private: dict[str, Any] = {"namespace": meta["namespace"],
                               "serviceaccount": {"name": meta["name"], "uid": meta["uid"]}}
    for key, obj in (("pod", pod), ("secret", secret), ("node", node)):
        if obj is not None:
            private[key] = {"name": obj["metadata"]["name"], "uid": obj["metadata"]["uid"]}
    return {"aud": audiences, "exp": issued + expiration, "iat": issued, "iss": ISSUER,
            "jti": str(uuid.uuid4()), "kubernetes.io": private, "nbf": issued,
            "sub": f"{SA_PREFIX}{meta['namespace']}:{meta['name']}"}


class Authenticator:
    """Turns a request's Authorization header into a UserInfo, or 401."""

    def __init__(self, *, admin_token: str, issuer: TokenIssuer, store: Store) -> None:
        self.admin_token = admin_token
        self.issuer = issuer
        self.store = store

    def authenticate(self, header: str) -> UserInfo:
        """The user of a `Bearer` header (401 Unauthorized for anything else)."""
        scheme, _, given = header.partition(" ")
        given = given.strip()
        if scheme.lower() != "bearer" or not given:
            raise UNAUTHORIZED
        user, _ = self.review(given, API_AUDIENCES)
        if user is None:
            raise UNAUTHORIZED
        return user

    def review(self, token: str, audiences: tuple[str, ...] | list[str]) -> tuple[UserInfo | None, list[str]]:
        """The user of a bearer token presented for ``audiences`` and the audiences it is valid
        for (their intersection), or (None, []) — what a TokenReview reports. The admin token is
        audience-agnostic: valid for the API server's own audiences only."""
        if hmac.compare_digest(token.encode(), self.admin_token.encode()):
            valid = [a for a in audiences if a in API_AUDIENCES]
            return (UserInfo(ADMIN_USER, groups=ADMIN_GROUPS), valid) if valid else (None, [])
        return self._service_account_user(token, audiences)

    def _object(self, key: str, namespace: str, ref: Any) -> dict | None:
        """The stored object a claim references, when its uid still matches."""
        if not isinstance(ref, dict):
            return None
        entry = self.store.get(key, namespace, str(ref.get("name") or ""))
        if entry is None or entry.obj["metadata"].get("uid") != ref.get("uid"):
            return None
        return entry.obj

    def _legacy_user(self, token: str, claims: dict[str, Any]) -> UserInfo | None:
        """A Secret-based token: valid while its Secret holds it and its ServiceAccount lives."""
        namespace = str(claims.get(LEGACY + "namespace") or "")
        secret = self.store.get("/secrets", namespace, str(claims.get(LEGACY + "secret.name") or ""))
        stored = ((secret.obj.get("data") or {}).get("token") if secret else None) or ""
        if not hmac.compare_digest(stored.encode(), base64.b64encode(token.encode())):
            return None
        sa = self._object("/serviceaccounts", namespace, {"name": claims.get(LEGACY + "service-account.name"),
                                                          "uid": claims.get(LEGACY + "service-account.uid")})
        if sa is None:
            return None
        return UserInfo(f"{SA_PREFIX}{namespace}:{sa['metadata']['name']}", uid=sa["metadata"]["uid"],
                        groups=("system:serviceaccounts", f"system:serviceaccounts:{namespace}",
                                "system:authenticated"))

    def _service_account_user(self, token: str,
                              wanted: tuple[str, ...] | list[str]) -> tuple[UserInfo | None, list[str]]:
        """`pkg/serviceaccount` validation of a bound token presented for the ``wanted`` audiences."""
        claims = self.issuer.verify(token)
        if claims is not None and claims.get("iss") == LEGACY_ISSUER:
            valid = [a for a in wanted if a in API_AUDIENCES]  # legacy tokens carry no audience
            user = self._legacy_user(token, claims) if valid else None
            return (user, valid) if user is not None else (None, [])
        if claims is None or claims.get("iss") != ISSUER:
            return None, []
        now = time.time()
        try:
            if now > float(claims["exp"]) + LEEWAY or now < float(claims.get("nbf", 0)) - LEEWAY:
                return None, []
        except (KeyError, TypeError, ValueError):
            return None, []
        audiences = claims.get("aud")
        audiences = [audiences] if isinstance(audiences, str) else audiences
        valid = [a for a in wanted if isinstance(audiences, list) and a in audiences]
        if not valid:
            return None, []
        private = claims.get("kubernetes.io")
        if not isinstance(private, dict):
            return None, []
        namespace = str(private.get("namespace") or "")
        sa = self._object("/serviceaccounts", namespace, private.get("serviceaccount"))
        if sa is None:
            return None, []
        extra: dict[str, list[str]] = {}
        if "pod" in private:
            pod = self._object("/pods", namespace, private["pod"])
            if pod is None or pod["metadata"].get("deletionTimestamp"):
                return None, []
            extra["authentication.kubernetes.io/pod-name"] = [pod["metadata"]["name"]]
            extra["authentication.kubernetes.io/pod-uid"] = [pod["metadata"]["uid"]]
        if "secret" in private and self._object("/secrets", namespace, private["secret"]) is None:
            return None, []
        node = private.get("node")
        if isinstance(node, dict):
            extra["authentication.kubernetes.io/node-name"] = [str(node.get("name") or "")]
            extra["authentication.kubernetes.io/node-uid"] = [str(node.get("uid") or "")]
        if claims.get("jti"):
            extra["authentication.kubernetes.io/credential-id"] = [f"JTI={claims['jti']}"]
        name = sa["metadata"]["name"]
        return UserInfo(f"{SA_PREFIX}{namespace}:{name}", uid=sa["metadata"]["uid"],
                        groups=("system:serviceaccounts", f"system:serviceaccounts:{namespace}",
                                "system:authenticated"),
                        extra=dict(sorted(extra.items()))), valid
