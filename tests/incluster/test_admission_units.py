"""The ServiceAccount admission plugin's rules on plain pod objects (no cluster): which
containers get the token mount, an existing `kube-api-access-*` volume reused, who decides
automounting, and the mountable-secrets annotation's refusals with the plugin's messages."""

from __future__ import annotations

import pytest

from sandbox.apiserver import admission
from sandbox.apiserver.errors import ApiError
from sandbox.apiserver.kinds import pod as pods
from sandbox.apiserver.kinds import serviceaccount
from tests.apiserver_units.test_auth import FakeStore

MOUNT = "/var/run/secrets/kubernetes.io/serviceaccount"


class Accounts:
    """What the plugin reads of the registry: its store's ServiceAccounts."""

    def __init__(self, *accounts: dict) -> None:
        self.store = FakeStore(*((serviceaccount.RESOURCE.key, a) for a in accounts))


def account(name: str = "default", **fields) -> dict:
    return {"metadata": {"name": name, "namespace": "ns", **fields.pop("metadata", {})}, **fields}


def admitted(spec: dict, *accounts: dict) -> dict:
    obj = {"metadata": {"name": "p", "namespace": "ns"}, "spec": spec}
    admission.admit_pod(Accounts(*(accounts or (account(),))), pods.RESOURCE, obj)  # type: ignore[arg-type]
    return obj["spec"]


def test_an_existing_token_volume_is_reused_and_own_mounts_are_kept() -> None:
    spec = admitted({
        "volumes": [{"name": "kube-api-access-abcde", "projected": {"sources": []}}],
        "initContainers": [{"name": "init"}],
        "containers": [{"name": "a"}, {"name": "b", "volumeMounts": [{"name": "x", "mountPath": MOUNT}]}],
    })
    assert [v["name"] for v in spec["volumes"]] == ["kube-api-access-abcde"]
    reused = [{"name": "kube-api-access-abcde", "readOnly": True, "mountPath": MOUNT}]
    assert spec["initContainers"][0]["volumeMounts"] == reused
    assert spec["containers"][0]["volumeMounts"] == reused
    assert spec["containers"][1]["volumeMounts"] == [{"name": "x", "mountPath": MOUNT}]


def test_no_volume_when_every_container_mounts_the_path_itself() -> None:
    spec = admitted({"containers": [{"name": "a", "volumeMounts": [{"name": "x", "mountPath": MOUNT}]}]})
    assert "volumes" not in spec


@pytest.mark.parametrize(("pod_says", "account_says", "mounted"), [
    (None, None, True), (None, False, False), (True, False, True), (False, True, False), (False, None, False),
])
def test_the_pod_then_the_service_account_decide_automounting(
        pod_says: bool | None, account_says: bool | None, mounted: bool) -> None:
    spec: dict = {"containers": [{"name": "a"}]}
    if pod_says is not None:
        spec["automountServiceAccountToken"] = pod_says
    sa = account() if account_says is None else account(automountServiceAccountToken=account_says)
    assert ("volumes" in admitted(spec, sa)) is mounted


def test_image_pull_secrets_come_from_the_service_account_unless_the_pod_has_some() -> None:
    sa = account(imagePullSecrets=[{"name": "registry"}])
    assert admitted({"containers": [{"name": "a"}]}, sa)["imagePullSecrets"] == [{"name": "registry"}]
    own = admitted({"containers": [{"name": "a"}], "imagePullSecrets": [{"name": "mine"}]}, sa)
    assert own["imagePullSecrets"] == [{"name": "mine"}]


def test_mountable_secrets_are_enforced_when_the_service_account_asks() -> None:
    sa = account(metadata={"annotations": {"kubernetes.io/enforce-mountable-secrets": "true"}},
                 secrets=[{"name": "allowed"}])
    admitted({"containers": [{"name": "a", "env": [{"name": "K", "valueFrom": {
        "secretKeyRef": {"name": "allowed", "key": "k"}}}]}]}, sa)
    cases: list[tuple[dict, str]] = [
        ({"volumes": [{"name": "v", "secret": {"secretName": "other"}}], "containers": [{"name": "a"}]},
         'volume with secret.secretName="other" is not allowed because service account default does not '
         "reference that secret"),
        ({"initContainers": [{"name": "i", "envFrom": [{"secretRef": {"name": "other"}}]}],
          "containers": [{"name": "a"}]},
         'init container i with envFrom referencing secret.secretName="other" is not allowed because service '
         "account default does not reference that secret"),
        ({"containers": [{"name": "a", "env": [{"name": "K",
                                                 "valueFrom": {"secretKeyRef": {"name": "other"}}}]}]},
         'container a with envVar K referencing secret.secretName="other" is not allowed because service '
         "account default does not reference that secret"),
        ({"containers": [{"name": "a"}], "imagePullSecrets": [{"name": "pull"}]},
         'imagePullSecrets[0].name="pull" is not allowed because service account default does not reference '
         "that imagePullSecret"),
    ]
    for spec, why in cases:
        with pytest.raises(ApiError) as refused:
            admitted(spec, sa)
        assert (refused.value.code, refused.value.reason) == (403, "Forbidden")
        assert refused.value.message == f'pods "p" is forbidden: {why}'



def test_a_missing_service_account_is_named_with_the_pods_generate_name() -> None:
    obj: dict = {"metadata": {"name": "web-x7k2q", "generateName": "web-", "namespace": "ns"},
           "spec": {"serviceAccountName": "nobody", "containers": [{"name": "a"}]}}
    with pytest.raises(ApiError) as refused:
        admission.admit_pod(Accounts(account()), pods.RESOURCE, obj)  # type: ignore[arg-type]
    assert refused.value.message == ('pods "web-" is forbidden: error looking up service account ns/nobody: '
                                     'serviceaccount "nobody" not found')
    assert "volumes" not in obj["spec"]
