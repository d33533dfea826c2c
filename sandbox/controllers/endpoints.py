"""The Endpoints and EndpointSlice controllers: which pods stand behind each Service.

For every Service with a selector they list the pods that match it and have an IP, and write
what the proxy routes to:

- EndpointSlice (discovery.k8s.io/v1) ``<service>-<random>``, labelled
  ``kubernetes.io/service-name`` and owned by the Service; each endpoint carries the
  conditions ``ready`` (Ready and not terminating), ``serving`` (Ready, even while
  terminating) and ``terminating``, a targetRef and the nodeName. Pods whose named
  targetPort resolves to different numbers go to different slices, as in Kubernetes.
- Endpoints (v1), named like the Service: ready pods in ``addresses``, the others in
  ``notReadyAddresses``; terminating pods drop out (``publishNotReadyAddresses`` keeps them).

Both are written only when their content changes.
"""

from __future__ import annotations

import copy
import json
import logging

from sandbox.client import (
    ENDPOINTS,
    ENDPOINTSLICES,
    PODS,
    SERVICES,
    ApiClient,
    ApiError,
    Informer,
    InformerFactory,
    Obj,
    Resource,
    event_key,
    key_of,
)
from sandbox.controllers.workqueue import WorkQueue
from sandbox.meta import is_pod_ready, is_terminating, map_selector_matches, owner_reference

log = logging.getLogger(__name__)

SERVICE_NAME_LABEL = "kubernetes.io/service-name"
MANAGED_BY_LABEL = "endpointslice.kubernetes.io/managed-by"
MANAGED_BY = "endpointslice-controller.k8s.io"
ENDPOINTS_MANAGED_BY_LABEL = "endpoints.kubernetes.io/managed-by"
ENDPOINTS_MANAGED_BY = "endpoint-controller"


def resolve_port(pod: Obj, target: int | str | None, default: int) -> int | None:
    """A Service targetPort for one pod: a number, or a containerPort name looked up in the pod."""
    if target is None or target == "":
        return default
    if isinstance(target, int) or str(target).isdigit():
        return int(target)
    for container in pod.get("spec", {}).get("containers") or []:
        for port in container.get("ports") or []:
            if port.get("name") == target:
                return int(port["containerPort"])
    return None


def service_ports(service: Obj, pod: Obj) -> tuple[tuple[str, int, str, str | None], ...] | None:
    """The (name, port, protocol, appProtocol) a pod serves for ``service``; None if one is unresolved."""
    out = []
    for sp in service["spec"].get("ports") or []:
        port = resolve_port(pod, sp.get("targetPort"), int(sp["port"]))
        if port is None:
            return None
        out.append((sp.get("name") or "", port, sp.get("protocol") or "TCP", sp.get("appProtocol")))
    return tuple(out)


def _digest(body: Obj, labels: dict[str, str]) -> str:
    return json.dumps([body, labels], sort_keys=True)


def _ports_json(ports: tuple) -> list[Obj]:
    return [
        {"name": name, "port": port, "protocol": proto, **({"appProtocol": app} if app else {})}
        for name, port, proto, app in ports
    ]


class EndpointsController:
    """Maintains the Endpoints and EndpointSlices of selector-based Services."""

    def __init__(self, client: ApiClient, informers: InformerFactory) -> None:
        self.client = client
        self.svc_informer: Informer = informers.informer(SERVICES)
        self.pod_informer: Informer = informers.informer(PODS)
        self.ep_informer: Informer = informers.informer(ENDPOINTS)
        self.slice_informer: Informer = informers.informer(ENDPOINTSLICES)
        self.queue = WorkQueue("endpoints")
        self._written: dict[str, tuple[str | None, str]] = {}
        self.svc_informer.add_handler(lambda kind, old, new: self.queue.add(event_key(old, new)))
        self.pod_informer.add_handler(self._on_pod)
        self.slice_informer.add_handler(self._on_owned)
        self.ep_informer.add_handler(self._on_owned)

    def _on_pod(self, kind: str, old: Obj | None, new: Obj | None) -> None:
        for pod in (old, new):
            if pod is None:
                continue
            ns = pod["metadata"].get("namespace")
            for svc in self.svc_informer.items(ns):
                if map_selector_matches(svc["spec"].get("selector"), pod["metadata"].get("labels")):
                    self.queue.add(key_of(svc))

    def _on_owned(self, kind: str, old: Obj | None, new: Obj | None) -> None:
        """Someone changed or deleted an Endpoints/EndpointSlice: put it back as it should be."""
        obj = new or old
        assert obj is not None
        ns = obj["metadata"].get("namespace")
        name = (
            (obj["metadata"].get("labels") or {}).get(SERVICE_NAME_LABEL)
            if obj.get("kind") == "EndpointSlice"
            else obj["metadata"]["name"]
        )
        if name:
            self.queue.add(f"{ns}/{name}")

    async def run(self) -> None:
        """Process the queue forever."""
        await self.queue.run(self.sync, workers=2)

    async def sync(self, key: str) -> None:
        """Reconcile the Endpoints and EndpointSlices of one Service."""
        svc = self.svc_informer.get(key)
        if svc is None:
            await self._delete_endpoints(key)
            return
        if not svc["spec"].get("selector") or svc["metadata"].get("deletionTimestamp"):
            return
        ns = svc["metadata"]["namespace"]
        publish_not_ready = bool(svc["spec"].get("publishNotReadyAddresses"))
        pods = sorted(
            (
                p
                for p in self.pod_informer.items(ns)
                if map_selector_matches(svc["spec"]["selector"], p["metadata"].get("labels"))
                and (p.get("status") or {}).get("podIP")
                and p.get("status", {}).get("phase") not in ("Succeeded", "Failed")
            ),
            key=lambda p: p["metadata"]["name"],
        )
        await self._sync_slices(svc, pods, publish_not_ready)
        await self._sync_endpoints(svc, pods, publish_not_ready)

    async def _delete_endpoints(self, key: str) -> None:
        """The Service is gone: so are its Endpoints (its EndpointSlices go with their owner)."""
        ep = self.ep_informer.get(key)
        if (
            ep is None
            or (ep["metadata"].get("labels") or {}).get(ENDPOINTS_MANAGED_BY_LABEL) != ENDPOINTS_MANAGED_BY
        ):
            return
        try:
            await self.client.delete(
                ENDPOINTS,
                ep["metadata"]["name"],
                namespace=ep["metadata"]["namespace"],
                uid=ep["metadata"]["uid"],
            )
        except ApiError as exc:
            if not (exc.not_found or exc.conflict):
                raise

    async def _sync_slices(self, svc: Obj, pods: list[Obj], publish_not_ready: bool) -> None:
        groups: dict[tuple, list[Obj]] = {}
        for pod in pods:
            ports = service_ports(svc, pod)
            if ports is None:
                continue
            ready = is_pod_ready(pod)
            terminating = is_terminating(pod)
            groups.setdefault(ports, []).append(
                {
                    "addresses": [pod["status"]["podIP"]],
                    "conditions": {
                        "ready": (ready and not terminating) or publish_not_ready,
                        "serving": ready,
                        "terminating": terminating,
                    },
                    "targetRef": {
                        "kind": "Pod",
                        "namespace": pod["metadata"]["namespace"],
                        "name": pod["metadata"]["name"],
                        "uid": pod["metadata"]["uid"],
                    },
                    **({"nodeName": pod["spec"]["nodeName"]} if pod.get("spec", {}).get("nodeName") else {}),
                }
            )
        if not groups:
            groups[()] = []
        ns, name = svc["metadata"]["namespace"], svc["metadata"]["name"]
        existing = sorted(
            (
                s
                for s in self.slice_informer.items(ns)
                if (s["metadata"].get("labels") or {}).get(SERVICE_NAME_LABEL) == name
                and (s["metadata"].get("labels") or {}).get(MANAGED_BY_LABEL) == MANAGED_BY
            ),
            key=lambda s: s["metadata"]["name"],
        )
        labels = {
            **(svc["metadata"].get("labels") or {}),
            SERVICE_NAME_LABEL: name,
            MANAGED_BY_LABEL: MANAGED_BY,
        }
        for ports, endpoints in groups.items():
            body = {
                "addressType": "IPv4",
                "endpoints": endpoints,
                "ports": _ports_json(ports) if ports else [],
            }
            current = existing.pop(0) if existing else None
            if current is None:
                await self.client.create(
                    ENDPOINTSLICES,
                    {
                        "apiVersion": "discovery.k8s.io/v1",
                        "kind": "EndpointSlice",
                        "metadata": {
                            "generateName": f"{name}-",
                            "namespace": ns,
                            "labels": labels,
                            "ownerReferences": [owner_reference(svc)],
                        },
                        **body,
                    },
                )
                continue
            if self._unchanged(current, body, labels):
                continue
            await self._put(ENDPOINTSLICES, copy.deepcopy(current), body, labels)
        for stale in existing:
            try:
                await self.client.delete(ENDPOINTSLICES, stale["metadata"]["name"], namespace=ns)
            except ApiError as exc:
                if not exc.not_found:
                    raise

    async def _sync_endpoints(self, svc: Obj, pods: list[Obj], publish_not_ready: bool) -> None:
        subsets: dict[tuple, dict[str, list[Obj]]] = {}
        for pod in pods:
            terminating = is_terminating(pod)
            if terminating and not publish_not_ready:
                continue
            ports = service_ports(svc, pod)
            if ports is None:
                continue
            address = {
                "ip": pod["status"]["podIP"],
                **({"nodeName": pod["spec"]["nodeName"]} if pod.get("spec", {}).get("nodeName") else {}),
                "targetRef": {
                    "kind": "Pod",
                    "namespace": pod["metadata"]["namespace"],
                    "name": pod["metadata"]["name"],
                    "uid": pod["metadata"]["uid"],
                },
            }
            bucket = subsets.setdefault(ports, {"addresses": [], "notReadyAddresses": []})
            ready = publish_not_ready or is_pod_ready(pod)
            bucket["addresses" if ready else "notReadyAddresses"].append(address)
        rendered = []
        for ports, bucket in subsets.items():
            subset: Obj = {k: v for k, v in bucket.items() if v}
            subset["ports"] = [
                {k: v for k, v in p.items() if k != "appProtocol" or v} for p in _ports_json(ports)
            ]
            for p in subset["ports"]:
                if not p.get("name"):
                    p.pop("name", None)
            rendered.append(subset)
        ns, name = svc["metadata"]["namespace"], svc["metadata"]["name"]
        labels = {**(svc["metadata"].get("labels") or {}), ENDPOINTS_MANAGED_BY_LABEL: ENDPOINTS_MANAGED_BY}
        current = self.ep_informer.get(f"{ns}/{name}")
        if current is None:
            try:
                await self.client.create(
                    ENDPOINTS,
                    {
                        "apiVersion": "v1",
                        "kind": "Endpoints",
                        "metadata": {"name": name, "namespace": ns, "labels": labels},
                        "subsets": rendered,
                    },
                )
            except ApiError as exc:
                if not exc.conflict:
                    raise
                self.queue.add_after(f"{ns}/{name}", 0.2)
            return
        if self._unchanged(current, {"subsets": rendered}, labels):
            return
        await self._put(ENDPOINTS, copy.deepcopy(current), {"subsets": rendered}, labels)

    def _unchanged(self, current: Obj, body: Obj, labels: dict[str, str]) -> bool:
        """Already as wanted: equal content, or exactly the version we wrote from this content
        (the server may normalise what we send; comparing with that would rewrite forever)."""
        if (
            all(current.get(k) == v for k, v in body.items())
            and (current["metadata"].get("labels") or {}) == labels
        ):
            return True
        uid = current["metadata"].get("uid")
        return self._written.get(uid) == (current["metadata"].get("resourceVersion"), _digest(body, labels))

    async def _put(self, res: Resource, obj: Obj, body: Obj, labels: dict[str, str]) -> None:
        """Replace an object with ``body`` and ``labels``; a conflict means our cache is stale: retry soon."""
        obj.update(body)
        obj["metadata"]["labels"] = labels
        try:
            written = await self.client.replace(res, obj)
            self._written[obj["metadata"]["uid"]] = (
                written["metadata"].get("resourceVersion"),
                _digest(body, labels),
            )
        except ApiError as exc:
            if exc.conflict or exc.not_found:
                self.queue.add_after(f"{obj['metadata']['namespace']}/{self._svc_name(obj)}", 0.2)
                return
            raise

    @staticmethod
    def _svc_name(obj: Obj) -> str:
        if obj.get("kind") == "EndpointSlice":
            return (obj["metadata"].get("labels") or {}).get(SERVICE_NAME_LABEL, "")
        return obj["metadata"]["name"]
