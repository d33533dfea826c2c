"""The authenticator's pure rules: the admin token, ServiceAccount JWTs signed with the
sandbox's key (issuer, audience, expiry with leeway, the ServiceAccount and bound objects
still existing with the same uid), and nothing else."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from sandbox.apiserver.auth import Authenticator, TokenIssuer, UserInfo, service_account_claims
from sandbox.apiserver.errors import ApiError


class Entry:
    def __init__(self, obj: dict) -> None:
        self.obj = obj


class FakeStore:
    """Just `get` by (key, namespace, name), as the authenticator uses the store."""

    def __init__(self, *objects: tuple[str, dict]) -> None:
        self.objects = {(key, o["metadata"].get("namespace", ""), o["metadata"]["name"]): o
                        for key, o in objects}

    def get(self, key: str, namespace: str, name: str) -> Entry | None:
        obj = self.objects.get((key, namespace, name))
        return Entry(obj) if obj else None


SA = {"metadata": {"name": "robot", "namespace": "team", "uid": "sa-uid"}}
POD = {"metadata": {"name": "p", "namespace": "team", "uid": "pod-uid"}}


@pytest.fixture
def issuer(tmp_path: Path) -> TokenIssuer:
    return TokenIssuer(tmp_path)


def authenticator(issuer: TokenIssuer, *objects: tuple[str, dict]) -> Authenticator:
    return Authenticator(admin_token="admin-secret", issuer=issuer, store=FakeStore(*objects))  # type: ignore[arg-type]


def test_the_key_is_created_once_private_and_reused(tmp_path: Path) -> None:
    first = TokenIssuer(tmp_path)
    assert (tmp_path / "sa.key").stat().st_mode & 0o777 == 0o600
    token = first.sign({"a": 1})
    assert TokenIssuer(tmp_path).verify(token) == {"a": 1}
    assert TokenIssuer(tmp_path / "other").verify(token) is None


def test_admin_token_is_a_superuser(issuer: TokenIssuer) -> None:
    user = authenticator(issuer).authenticate("Bearer admin-secret")
    assert user == UserInfo("lb-demo-admin", groups=("system:masters", "system:authenticated"))
    for header in ("", "Bearer", "Basic admin-secret", "Bearer admin-secre", "Bearer a.b.c"):
        with pytest.raises(ApiError) as caught:
            authenticator(issuer).authenticate(header)
        assert (caught.value.code, caught.value.message) == (401, "Unauthorized")


def test_service_account_token_user(issuer: TokenIssuer) -> None:
    claims = service_account_claims(SA, audiences=["https://kubernetes.default.svc.cluster.local"],
                                    expiration=600)
    user = authenticator(issuer, ("/serviceaccounts", SA)).authenticate("Bearer " + issuer.sign(claims))
    assert user.username == "system:serviceaccount:team:robot" and user.uid == "sa-uid"
    assert user.groups == ("system:serviceaccounts", "system:serviceaccounts:team", "system:authenticated")
    assert user.extra == {"authentication.kubernetes.io/credential-id": [f"JTI={claims['jti']}"]}
    assert user.service_account == ("team", "robot")


@pytest.mark.parametrize("change", ["expired", "not yet valid", "other audience", "other issuer",
                                    "recreated account", "deleted pod"])
def test_tokens_that_are_refused(issuer: TokenIssuer, change: str) -> None:
    now = int(time.time())
    claims = service_account_claims(SA, audiences=["https://kubernetes.default.svc.cluster.local"],
                                    expiration=600, pod=POD, now=now)
    objects = [("/serviceaccounts", SA), ("/pods", POD)]
    if change == "expired":
        claims["exp"] = now - 61
    elif change == "not yet valid":
        claims["nbf"] = now + 61
    elif change == "other audience":
        claims["aud"] = ["vault"]
    elif change == "other issuer":
        claims["iss"] = "kubernetes/serviceaccount"
    elif change == "recreated account":
        objects[0] = ("/serviceaccounts", {"metadata": {**SA["metadata"], "uid": "new"}})
    else:
        objects.pop()
    with pytest.raises(ApiError):
        authenticator(issuer, *objects).authenticate("Bearer " + issuer.sign(claims))


def test_leeway_of_a_minute(issuer: TokenIssuer) -> None:
    now = int(time.time())
    claims = service_account_claims(SA, audiences=["https://kubernetes.default.svc.cluster.local"],
                                    expiration=600, now=now - 600 - 30)
    assert authenticator(issuer, ("/serviceaccounts", SA)).authenticate("Bearer " + issuer.sign(claims))
