"""PersistentVolumes (core/v1, cluster-scoped), served read-only like PersistentVolumeClaims
(see `persistentvolumeclaim.py`: kubectl's default prune set lists them)."""

from __future__ import annotations

from sandbox.apiserver.kinds.persistentvolumeclaim import READ_ONLY
from sandbox.apiserver.strategy import Resource, Strategy

RESOURCE = Resource("", "v1", "PersistentVolume", "persistentvolumes", "io.k8s.api.core.v1.PersistentVolume",
                    namespaced=False, short_names=("pv",), verbs=READ_ONLY)


class PersistentVolumeStrategy(Strategy):
    """No volumes: nothing can be created."""

    resource = RESOURCE


STRATEGY = PersistentVolumeStrategy()
