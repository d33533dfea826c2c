"""PersistentVolumeClaims (core/v1), served read-only: the sandbox has no volume provisioner, so
it answers like a cluster whose users may read claims but not create them (405 on writes).
Discovery lists them because `kubectl apply --prune` without an allowlist maps and lists every
kind of its default prune set (`k8s.io/kubectl/pkg/util/prune`), this one included."""

from __future__ import annotations

from sandbox.apiserver.strategy import Resource, Strategy

READ_ONLY = ("get", "list", "watch")
RESOURCE = Resource("", "v1", "PersistentVolumeClaim", "persistentvolumeclaims",
                    "io.k8s.api.core.v1.PersistentVolumeClaim", short_names=("pvc",), verbs=READ_ONLY)


class PersistentVolumeClaimStrategy(Strategy):
    """No provisioner: nothing to default or validate, nothing can be created."""

    resource = RESOURCE


STRATEGY = PersistentVolumeClaimStrategy()
