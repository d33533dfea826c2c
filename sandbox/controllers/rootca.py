"""The root CA publisher, kube-controller-manager's `root-ca-certificate-publisher-controller`
(`pkg/controller/certificates/rootcacertpublisher/publisher.go`).

Every namespace gets the ConfigMap `kube-root-ca.crt` holding the cluster CA (`ca.crt`, the
sandbox's `STATE_DIR/ca.crt`, as `--root-ca-file` gives it to the real controller) with the
`kubernetes.io/description` annotation. A namespace that appears or changes while Active is
checked; the ConfigMap is created again when deleted and put back when its data or that
annotation is changed. It is what the `ca.crt` item of every auto-mounted
`kube-api-access-*` volume projects (`sandbox/apiserver/admission.py`).
"""

from __future__ import annotations

import logging

from sandbox.client import CONFIGMAPS, NAMESPACES, ApiClient, ApiError, Informer, InformerFactory, Obj
from sandbox.controllers.serviceaccounts import namespace_gone_or_terminating
from sandbox.controllers.workqueue import WorkQueue

log = logging.getLogger(__name__)

CONFIGMAP_NAME = "kube-root-ca.crt"
DESCRIPTION_ANNOTATION = "kubernetes.io/description"
DESCRIPTION = ("Contains a CA bundle that can be used to verify the kube-apiserver when using internal "
               "endpoints such as the internal service IP or kubernetes.default.svc. No other usage is "
               "guaranteed across distributions of Kubernetes clusters.")


class RootCAPublisher:
    """Keeps `kube-root-ca.crt` in every namespace equal to the cluster CA."""

    def __init__(self, client: ApiClient, informers: InformerFactory, root_ca: bytes) -> None:
        self.client = client
        self.root_ca = root_ca.decode()
        self.configmaps: Informer = informers.informer(CONFIGMAPS)
        self.namespaces: Informer = informers.informer(NAMESPACES)
        self.queue = WorkQueue("root_ca_cert_publisher")
        self.configmaps.add_handler(self._on_configmap)
        self.namespaces.add_handler(self._on_namespace)

    def _on_configmap(self, kind: str, old: Obj | None, new: Obj | None) -> None:
        obj = new if kind != "DELETED" else old
        if kind != "ADDED" and obj is not None and obj["metadata"]["name"] == CONFIGMAP_NAME:
            self.queue.add(obj["metadata"].get("namespace") or "")

    def _on_namespace(self, kind: str, old: Obj | None, new: Obj | None) -> None:
        if new is None:
            return
        if kind == "ADDED" or (new.get("status") or {}).get("phase") == "Active":
            self.queue.add(new["metadata"]["name"])

    async def run(self) -> None:
        """Process the queue forever."""
        await self.queue.run(self.sync, workers=1)

    async def sync(self, namespace: str) -> None:
        """Create or repair the namespace's `kube-root-ca.crt`."""
        data = {"ca.crt": self.root_ca}
        cm = self.configmaps.get(f"{namespace}/{CONFIGMAP_NAME}")
        if cm is None:
            try:
                meta = {"name": CONFIGMAP_NAME, "annotations": {DESCRIPTION_ANNOTATION: DESCRIPTION}}
                body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": data}
                await self.client.create(CONFIGMAPS, body, namespace=namespace)
            except ApiError as exc:
                if not (exc.conflict or namespace_gone_or_terminating(exc)):
                    raise
            return
        annotations = cm["metadata"].get("annotations") or {}
        if cm.get("data") == data and annotations.get(DESCRIPTION_ANNOTATION):
            return
        meta = {**cm["metadata"], "annotations": {**annotations, DESCRIPTION_ANNOTATION: DESCRIPTION}}
        fixed = {**cm, "data": data, "metadata": meta}
        await self.client.replace(CONFIGMAPS, fixed)
