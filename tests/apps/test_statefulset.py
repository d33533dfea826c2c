"""StatefulSets through real kubectl against the shared sandbox: stable names and identities,
OrderedReady creation and reverse-order scale-down, rolling updates by ordinal from the highest with a
partition, ControllerRevisions behind `rollout history/undo/status`, OnDelete, Parallel with claim
templates, cascading deletion and 422s for bad objects."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import yaml

from tests.apps.conftest import FAST_EXIT
from tests.sandbox.conftest import Kube, is_ready, wait_until


def statefulset(name: str, *, replicas: int = 3, image: str = "lb-demo:latest", **spec: Any) -> str:
    """A StatefulSet manifest with its headless Service."""
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
               "spec": {"clusterIP": "None", "selector": {"app": name}, "ports": [{"port": 8080}]}}
    sts = {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": name},
           "spec": {"serviceName": name, "replicas": replicas, "selector": {"matchLabels": {"app": name}},
                    "template": {"metadata": {"labels": {"app": name}},
                                 "spec": {"containers": [{"name": "app", "image": image, "env": FAST_EXIT}]}},
                    **spec}}
    return yaml.safe_dump_all([service, sts])


def members(kube: Kube, name: str) -> dict[int, dict[str, Any]]:
    """The set's live (not terminating) pods by ordinal."""
    pods = kube.pods(f"app={name}")
    return {int(p["metadata"]["labels"]["apps.kubernetes.io/pod-index"]): p for p in pods
            if not p["metadata"].get("deletionTimestamp")}


def image(pod: dict[str, Any]) -> str:
    return str(pod["spec"]["containers"][0]["image"])


def messages(kube: Kube, reason: str) -> list[str]:
    """The messages of the namespace's events with ``reason``."""
    return [e["message"] for e in kube.get("events", "--field-selector", f"reason={reason}")["items"]]


def stamp(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def ready_since(pod: dict[str, Any]) -> datetime:
    cond = next(c for c in pod["status"]["conditions"] if c["type"] == "Ready")
    return stamp(cond["lastTransitionTime"])


def test_ordered_statefulset_rolls_by_ordinal_and_rolls_back(kube: Kube) -> None:
    kube.run("apply", "-f", "-", stdin=statefulset("web"))
    out = kube.run("rollout", "status", "sts/web", "--timeout=120s")
    assert "partitioned roll out complete: 3 new pods have been updated..." in out
    pods = members(kube, "web")
    assert sorted(pods) == [0, 1, 2]
    sts = kube.get("sts", "web")
    revision = sts["status"]["updateRevision"]
    for ordinal, pod in pods.items():
        name = f"web-{ordinal}"
        assert pod["metadata"]["name"] == name
        assert pod["metadata"]["labels"]["statefulset.kubernetes.io/pod-name"] == name
        assert pod["metadata"]["labels"]["controller-revision-hash"] == revision
        assert (pod["spec"]["hostname"], pod["spec"]["subdomain"]) == (name, "web")
        if ordinal:  # OrderedReady: each pod is created once its predecessor is Ready
            assert stamp(pod["metadata"]["creationTimestamp"]) >= ready_since(pods[ordinal - 1])
    assert sts["status"] | {"observedGeneration": 1} == {
        "replicas": 3, "readyReplicas": 3, "currentReplicas": 3, "updatedReplicas": 3, "availableReplicas": 3,
        "currentRevision": revision, "updateRevision": revision, "collisionCount": 0, "observedGeneration": 1}
    assert kube.run("get", "sts", "web", "--no-headers").split()[:2] == ["web", "3/3"]
    assert sorted(messages(kube, "SuccessfulCreate")) == [
        f"create Pod web-{i} in StatefulSet web successful" for i in range(3)]

    # A partitioned update replaces only the ordinals at or above the partition.
    kube.run("patch", "sts", "web", "-p", '{"spec":{"updateStrategy":{"rollingUpdate":{"partition":2}}}}')
    kube.run("set", "image", "sts/web", "app=lb-demo:v2")
    out = kube.run("rollout", "status", "sts/web", "--timeout=120s")
    assert "partitioned roll out complete: 1 new pods have been updated..." in out
    images = {o: image(p) for o, p in members(kube, "web").items()}
    assert images == {0: "lb-demo:latest", 1: "lb-demo:latest", 2: "lb-demo:v2"}

    # Partition 0: the rest roll from the highest ordinal down, one at a time.
    kube.run("patch", "sts", "web", "-p", '{"spec":{"updateStrategy":{"rollingUpdate":{"partition":0}}}}')
    seen: list[tuple[int, ...]] = []

    def rolled() -> bool:
        pods = members(kube, "web")
        updated = tuple(sorted(o for o, p in pods.items() if image(p) == "lb-demo:v2"))
        if not seen or seen[-1] != updated:
            seen.append(updated)
        return updated == (0, 1, 2) and all(is_ready(p) for p in pods.values())

    wait_until(rolled, timeout=120, what="every pod of web on lb-demo:v2")
    assert all(u == tuple(range(u[0], 3)) for u in seen if u), f"updated ordinals were not a suffix: {seen}"
    history = kube.run("rollout", "history", "sts/web")
    assert history.split("\n")[1:4] == ["REVISION  CHANGE-CAUSE", "1         <none>", "2         <none>"]
    assert len(kube.get("controllerrevisions")["items"]) == 2

    kube.run("rollout", "undo", "sts/web")
    kube.run("rollout", "status", "sts/web", "--timeout=120s")
    wait_until(lambda: {image(p) for p in members(kube, "web").values()}
               == {"lb-demo:latest"}, timeout=120, what="web rolled back to lb-demo:latest")
    revisions = {r["revision"] for r in kube.get("controllerrevisions")["items"]}
    assert revisions == {2, 3}  # the old revision is renumbered, not copied

    # Scale-down removes the highest ordinals first, one at a time.
    kube.run("scale", "sts/web", "--replicas=1")
    remaining: list[tuple[int, ...]] = []

    def scaled() -> bool:
        now = tuple(sorted(members(kube, "web")))
        if not remaining or remaining[-1] != now:
            remaining.append(now)
        return now == (0,)

    wait_until(scaled, timeout=90, what="web scaled to web-0 alone")
    assert all(r in ((0, 1, 2), (0, 1), (0,)) for r in remaining), remaining
    assert "delete Pod web-2 in StatefulSet web successful" in messages(kube, "SuccessfulDelete")

    kube.run("delete", "sts", "web")
    wait_until(lambda: not kube.pods("app=web") and not kube.get("controllerrevisions")["items"], timeout=60,
               what="web's pods and revisions garbage-collected")


def test_ondelete_parallel_set_with_claim_templates(kube: Kube) -> None:
    claims = [{"metadata": {"name": "data"},
               "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}]
    manifest = list(yaml.safe_load_all(statefulset("db", replicas=2, podManagementPolicy="Parallel",
                                      updateStrategy={"type": "OnDelete"}, volumeClaimTemplates=claims)))
    manifest[1]["spec"]["template"]["spec"]["containers"][0]["volumeMounts"] = [
        {"name": "data", "mountPath": "/data"}]
    result = kube.box.run_kubectl("apply", "-n", str(kube.namespace), "-f", "-",
                                  stdin=yaml.safe_dump_all(manifest))
    assert "Warning: spec.volumeClaimTemplates: this sandbox serves no PersistentVolumeClaims" \
        in result.stderr
    wait_until(lambda: len([p for p in members(kube, "db").values() if is_ready(p)]) == 2, timeout=90,
               what="db-0 and db-1 Ready")
    assert kube.run("exec", "db-1", "--", "sh", "-c", "echo kept > /data/f && cat /data/f && hostname") == \
        "kept\ndb-1\n"
    pod = members(kube, "db")[1]
    assert {"name": "data", "emptyDir": {}} in pod["spec"]["volumes"]
    # Stable network identity: the pod's FQDN, and the cluster DNS names of the headless Service.
    first_ip = members(kube, "db")[0]["status"]["podIP"]
    domain = f"db.{kube.namespace}.svc.cluster.local"
    assert kube.run("exec", "db-1", "--", "hostname", "-f").strip() == f"db-1.{domain}"
    resolved = kube.run("exec", "db-1", "--", "getent", "hosts", "db-0.db").split()
    assert resolved[:2] == [first_ip, f"db-0.{domain}"]
    lines = kube.run("exec", "db-1", "--", "getent", "ahostsv4", "db").splitlines()
    both = {line.split()[0] for line in lines}
    assert both == {first_ip, pod["status"]["podIP"]}

    out = kube.box.run_kubectl("rollout", "status", "-n", str(kube.namespace), "sts/db", check=False)
    assert "rollout status is only available for RollingUpdate strategy type" in out.stderr
    kube.run("set", "image", "sts/db", "app=lb-demo:v2")
    wait_until(lambda: kube.get("sts", "db")["status"].get("observedGeneration") == 2,
               what="generation 2 observed")
    status = kube.get("sts", "db")["status"]
    assert (status["updatedReplicas"], status["currentReplicas"]) == (0, 2)
    assert {image(p) for p in members(kube, "db").values()} == {"lb-demo:latest"}
    kube.run("delete", "pod", "db-0", "--wait=false")
    wait_until(lambda: members(kube, "db").get(0, {}).get("spec", {}).get("containers", [{}])[0].get("image")
               == "lb-demo:v2", timeout=90, what="db-0 recreated from the new template")
    assert members(kube, "db")[1]["spec"]["containers"][0]["image"] == "lb-demo:latest"


def test_bad_statefulsets_are_refused_with_their_causes(kube: Kube) -> None:
    bad = list(yaml.safe_load_all(statefulset("bad", podManagementPolicy="Sometimes",
                                 updateStrategy={"type": "RollingUpdate",
                                                 "rollingUpdate": {"partition": -2, "maxUnavailable": 0}})))
    sts = bad[1]
    sts["spec"]["replicas"] = -1
    sts["spec"]["template"]["metadata"]["labels"] = {"app": "other"}
    result = kube.box.run_kubectl("create", "-n", str(kube.namespace), "-f", "-", stdin=json.dumps(sts),
                                  check=False)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        'The StatefulSet "bad" is invalid: ',
        "* spec.podManagementPolicy: Invalid value: \"Sometimes\": must be 'OrderedReady' or 'Parallel'",
        "* spec.updateStrategy.rollingUpdate.partition: Invalid value: -2: must be greater than or equal to "
        "0",
        "* spec.updateStrategy.rollingUpdate.maxUnavailable: Invalid value: 0: cannot be 0",
        "* spec.replicas: Invalid value: -1: must be greater than or equal to 0",
        '* spec.template.metadata.labels: Invalid value: {"app":"other"}: `selector` does not match template '
        '`labels`',
    ]
    assert kube.get("sts")["items"] == []
    kube.run("apply", "-f", "-", stdin=statefulset("good", replicas=0))
    result = kube.box.run_kubectl("patch", "-n", str(kube.namespace), "sts", "good", "-p",
                                  '{"spec":{"serviceName":"elsewhere"}}', check=False)
    assert result.returncode == 1
    assert result.stderr.strip() == (
        'The StatefulSet "good" is invalid: spec: Forbidden: updates to statefulset spec for fields other '
        "than 'replicas', 'ordinals', 'template', 'updateStrategy', 'revisionHistoryLimit', "
        "'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden")
    assert kube.get("sts", "good")["spec"]["serviceName"] == "good"
