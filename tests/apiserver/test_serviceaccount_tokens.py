"""ServiceAccount tokens end to end with the bundled kubectl 1.37 and the official Python client:
`kubectl create token` (TokenRequest) issues a signed JWT the API server accepts as
`system:serviceaccount:<ns>:<name>` (`kubectl auth whoami`), with audiences, expiry and
object binding honoured; the `kubernetes` Service in `default` reaches the API through the
Service proxy, so an in-cluster client (`load_incluster_config`) works with the token and the
RBAC its ServiceAccount is granted."""

from __future__ import annotations

import base64
import functools
import json
import re
import subprocess
from pathlib import Path

import pytest

from tests import polling
from tests.conftest import KUBECTL, Sandbox

from .conftest import kubectl

pytestmark = pytest.mark.sandbox

wait_for = functools.partial(polling.wait_until, timeout=60.0, interval=0.2)


def claims_of(token: str) -> dict:
    """The JWT's payload (not verified: that is the server's job)."""
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def whoami(box: Sandbox, token: str | None = None) -> subprocess.CompletedProcess:
    """`kubectl auth whoami -o json`, with ``token`` instead of the kubeconfig's when given."""
    extra = [f"--token={token}"] if token else []
    return subprocess.run([str(KUBECTL), "auth", "whoami", "-o", "json", *extra], env=box.kubectl_env(),
                          capture_output=True, text=True, timeout=60)


def test_create_token_and_whoami(sandbox: Sandbox, namespace: str) -> None:
    admin = json.loads(whoami(sandbox).stdout)["status"]["userInfo"]
    assert admin == {"username": "lb-demo-admin", "groups": ["system:masters", "system:authenticated"]}
    token = kubectl(sandbox, "create", "token", "default", "-n", namespace).stdout.strip()
    claims = claims_of(token)
    assert claims["sub"] == f"system:serviceaccount:{namespace}:default"
    assert claims["aud"] == ["https://kubernetes.default.svc.cluster.local"]
    assert claims["exp"] - claims["iat"] == 3600
    sa_uid = json.loads(kubectl(sandbox, "get", "sa", "default", "-n", namespace, "-o", "json").stdout)[
        "metadata"]["uid"]
    user = json.loads(whoami(sandbox, token).stdout)["status"]["userInfo"]
    assert user["username"] == f"system:serviceaccount:{namespace}:default"
    assert user["uid"] == sa_uid
    assert user["groups"] == ["system:serviceaccounts", f"system:serviceaccounts:{namespace}",
                              "system:authenticated"]
    assert user["extra"]["authentication.kubernetes.io/credential-id"] == [f"JTI={claims['jti']}"]
    table = subprocess.run([str(KUBECTL), "auth", "whoami", f"--token={token}"], env=sandbox.kubectl_env(),
                           capture_output=True, text=True, timeout=60).stdout
    assert re.search(rf"^Username\s+system:serviceaccount:{namespace}:default$", table, re.M)


def test_token_request_options_and_errors(sandbox: Sandbox, namespace: str) -> None:
    api_audience = "--audience=https://kubernetes.default.svc.cluster.local"
    token = kubectl(sandbox, "create", "token", "default", "-n", namespace, "--duration=2h", api_audience,
                    "--audience=vault").stdout.strip()
    claims = claims_of(token)
    assert claims["exp"] - claims["iat"] == 7200
    assert claims["aud"] == ["https://kubernetes.default.svc.cluster.local", "vault"]
    assert whoami(sandbox, token).returncode == 0
    foreign = kubectl(sandbox, "create", "token", "default", "-n", namespace,
                      "--audience=vault").stdout.strip()
    refused = whoami(sandbox, foreign)
    assert refused.returncode == 1
    assert "You must be logged in to the server (Unauthorized)" in refused.stderr
    short = kubectl(sandbox, "create", "token", "default", "-n", namespace, "--duration=1m", check=False)
    assert short.stderr.strip() == (
        'error: failed to create token: TokenRequest.authentication.k8s.io "" is invalid: '
        "spec.expirationSeconds: Invalid value: 60: may not specify a duration less than 10 minutes")
    missing = kubectl(sandbox, "create", "token", "nobody", "-n", namespace, check=False)
    assert missing.stderr.strip() == 'error: failed to create token: serviceaccounts "nobody" not found'
    garbage = whoami(sandbox, "not-a-token")
    assert "Unauthorized" in garbage.stderr


def test_bound_tokens_die_with_their_object(sandbox: Sandbox, namespace: str) -> None:
    kubectl(sandbox, "create", "serviceaccount", "robot", "-n", namespace)
    kubectl(sandbox, "create", "-f", "-", stdin=json.dumps({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "holder", "namespace": namespace},
        "spec": {"serviceAccountName": "robot", "nodeName": "ghost-node",
                 "containers": [{"name": "main", "image": "lb-demo"}]}}))
    bound = kubectl(sandbox, "create", "token", "robot", "-n", namespace, "--bound-object-kind=Pod",
                    "--bound-object-name=holder").stdout.strip()
    assert claims_of(bound)["kubernetes.io"]["pod"]["name"] == "holder"
    user = json.loads(whoami(sandbox, bound).stdout)["status"]["userInfo"]
    assert user["extra"]["authentication.kubernetes.io/pod-name"] == ["holder"]
    wrong = kubectl(sandbox, "create", "token", "default", "-n", namespace, "--bound-object-kind=Pod",
                    "--bound-object-name=holder", check=False)
    assert ('cannot bind token for serviceaccount "default" to pod running with serviceaccount "robot"'
            in wrong.stderr)
    plain = kubectl(sandbox, "create", "token", "robot", "-n", namespace).stdout.strip()
    kubectl(sandbox, "delete", "pod", "holder", "-n", namespace, "--grace-period=0", "--force")
    wait_for(lambda: whoami(sandbox, bound).returncode == 1)
    assert whoami(sandbox, plain).returncode == 0
    kubectl(sandbox, "delete", "serviceaccount", "robot", "-n", namespace)
    wait_for(lambda: whoami(sandbox, plain).returncode == 1)


def test_kubernetes_service_reaches_the_api_for_in_cluster_clients(sandbox: Sandbox, namespace: str,
                                                                  tmp_path: Path) -> None:
    from kubernetes import client
    from kubernetes.config.incluster_config import InClusterConfigLoader

    svc = json.loads(kubectl(sandbox, "get", "svc", "kubernetes", "-n", "default", "-o", "json").stdout)
    assert svc["spec"]["type"] == "ClusterIP" and "selector" not in svc["spec"]
    assert [(p["name"], p["port"], p["protocol"]) for p in svc["spec"]["ports"]] == [("https", 443, "TCP")]
    api_port = int(sandbox.url.rsplit(":", 1)[1])
    endpoints = kubectl(sandbox, "get", "endpoints", "kubernetes", "-n", "default").stdout
    assert re.search(rf"^kubernetes\s+127\.0\.0\.1:{api_port}\s", endpoints, re.M)
    slices = json.loads(kubectl(sandbox, "get", "endpointslices", "kubernetes", "-n", "default", "-o",
                                "json").stdout)
    assert slices["endpoints"] == [{"addresses": ["127.0.0.1"], "conditions": {"ready": True}}]
    kubectl(sandbox, "create", "rolebinding", "default-view", "-n", namespace, "--clusterrole=view",
            f"--serviceaccount={namespace}:default")
    kubectl(sandbox, "run", "sleeper", "-n", namespace, "--image=lb-demo", "--overrides",
            '{"spec": {"nodeName": "ghost-node"}}')
    token_file, ca_file = tmp_path / "token", tmp_path / "ca.crt"
    token_file.write_text(kubectl(sandbox, "create", "token", "default", "-n", namespace).stdout.strip())
    ca_file.write_bytes((sandbox.state_dir / "ca.crt").read_bytes())
    configuration = client.Configuration()
    environ = {"KUBERNETES_SERVICE_HOST": svc["spec"]["clusterIP"], "KUBERNETES_SERVICE_PORT": "443"}
    InClusterConfigLoader(token_filename=str(token_file), cert_filename=str(ca_file),
                          environ=environ).load_and_set(configuration)
    api = client.CoreV1Api(client.ApiClient(configuration))

    def listed() -> bool:
        try:
            return [p.metadata.name for p in api.list_namespaced_pod(namespace).items] == ["sleeper"]
        except Exception:  # the proxy opens its listener a moment after the endpoints appear
            return False

    wait_for(listed)
    assert configuration.host == f"https://{svc['spec']['clusterIP']}:443"


def test_service_account_token_secret_is_filled_by_the_tokens_controller(sandbox: Sandbox,
                                                                       namespace: str) -> None:
    kubectl(sandbox, "create", "serviceaccount", "legacy", "-n", namespace)
    kubectl(sandbox, "create", "-f", "-", stdin=json.dumps({
        "apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/service-account-token",
        "metadata": {"name": "legacy-token", "namespace": namespace,
                     "annotations": {"kubernetes.io/service-account.name": "legacy"}}}))

    def filled() -> dict:
        secret = json.loads(kubectl(sandbox, "get", "secret", "legacy-token", "-n", namespace, "-o",
                                    "json").stdout)
        return secret if "token" in (secret.get("data") or {}) else {}

    wait_for(filled)
    secret = filled()
    assert sorted(secret["data"]) == ["ca.crt", "namespace", "token"]
    assert base64.b64decode(secret["data"]["ca.crt"]) == (sandbox.state_dir / "ca.crt").read_bytes()
    sa_uid = json.loads(kubectl(sandbox, "get", "sa", "legacy", "-n", namespace, "-o", "json").stdout)[
        "metadata"]["uid"]
    assert secret["metadata"]["annotations"]["kubernetes.io/service-account.uid"] == sa_uid
    token = base64.b64decode(secret["data"]["token"]).decode()
    assert claims_of(token)["iss"] == "kubernetes/serviceaccount"
    user = json.loads(whoami(sandbox, token).stdout)["status"]["userInfo"]
    assert user["username"] == f"system:serviceaccount:{namespace}:legacy"
    described = kubectl(sandbox, "describe", "secret", "legacy-token", "-n", namespace).stdout
    assert re.search(rf"^token:\s+{re.escape(token)}$", described, re.M)  # kubectl shows SA tokens
    assert re.search(r"^ca.crt:\s+\d+ bytes$", described, re.M)
    kubectl(sandbox, "delete", "secret", "legacy-token", "-n", namespace)
    wait_for(lambda: whoami(sandbox, token).returncode == 1)
