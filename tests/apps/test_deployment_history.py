"""The Deployment controller copies the Deployment's annotations to its new ReplicaSet (as
`deploymentutil.SetNewReplicaSetAnnotations` does), so `kubectl rollout history` shows CHANGE-CAUSE."""

from __future__ import annotations

from tests.sandbox.conftest import Kube, wait_until


def test_rollout_history_shows_change_cause(kube: Kube) -> None:
    kube.run("create", "deployment", "backend", "--image=lb-demo:latest")
    kube.run("annotate", "deployment", "backend", "kubernetes.io/change-cause=first release", "team=lb")
    kube.run("rollout", "status", "deployment/backend", "--timeout=120s")
    kube.run("set", "image", "deployment/backend", "lb-demo=lb-demo:v2")
    kube.run("annotate", "deployment", "backend", "--overwrite", "kubernetes.io/change-cause=image v2")
    kube.run("rollout", "status", "deployment/backend", "--timeout=120s")

    def history() -> list[str]:
        return kube.run("rollout", "history", "deployment/backend").split("\n")[1:4]

    expected = ["REVISION  CHANGE-CAUSE", "1         first release", "2         image v2"]
    wait_until(lambda: history() == expected, what="both revisions with their change causes")
    by_revision = {rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"]: rs["metadata"]
                   for rs in kube.get("replicasets")["items"]}
    assert by_revision["2"]["annotations"]["team"] == "lb"
    assert "kubectl.kubernetes.io/last-applied-configuration" not in by_revision["2"]["annotations"]
    assert "image v2" in kube.run("rollout", "history", "deployment/backend", "--revision=2")

    # Rolling back renumbers the old ReplicaSet and keeps its earlier number in revision-history.
    kube.run("rollout", "undo", "deployment/backend", "--to-revision=1")
    kube.run("rollout", "status", "deployment/backend", "--timeout=120s")
    wait_until(lambda: history()[1:] == ["2         image v2", "3         first release"],
               what="revision 1 renumbered 3")
    old = next(rs for rs in kube.get("replicasets")["items"]
               if rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "3")
    assert old["metadata"]["annotations"]["deployment.kubernetes.io/revision-history"] == "1"
