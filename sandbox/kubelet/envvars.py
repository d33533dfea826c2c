"""A container's environment: image defaults, the pod spec's ``env``, the downward API and
what the sandbox kubelet injects (pkg/kubelet's ``makeEnvironmentVariables``).

Order, as in Kubernetes: the runtime's PATH (containerd's default), the image's ENV, then ``env``
entries in order (each may refer to the ones before it with ``$(NAME)``; an unknown reference
stays as written), ``fieldRef`` values from the downward API. HOSTNAME is the pod's name.
Because pods share the host's network, the sandbox also sets ``BIND_ADDRESS`` to the pod IP
(programs that bind it get the pod's own address), and, unless the spec sets them,
POD_NAME, POD_NAMESPACE, POD_IP, NODE_NAME and PORT (the first containerPort).
"""

from __future__ import annotations

import os
import re
from typing import Any

Obj = dict[str, Any]

_VAR = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def expand(value: str, env: dict[str, str]) -> str:
    """Kubernetes' ``$(VAR)`` expansion in env values, command and args."""
    return _VAR.sub(lambda m: env.get(m.group(1), m.group(0)), value)


def field_ref(pod: Obj, path: str, *, pod_ip: str, host_ip: str) -> str:
    """Resolve a downward-API fieldPath."""
    meta = pod["metadata"]
    simple = {
        "metadata.name": meta.get("name"),
        "metadata.namespace": meta.get("namespace"),
        "metadata.uid": meta.get("uid"),
        "spec.nodeName": pod["spec"].get("nodeName"),
        "spec.serviceAccountName": pod["spec"].get("serviceAccountName", "default"),
        "status.podIP": pod_ip,
        "status.podIPs": pod_ip,
        "status.hostIP": host_ip,
        "status.hostIPs": host_ip,
    }
    if path in simple:
        return str(simple[path] or "")
    m = re.fullmatch(r"metadata\.(labels|annotations)\['([^']+)'\]", path)
    if m:
        return str((meta.get(m.group(1)) or {}).get(m.group(2), ""))
    return ""


def container_env(
    pod: Obj,
    container: Obj,
    *,
    image_env: dict[str, str],
    pod_ip: str,
    host_ip: str,
    node: str,
) -> dict[str, str]:
    """The environment a container starts with."""
    env = {
        "PATH": DEFAULT_PATH,
        "LANG": os.environ.get("LANG", "C.UTF-8"),
        **image_env,
    }
    env["HOSTNAME"] = pod["metadata"]["name"]
    for item in container.get("env") or []:
        name = item.get("name")
        if not name:
            continue
        if "value" in item:
            env[name] = expand(str(item.get("value") or ""), env)
        elif (item.get("valueFrom") or {}).get("fieldRef"):
            env[name] = field_ref(
                pod, item["valueFrom"]["fieldRef"].get("fieldPath", ""), pod_ip=pod_ip, host_ip=host_ip
            )
    injected = {
        "POD_NAME": pod["metadata"]["name"],
        "POD_NAMESPACE": pod["metadata"]["namespace"],
        "POD_IP": pod_ip,
        "NODE_NAME": node,
    }
    ports = container.get("ports") or []
    if ports:
        injected["PORT"] = str(ports[0]["containerPort"])
    for name, value in injected.items():
        env.setdefault(name, value)
    env["BIND_ADDRESS"] = pod_ip
    return env
