"""The ServiceAccount controller, kube-controller-manager's `serviceaccount-controller`
(`pkg/controller/serviceaccount/serviceaccounts_controller.go`).

Every active namespace has a `default` ServiceAccount: a namespace that appears (or changes
while Active) is checked, and so is the namespace of a `default` ServiceAccount that is
deleted, which is created again at once. A namespace that is gone or terminating is left
alone (its create answers 404 / 403 NamespaceTerminating, not retried). The API server also
creates `default` together with a new namespace (`kinds/namespace.py`), so a pod created right
after its namespace never waits for this controller; this loop is what restores it.
"""

from __future__ import annotations

import logging

from sandbox.client import NAMESPACES, SERVICEACCOUNTS, ApiClient, ApiError, Informer, InformerFactory, Obj
from sandbox.controllers.workqueue import WorkQueue

log = logging.getLogger(__name__)

MANAGED = ("default",)  # serviceaccountcontroller.DefaultServiceAccountsControllerOptions


def namespace_gone_or_terminating(exc: ApiError) -> bool:
    """A create refused because the namespace does not exist or is being deleted (not retried)."""
    return exc.not_found or (exc.status == 403 and "because it is being terminated" in str(exc))


class ServiceAccountsController:
    """Keeps the `default` ServiceAccount in every active namespace."""

    def __init__(self, client: ApiClient, informers: InformerFactory) -> None:
        self.client = client
        self.namespaces: Informer = informers.informer(NAMESPACES)
        self.accounts: Informer = informers.informer(SERVICEACCOUNTS)
        self.queue = WorkQueue("serviceaccount")
        self.namespaces.add_handler(self._on_namespace)
        self.accounts.add_handler(self._on_account)

    def _on_namespace(self, kind: str, old: Obj | None, new: Obj | None) -> None:
        if new is not None:
            self.queue.add(new["metadata"]["name"])

    def _on_account(self, kind: str, old: Obj | None, new: Obj | None) -> None:
        if kind == "DELETED" and old is not None and old["metadata"]["name"] in MANAGED:
            self.queue.add(old["metadata"].get("namespace") or "")

    async def run(self) -> None:
        """Process the queue forever."""
        await self.queue.run(self.sync, workers=1)

    async def sync(self, namespace: str) -> None:
        """Create the managed ServiceAccounts the namespace lacks."""
        ns = self.namespaces.get(namespace)
        if ns is None or (ns.get("status") or {}).get("phase") != "Active":
            return
        for name in MANAGED:
            if self.accounts.get(f"{namespace}/{name}") is not None:
                continue
            try:
                await self.client.create(SERVICEACCOUNTS, {"apiVersion": "v1", "kind": "ServiceAccount",
                                                           "metadata": {"name": name}}, namespace=namespace)
            except ApiError as exc:
                if exc.conflict:
                    continue
                if namespace_gone_or_terminating(exc):
                    return
                raise
