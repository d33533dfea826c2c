"""The kubelet's Node object and heartbeats (pkg/kubelet/nodestatus, nodelease).

`node_object` builds the Node a kubelet registers: capacity from this machine, the
Memory/Disk/PID pressure conditions False and Ready True, InternalIP and Hostname addresses,
nodeInfo, and ``images`` (what the node's image store holds, as the kubelet's
nodestatus.Images setter reports them: names with digest and tag, sizeBytes, biggest first,
at most 50). `NodeAgent` registers it, renews the node Lease in ``kube-node-lease`` every 10 s
(when the API server serves Leases) and refreshes the status every minute, or at the next
lease renewal when the node's images changed (``python -m sandbox image load``) or the API's
Node is not Ready (the node lifecycle controller marked it Unknown after a silence).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import platform
import time
import uuid
from collections.abc import Callable
from typing import Any

from sandbox.client import LEASES, NODES, ApiClient, ApiError
from sandbox.kubelet.network import pod_cidr
from sandbox.meta import now_iso

Obj = dict[str, Any]

KUBELET_VERSION = "v1.37.1"
RUNTIME_VERSION = "sandbox://0.1.0"
NODE_STATUS_PERIOD = 60.0
LEASE_PERIOD = 10.0
LEASE_DURATION = 40
LEASE_NAMESPACE = "kube-node-lease"
NODE_INDEX_LABEL = "sandbox.lb-demo.dev/node-index"
MAX_NODE_IMAGES = 50  # the kubelet's --node-status-max-images default


def node_object(
    *, name: str, index: int, host_ip: str, network_octet: int, boot_id: str, images: list[Obj] | None = None
) -> Obj:
    """The Node object a kubelet registers, status included."""
    uname = platform.uname()
    cpu = str(os.cpu_count() or 1)
    try:
        memory = f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') // 1024}Ki"
    except (ValueError, OSError):
        memory = "4Gi"
    capacity = {"cpu": cpu, "memory": memory, "pods": "110", "ephemeral-storage": "20Gi"}
    stamp = now_iso()
    conditions = [
        {
            "type": t,
            "status": "False",
            "reason": r,
            "message": m,
            "lastHeartbeatTime": stamp,
            "lastTransitionTime": stamp,
        }
        for t, r, m in (
            ("MemoryPressure", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
            ("DiskPressure", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
            ("PIDPressure", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
        )
    ]
    conditions.append(
        {
            "type": "Ready",
            "status": "True",
            "reason": "KubeletReady",
            "message": "kubelet is posting ready status",
            "lastHeartbeatTime": stamp,
            "lastTransitionTime": stamp,
        }
    )
    cidr = pod_cidr(index, network_octet)
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": {
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "beta.kubernetes.io/os": "linux",
                "beta.kubernetes.io/arch": "amd64",
                NODE_INDEX_LABEL: str(index),
            },
            "annotations": {"node.alpha.kubernetes.io/ttl": "0"},
        },
        "spec": {"podCIDR": cidr, "podCIDRs": [cidr]},
        "status": {
            "capacity": capacity,
            "allocatable": dict(capacity),
            "conditions": conditions,
            "addresses": [
                {"type": "InternalIP", "address": host_ip},
                {"type": "Hostname", "address": name},
            ],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "nodeInfo": {
                "machineID": uuid.uuid5(uuid.NAMESPACE_DNS, name).hex,
                "systemUUID": str(uuid.uuid5(uuid.NAMESPACE_URL, name)),
                "bootID": boot_id,
                "kernelVersion": uname.release,
                "osImage": f"lb-demo sandbox node ({platform.system()} {uname.machine})",
                "containerRuntimeVersion": RUNTIME_VERSION,
                "kubeletVersion": KUBELET_VERSION,
                "kubeProxyVersion": KUBELET_VERSION,
                "operatingSystem": "linux",
                "architecture": "amd64",
            },
            "images": images or [],
        },
    }


def node_images(entries: list[tuple[list[str], int]]) -> list[Obj]:
    """``status.images`` from (names, size) pairs: biggest first, at most `MAX_NODE_IMAGES`."""
    ordered = sorted(entries, key=lambda entry: (-entry[1], entry[0]))
    return [{"names": names, "sizeBytes": size} for names, size in ordered[:MAX_NODE_IMAGES]]


class NodeAgent:
    """Registers one node and keeps its Lease and status fresh."""

    def __init__(
        self,
        client: ApiClient,
        *,
        name: str,
        index: int,
        host_ip: str,
        network_octet: int,
        images: Callable[[], list[Obj]] = list,
    ) -> None:
        self.client = client
        self._images = images
        self._reported_images: list[Obj] | None = None
        self.name = name
        self.index = index
        self.host_ip = host_ip
        self.network_octet = network_octet
        self.boot_id = str(uuid.uuid4())
        self._leases = True

    def node_object(self) -> Obj:
        """This node's Node object now."""
        return node_object(
            name=self.name,
            index=self.index,
            host_ip=self.host_ip,
            network_octet=self.network_octet,
            boot_id=self.boot_id,
            images=self._images(),
        )

    async def register(self) -> None:
        """Create or refresh the Node object (status included)."""
        node = self.node_object()
        try:
            await self.client.create(NODES, node)
        except ApiError as exc:
            if not exc.conflict:
                raise
            await self.client.patch(NODES, self.name, {"metadata": {"labels": node["metadata"]["labels"]}})
        await self.client.patch(NODES, self.name, {"status": node["status"]}, subresource="status")
        self._reported_images = node["status"]["images"]

    async def heartbeat(self) -> None:
        """Renew the node Lease every 10 s; refresh the status every minute, or sooner when the
        node's images changed."""
        last_status = time.monotonic()
        while True:
            await asyncio.sleep(LEASE_PERIOD)
            with contextlib.suppress(ApiError, OSError, TimeoutError):
                await self.renew_lease()
            images_changed = self._images() != self._reported_images
            due = images_changed or time.monotonic() - last_status >= NODE_STATUS_PERIOD
            if due or await self._overruled():
                last_status = time.monotonic()
                status = self.node_object()["status"]
                with contextlib.suppress(ApiError, OSError, TimeoutError):
                    await self.client.patch(NODES, self.name, {"status": status}, subresource="status")
                    self._reported_images = status["images"]

    async def _overruled(self) -> bool:
        """Whether the Node's Ready is not what this kubelet reports (the node lifecycle
        controller marked it Unknown while we were silent): then the status is posted at once,
        as the kubelet's status update loop does when the API's node differs."""
        try:
            node = await self.client.get(NODES, self.name)
        except (ApiError, OSError, TimeoutError):
            return False
        conditions = (node.get("status") or {}).get("conditions") or []
        return next((c.get("status") for c in conditions if c.get("type") == "Ready"), None) != "True"

    async def renew_lease(self) -> None:
        """Renew (or create) ``kube-node-lease/<node>``; stop trying if Leases are not served."""
        if not self._leases:
            return
        spec = {
            "holderIdentity": self.name,
            "leaseDurationSeconds": LEASE_DURATION,
            "renewTime": time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime()),
        }
        try:
            await self.client.patch(LEASES, self.name, {"spec": spec}, namespace=LEASE_NAMESPACE)
        except ApiError as exc:
            if not exc.not_found:
                raise
            try:
                await self.client.create(
                    LEASES,
                    {
                        "apiVersion": "coordination.k8s.io/v1",
                        "kind": "Lease",
                        "metadata": {"name": self.name, "namespace": LEASE_NAMESPACE},
                        "spec": spec,
                    },
                )
            except ApiError as exc2:
                if exc2.not_found:
                    self._leases = False
