"""The `kubernetes` Service, kept by the API server itself (kube-apiserver's
`pkg/controlplane/controller/kubernetesservice` and its endpoint reconciler).

On every start the API server makes sure `default/kubernetes` exists — a ClusterIP Service
without selector, port 443 named `https` targeting the API server's port, labels
`component=apiserver`, `provider=kubernetes` — and that its Endpoints (labelled
`endpointslice.kubernetes.io/skip-mirror=true`) and EndpointSlice (`kubernetes.io/service-name=
kubernetes`, no managed-by label, so no controller touches it) point at the address the API
server listens on. An in-cluster client then reaches the API at `KUBERNETES_SERVICE_HOST:443`
through the Service proxy, which forwards the TLS bytes untouched.

Unlike a real cluster (where it is the first address of the range, 10.96.0.1), the Service's
ClusterIP is allocated at random like every other: sandboxes running side by side on one
machine would otherwise all claim the same loopback address. It is kept across restarts, and
the serving certificate names it (see `certs.py`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .errors import ApiError
from .kinds import endpoints, endpointslice, service
from .store import copy_object

if TYPE_CHECKING:
    from .registry import Registry
    from .strategy import Resource

NAME = "kubernetes"
NAMESPACE = "default"
PORT_NAME = "https"
SERVICE_PORT = 443


def _advertised(host: str) -> str:
    """The address clients can reach: a wildcard listen address means loopback here."""
    return "127.0.0.1" if host in ("", "0.0.0.0", "::") else host


async def _apply(registry: Registry, res: Resource, body: dict, *, keep: tuple[str, ...]) -> dict:
    """Create ``body``, or update the stored object's fields ``keep`` when they differ."""
    entry = registry.store.get(res.key, NAMESPACE, NAME)
    if entry is None:
        return await registry.create(res, NAMESPACE, body)
    current = copy_object(entry.obj)
    changed = False
    for key in keep:
        if key == "labels":
            labels = current["metadata"].setdefault("labels", {})
            for label, value in body["metadata"]["labels"].items():
                if labels.get(label) != value:
                    labels[label], changed = value, True
        elif current.get(key) != body.get(key):
            current[key], changed = body[key], True
    if not changed:
        return entry.obj
    return await registry.update(res, NAMESPACE, NAME, current)


async def reconcile_kubernetes_service(registry: Registry, *, host: str, port: int) -> str:
    """Create or repair `default/kubernetes` and its endpoints; returns its ClusterIP."""
    address = _advertised(host)
    svc_body: dict[str, Any] = {"metadata": {"name": NAME, "namespace": NAMESPACE,
                             "labels": {"component": "apiserver", "provider": "kubernetes"}},
                "spec": {"type": "ClusterIP", "sessionAffinity": "None",
                         "ports": [{"name": PORT_NAME, "port": SERVICE_PORT, "protocol": "TCP",
                                    "targetPort": port}]}}
    entry = registry.store.get(service.RESOURCE.key, NAMESPACE, NAME)
    if entry is None:
        svc = await registry.create(service.RESOURCE, NAMESPACE, svc_body)
    else:
        svc = copy_object(entry.obj)
        ports = svc_body["spec"]["ports"]
        if svc["spec"].get("ports") != ports or svc["spec"].get("selector"):
            svc["spec"]["ports"] = ports
            svc["spec"].pop("selector", None)
            try:
                svc = await registry.update(service.RESOURCE, NAMESPACE, NAME, svc)
            except ApiError:
                svc = entry.obj
    await _apply(registry, endpoints.RESOURCE, {
        "metadata": {"name": NAME, "namespace": NAMESPACE,
                     "labels": {"endpointslice.kubernetes.io/skip-mirror": "true"}},
        "subsets": [{"addresses": [{"ip": address}],
                     "ports": [{"name": PORT_NAME, "port": port, "protocol": "TCP"}]}],
    }, keep=("labels", "subsets"))
    await _apply(registry, endpointslice.RESOURCE, {
        "metadata": {"name": NAME, "namespace": NAMESPACE, "labels": {"kubernetes.io/service-name": NAME}},
        "addressType": "IPv4",
        "endpoints": [{"addresses": [address], "conditions": {"ready": True}}],
        "ports": [{"name": PORT_NAME, "port": port, "protocol": "TCP"}],
    }, keep=("labels", "addressType", "endpoints", "ports"))
    return str(svc["spec"].get("clusterIP") or "")
