"""The ClusterRole aggregation controller, kube-controller-manager's `clusterrole-aggregation`
(`pkg/controller/clusterroleaggregation`): an aggregated ClusterRole (one with an
`aggregationRule`, such as admin, edit and view) gets the rules of every ClusterRole its label
selectors match written into its `rules`, by server-side apply with the field manager
`clusterrole-aggregation-controller` (force), whenever any ClusterRole changes; so
`kubectl get clusterrole admin -o yaml` shows them. The rule itself is
`sandbox.apiserver.rbac.aggregated_rules` (the authorizer uses it too until the rules are back).
"""

from __future__ import annotations

from sandbox.apiserver.rbac import aggregated_rules
from sandbox.client import ApiClient, Informer, InformerFactory, Obj, Resource
from sandbox.controllers.workqueue import WorkQueue

CLUSTERROLES = Resource("rbac.authorization.k8s.io/v1", "clusterroles", "ClusterRole", namespaced=False)
FIELD_MANAGER = "clusterrole-aggregation-controller"
APPLY = "application/apply-patch+yaml"


class ClusterRoleAggregationController:
    """Writes aggregated ClusterRoles' rules back into them."""

    def __init__(self, client: ApiClient, informers: InformerFactory) -> None:
        self.client = client
        self.roles: Informer = informers.informer(CLUSTERROLES)
        self.queue = WorkQueue("clusterrole_aggregation")
        self.roles.add_handler(self._on_role)

    def _on_role(self, kind: str, old: Obj | None, new: Obj | None) -> None:
        # Any ClusterRole may be selected by any aggregated one: look at them all (as upstream).
        for role in self.roles.items():
            if role.get("aggregationRule"):
                self.queue.add(role["metadata"]["name"])

    async def run(self) -> None:
        """Process the queue forever."""
        await self.queue.run(self.sync, workers=1)

    async def sync(self, name: str) -> None:
        """Apply the aggregated rules of ClusterRole ``name`` when they differ from its rules."""
        role = self.roles.get(name)
        if role is None or not role.get("aggregationRule"):
            return
        rules = aggregated_rules(role, list(self.roles.items()))
        if rules == (role.get("rules") or []):
            return
        body = {"apiVersion": CLUSTERROLES.api_version, "kind": CLUSTERROLES.kind, "metadata": {"name": name},
                "rules": rules}
        await self.client.request("PATCH", CLUSTERROLES.path(name=name), body=body, content_type=APPLY,
                                  params={"fieldManager": FIELD_MANAGER, "force": "true"})
