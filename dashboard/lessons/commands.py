"""The command-line equivalent of every action the page takes, for the command log and the lessons.

One function per action, so the slider, a pod's kill and readiness buttons, the traffic panel and
the lessons' buttons all log the same text a learner would type. ``service_url`` finds this lab's
own address for the Service (two labs on one machine share 127.0.0.1:30080, so that one may
belong to the other lab): the NodePort on a node's InternalIP, else the ClusterIP and port.
"""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings

from dashboard.cache import ClusterCache
from servinggate import CONDITION_TYPE


def namespace_flag() -> str:
    """`` -n NS`` unless the namespace is ``default``."""
    namespace = settings.LBDEMO_NAMESPACE
    return "" if namespace == "default" else f" -n {namespace}"


def scale_command(replicas: int) -> str:
    """`kubectl scale` for the configured Deployment."""
    return f"kubectl{namespace_flag()} scale deployment {settings.LBDEMO_DEPLOYMENT} --replicas={replicas}"


def delete_command(names: list[str]) -> str:
    """`kubectl delete pod` of these pods."""
    return f"kubectl{namespace_flag()} delete pod --wait=false {' '.join(names)}"


def readiness_command(name: str, ready: bool) -> str:
    """What the readiness switch does: set the pod's readiness-gate condition through pods/status."""
    patch = json.dumps(
        {"status": {"conditions": [{"type": CONDITION_TYPE, "status": str(ready)}]}}, separators=(",", ":")
    )
    return f"kubectl{namespace_flag()} patch pod {name} --subresource=status --type=strategic -p '{patch}'"


def traffic_command(
    url: str, *, mode: str, conns: int, rps: float, duration: float, max_per_conn: int = 0
) -> str:
    """The traffic engine on its own, with the same settings as a run from the page."""
    command = (
        f".venv/bin/python -m dashboard.traffic {url} --mode {mode} --conns {conns} "
        f"--rps {rps:g} --duration {duration:g}"
    )
    return command + (f" --max-per-conn {max_per_conn}" if max_per_conn else "")


def set_image_command(container: str, image: str) -> str:
    """`kubectl set image` for the configured Deployment."""
    return f"kubectl{namespace_flag()} set image deployment/{settings.LBDEMO_DEPLOYMENT} {container}={image}"


def ingress_name(cache: ClusterCache, service: str | None = None) -> str | None:
    """The first Ingress (by name) whose paths or default backend lead to the Service."""
    wanted = service or settings.LBDEMO_SERVICE
    for ingress in sorted(cache.list("Ingress"), key=lambda i: str((i.get("metadata") or {}).get("name"))):
        spec = ingress.get("spec") or {}
        paths = [p for r in spec.get("rules") or [] for p in (r.get("http") or {}).get("paths") or []]
        backends = [spec.get("defaultBackend") or {}] + [p.get("backend") or {} for p in paths]
        if any((b.get("service") or {}).get("name") == wanted for b in backends):
            return str(ingress["metadata"]["name"])
    return None


def ingress_url(cache: ClusterCache, service: str | None = None) -> str:
    """This lab's address of the Ingress in front of the Service (from its status)."""
    from dashboard.beyond import ingress_address

    name = ingress_name(cache, service)
    address = ingress_address(cache.get("Ingress", name) or {}) if name else ""
    return f"http://{address}/" if address else "http://<ingress address>/"


def service_url(cache: ClusterCache, service: str | None = None) -> str:
    """This lab's address of the Service: http://<node InternalIP>:<nodePort>/, else the ClusterIP."""
    found: dict[str, Any] | None = cache.get("Service", service or settings.LBDEMO_SERVICE)
    if not found:
        return f"http://<{service or settings.LBDEMO_SERVICE} address>/"
    spec = found.get("spec") or {}
    ports = spec.get("ports") or [{}]
    node_port = ports[0].get("nodePort")
    if node_port:
        for node in sorted(cache.list("Node"), key=lambda n: str((n.get("metadata") or {}).get("name"))):
            for address in (node.get("status") or {}).get("addresses") or []:
                if address.get("type") == "InternalIP" and address.get("address"):
                    return f"http://{address['address']}:{node_port}/"
    cluster_ip = spec.get("clusterIP")
    if cluster_ip and cluster_ip != "None":
        return f"http://{cluster_ip}:{ports[0].get('port', 80)}/"
    return f"http://<{service or settings.LBDEMO_SERVICE} address>/"
