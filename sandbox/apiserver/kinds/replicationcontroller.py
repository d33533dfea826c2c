"""ReplicationControllers (core/v1), served read-only: the sandbox runs no replication manager
(ReplicaSets and Deployments replace it), so writes are refused with 405 rather than storing
controllers nothing would act on. Served because kubectl's default prune set lists them."""

from __future__ import annotations

from sandbox.apiserver.kinds.persistentvolumeclaim import READ_ONLY
from sandbox.apiserver.strategy import Resource, Strategy

RESOURCE = Resource("", "v1", "ReplicationController", "replicationcontrollers",
                    "io.k8s.api.core.v1.ReplicationController", short_names=("rc",), categories=("all",),
                    verbs=READ_ONLY)


class ReplicationControllerStrategy(Strategy):
    """No replication manager: nothing can be created."""

    resource = RESOURCE


STRATEGY = ReplicationControllerStrategy()
