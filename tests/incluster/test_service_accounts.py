"""What every pod gets from its ServiceAccount, end to end with real kubectl and the official
client: the ServiceAccount admission's `kube-api-access-*` volume (so `load_incluster_config()`
works in a pod that declares nothing, denied until a RoleBinding grants it), opting out with
`automountServiceAccountToken`, the `default` ServiceAccount and `kube-root-ca.crt` in every
namespace (restored when deleted or changed), and TokenReview."""

from __future__ import annotations

import functools
import json
import re

import pytest

from tests import polling
from tests.conftest import Sandbox

from .conftest import Namespaced

pytestmark = pytest.mark.sandbox

wait_until = functools.partial(polling.wait_until, timeout=90.0, interval=0.3)
MOUNT = "/var/run/secrets/kubernetes.io/serviceaccount"
ROOT_CA_DESCRIPTION = (
    "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such "
    "as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across "
    "distributions of Kubernetes clusters."
)

IN_CLUSTER_LISTER = """
import json, time
from kubernetes import client, config
config.load_incluster_config()
namespace = open("/var/run/secrets/kubernetes.io/serviceaccount/namespace").read()
api = client.CoreV1Api()
denied = False
while True:
    try:
        names = [p.metadata.name for p in api.list_namespaced_pod(namespace).items]
    except client.ApiException as exc:
        if exc.status != 403:
            raise
        if not denied:
            print("DENIED", json.loads(exc.body)["message"], flush=True)
            denied = True
        time.sleep(0.3)
        continue
    print("LISTED", names, client.Configuration.get_default_copy().host, flush=True)
    break
"""


def logs(ns: Namespaced, pod: str) -> str:
    """The pod's log so far ('' before its container started)."""
    return ns.run("logs", pod, check=False).stdout


def test_a_pod_that_declares_nothing_gets_a_token_an_in_cluster_client_uses(ns: Namespaced) -> None:
    ns.run("run", "lister", "--image=python", "--restart=Never", "--", "python3", "-c", IN_CLUSTER_LISTER)
    pod = ns.json("pod", "lister")
    spec = pod["spec"]
    assert spec["serviceAccountName"] == "default"
    [volume] = spec["volumes"]
    assert re.fullmatch(r"kube-api-access-[bcdfghjklmnpqrstvwxz2456789]{5}", volume["name"])
    assert volume["projected"] == {
        "defaultMode": 420,
        "sources": [
            {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
            {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
            {
                "downwardAPI": {
                    "items": [
                        {
                            "path": "namespace",
                            "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"},
                        }
                    ]
                }
            },
        ],
    }
    assert spec["containers"][0]["volumeMounts"] == [
        {"name": volume["name"], "readOnly": True, "mountPath": MOUNT}
    ]
    described = ns.run("describe", "pod", "lister").stdout
    assert f"{MOUNT} from {volume['name']} (ro)" in described

    denied = wait_until(lambda: re.search(r"^DENIED (.*)$", logs(ns, "lister"), re.M), what="the 403")
    assert denied.group(1) == (
        f'pods is forbidden: User "system:serviceaccount:{ns.namespace}:default" cannot '
        f'list resource "pods" in API group "" in the namespace "{ns.namespace}"'
    )
    ns.run(
        "create",
        "rolebinding",
        "default-view",
        "--clusterrole=view",
        f"--serviceaccount={ns.namespace}:default",
    )
    listed = wait_until(
        lambda: re.search(r"^LISTED (.*) (\S+)$", logs(ns, "lister"), re.M), what="the pod list"
    )
    assert listed.group(1) == "['lister']"
    cluster_ip = ns.box.run_kubectl(
        "get", "svc", "kubernetes", "-n", "default", "-o", "jsonpath={.spec.clusterIP}"
    ).stdout
    assert listed.group(2) == f"https://{cluster_ip}:443"
    wait_until(
        lambda: ns.json("pod", "lister")["status"].get("phase") == "Succeeded", what="the pod to finish"
    )


def pod(
    name: str,
    *,
    account: str | None = None,
    automount: bool | None = None,
    init: bool = False,
    own_mount: bool = False,
) -> dict:
    """A busybox pod that lists the ServiceAccount directory."""
    spec: dict = {
        "restartPolicy": "Never",
        "containers": [
            {"name": "main", "image": "busybox", "command": ["sh", "-c", f"ls {MOUNT} 2>&1; true"]}
        ],
    }
    if account:
        spec["serviceAccountName"] = account
    if automount is not None:
        spec["automountServiceAccountToken"] = automount
    if init:
        spec["initContainers"] = [{"name": "init", "image": "busybox", "command": ["true"]}]
    if own_mount:
        spec["volumes"] = [{"name": "mine", "emptyDir": {}}]
        spec["containers"][0]["volumeMounts"] = [{"name": "mine", "mountPath": MOUNT}]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec}


def server_dry_run(ns: Namespaced, obj: dict) -> dict:
    """What the API server would store for ``obj`` (admission included), stored nowhere."""
    return json.loads(
        ns.run("create", "--dry-run=server", "-o", "json", "-f", "-", stdin=json.dumps(obj)).stdout
    )


def test_automount_opt_out_and_what_gets_mounted_where(ns: Namespaced) -> None:
    ns.apply(pod("opted-out", automount=False))
    assert "volumes" not in ns.json("pod", "opted-out")["spec"]
    wait_until(
        lambda: ns.json("pod", "opted-out")["status"].get("phase") == "Succeeded", what="opted-out to end"
    )
    assert logs(ns, "opted-out").strip() == f"ls: {MOUNT}: No such file or directory"

    ns.apply(
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": "quiet"},
            "automountServiceAccountToken": False,
        }
    )
    assert "volumes" not in server_dry_run(ns, pod("quiet", account="quiet"))["spec"]
    overridden = server_dry_run(ns, pod("loud", account="quiet", automount=True))["spec"]
    assert [v["name"][:16] for v in overridden["volumes"]] == ["kube-api-access-"]

    both = server_dry_run(ns, pod("both", init=True))["spec"]
    name = both["volumes"][0]["name"]
    for ctr in (*both["initContainers"], *both["containers"]):
        assert ctr["volumeMounts"] == [{"name": name, "readOnly": True, "mountPath": MOUNT}], ctr["name"]
    own = server_dry_run(ns, pod("own", own_mount=True))["spec"]
    assert [v["name"] for v in own["volumes"]] == ["mine"]
    assert own["containers"][0]["volumeMounts"] == [{"name": "mine", "mountPath": MOUNT}]

    missing = ns.run("apply", "-f", "-", stdin=json.dumps(pod("orphan", account="nobody")), check=False)
    assert missing.returncode == 1
    assert missing.stderr.strip().endswith(
        f'pods "orphan" is forbidden: error looking up service account {ns.namespace}/nobody: serviceaccount '
        '"nobody" not found'
    )
    assert ns.run("get", "pod", "orphan", check=False).returncode == 1


def test_default_service_account_and_root_ca_in_every_namespace(ns: Namespaced) -> None:
    ca = (ns.box.state_dir / "ca.crt").read_text()

    def root_ca() -> dict | None:
        found = ns.run("get", "configmap", "kube-root-ca.crt", "-o", "json", check=False)
        return json.loads(found.stdout) if found.returncode == 0 else None

    first = wait_until(root_ca, what="kube-root-ca.crt in a new namespace")
    assert first["data"] == {"ca.crt": ca}
    assert first["metadata"]["annotations"] == {"kubernetes.io/description": ROOT_CA_DESCRIPTION}
    table = ns.run("get", "cm", "kube-root-ca.crt").stdout
    assert re.search(r"^kube-root-ca\.crt\s+1\s+\S+$", table, re.M), table

    ns.run("delete", "configmap", "kube-root-ca.crt")
    again = wait_until(root_ca, what="kube-root-ca.crt recreated")
    assert again["metadata"]["uid"] != first["metadata"]["uid"] and again["data"] == {"ca.crt": ca}
    ns.run(
        "patch",
        "configmap",
        "kube-root-ca.crt",
        "--type=merge",
        "-p",
        json.dumps({"data": {"ca.crt": "not a CA"}, "metadata": {"annotations": {"team": "x"}}}),
    )
    repaired = wait_until(
        lambda: (cm := root_ca()) and cm["data"] == {"ca.crt": ca} and cm, what="kube-root-ca.crt repaired"
    )
    assert repaired["metadata"]["annotations"] == {
        "kubernetes.io/description": ROOT_CA_DESCRIPTION,
        "team": "x",
    }

    uid = ns.json("serviceaccount", "default")["metadata"]["uid"]
    ns.run("delete", "serviceaccount", "default")

    def recreated() -> bool:
        found = ns.run("get", "serviceaccount", "default", "-o", "json", check=False)
        return found.returncode == 0 and json.loads(found.stdout)["metadata"]["uid"] != uid

    wait_until(recreated, what="the default ServiceAccount recreated")


def test_token_review(sandbox: Sandbox, ns: Namespaced) -> None:
    from kubernetes import client

    configuration = client.Configuration()
    configuration.host = sandbox.url
    configuration.api_key = {"authorization": f"Bearer {sandbox.token}"}
    configuration.ssl_ca_cert = str(sandbox.state_dir / "ca.crt")
    api = client.AuthenticationV1Api(client.ApiClient(configuration))
    token = ns.run(
        "create",
        "token",
        "default",
        "--audience=vault",
        "--audience=https://kubernetes.default.svc.cluster.local",
    ).stdout.strip()

    def review(token: str, audiences: list[str] | None = None) -> client.V1TokenReviewStatus:
        body = client.V1TokenReview(spec=client.V1TokenReviewSpec(token=token, audiences=audiences))
        return api.create_token_review(body).status

    status = review(token)
    assert status.authenticated is True
    assert status.audiences == ["https://kubernetes.default.svc.cluster.local"]
    assert status.user.username == f"system:serviceaccount:{ns.namespace}:default"
    assert status.user.uid == ns.json("serviceaccount", "default")["metadata"]["uid"]
    assert status.user.groups == [
        "system:serviceaccounts",
        f"system:serviceaccounts:{ns.namespace}",
        "system:authenticated",
    ]
    assert review(token, ["vault", "other"]).audiences == ["vault"]
    refused = review(token, ["other"])
    assert (refused.authenticated, refused.error) == (False, "invalid bearer token")
    assert review(token[:-4] + "abcd").authenticated is False
    with pytest.raises(client.ApiException) as empty:
        api.create_token_review(client.V1TokenReview(spec=client.V1TokenReviewSpec(token="")))
    assert empty.value.status == 400
    assert json.loads(empty.value.body)["message"] == "token is required for TokenReview in authentication"
    who = f"--as=system:serviceaccount:{ns.namespace}:default"
    assert (
        sandbox.run_kubectl("auth", "can-i", "create", "tokenreviews", who, check=False).stdout.strip()
        == "no"
    )


def test_impersonation_is_authorized_and_acts_as_the_user(ns: Namespaced) -> None:
    account = f"system:serviceaccount:{ns.namespace}:default"
    assert ns.run("auth", "can-i", "list", "pods", f"--as={account}", check=False).stdout.strip() == "no"
    ns.run("create", "rolebinding", "view", "--clusterrole=view", f"--serviceaccount={ns.namespace}:default")
    assert ns.run("auth", "can-i", "list", "pods", f"--as={account}").stdout.strip() == "yes"
    assert ns.run("auth", "can-i", "list", "secrets", f"--as={account}", check=False).stdout.strip() == "no"
    listed = ns.run("get", "secrets", f"--as={account}", check=False)
    assert listed.stderr.strip() == (
        f'Error from server (Forbidden): secrets is forbidden: User "{account}" cannot list resource '
        f'"secrets" in API group "" in the namespace "{ns.namespace}"'
    )
    whoami = ns.run("auth", "whoami", "--as=bob", "--as-group=devs").stdout
    assert re.search(r"^Username\s+bob$", whoami, re.M) and re.search(
        r"^Groups\s+\[devs system:authenticated\]$", whoami, re.M
    ), whoami
    token = ns.run("create", "token", "default").stdout.strip()
    refused = ns.run("get", "pods", f"--token={token}", "--as=bob", check=False)
    assert refused.stderr.strip() == (
        f'Error from server (Forbidden): users "bob" is forbidden: User "{account}" cannot impersonate '
        'resource "users" in API group "" at the cluster scope'
    )
