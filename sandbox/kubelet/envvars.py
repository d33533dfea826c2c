"""A container's environment: image defaults, the pod spec's ``env``, the downward API and
what the sandbox kubelet injects (pkg/kubelet's ``makeEnvironmentVariables``).

Order, as in Kubernetes: the runtime's PATH (containerd's default), the image's ENV, the
Services' variables (``FromServices``: the pod's namespace's Services and ``kubernetes``),
``envFrom`` (ConfigMaps and Secrets, with ``prefix``), then ``env``
entries in order (each may refer to the ones before it with ``$(NAME)``; an unknown reference
stays as written), ``fieldRef`` values from the downward API. HOSTNAME is the pod's name.
Because pods share the host's network, the sandbox also sets ``BIND_ADDRESS`` to the pod IP
(programs that bind it get the pod's own address), and, unless the spec sets them,
POD_NAME, POD_NAMESPACE, POD_IP, NODE_NAME and PORT (the first containerPort).
"""

from __future__ import annotations

import base64
import os
import re
from collections.abc import Callable
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


MASTER_SERVICES = ("kubernetes",)


class EnvError(Exception):
    """A referenced ConfigMap/Secret or key is missing: the kubelet's CreateContainerConfigError."""


# (kind, namespace, name) -> the object, or None when it does not exist.
Lookup = Callable[[str, str, str], Obj | None]


def _source_data(kind: str, obj: Obj) -> dict[str, str]:
    """A ConfigMap's data (and binaryData as text), or a Secret's decoded data."""
    if kind == "Secret":
        out = {}
        for key, value in (obj.get("data") or {}).items():
            try:
                out[key] = base64.b64decode(value or "").decode("utf-8", errors="replace")
            except (ValueError, TypeError):
                out[key] = ""
        return out
    data = {k: str(v) for k, v in (obj.get("data") or {}).items()}
    for key, value in (obj.get("binaryData") or {}).items():
        data.setdefault(key, base64.b64decode(value or "").decode("utf-8", errors="replace"))
    return data


def env_from(pod: Obj, container: Obj, lookup: Lookup) -> dict[str, str]:
    """The ``envFrom`` variables (ConfigMaps and Secrets, with ``prefix``); EnvError with the
    kubelet's message for a missing object unless ``optional``."""
    namespace = pod["metadata"].get("namespace", "default")
    out: dict[str, str] = {}
    for source in container.get("envFrom") or []:
        for field, kind in (("configMapRef", "ConfigMap"), ("secretRef", "Secret")):
            ref = source.get(field)
            if not isinstance(ref, dict):
                continue
            obj = lookup(kind, namespace, ref.get("name", ""))
            if obj is None:
                if ref.get("optional"):
                    continue
                raise EnvError(f'{kind.lower()} "{ref.get("name", "")}" not found')
            for key, value in _source_data(kind, obj).items():
                out[f"{source.get('prefix') or ''}{key}"] = value
    return out


def key_ref(pod: Obj, item: Obj, lookup: Lookup) -> str | None:
    """The value of one ``configMapKeyRef``/``secretKeyRef`` env item (None: optional and absent)."""
    namespace = pod["metadata"].get("namespace", "default")
    value_from = item.get("valueFrom") or {}
    for field, kind in (("configMapKeyRef", "ConfigMap"), ("secretKeyRef", "Secret")):
        ref = value_from.get(field)
        if not isinstance(ref, dict):
            continue
        name, key = ref.get("name", ""), ref.get("key", "")
        obj = lookup(kind, namespace, name)
        if obj is None:
            if ref.get("optional"):
                return None
            raise EnvError(f'{kind.lower()} "{name}" not found')
        data = _source_data(kind, obj)
        if key not in data:
            if ref.get("optional"):
                return None
            raise EnvError(f"couldn't find key {key} in {kind} {namespace}/{name}")
        return data[key]
    return None


def _env_name(name: str) -> str:
    """``makeEnvVariableName``: ``backend-service`` -> ``BACKEND_SERVICE``."""
    return name.replace("-", "_").upper()


def _has_cluster_ip(service: Obj) -> bool:
    ip = (service.get("spec") or {}).get("clusterIP")
    return bool(ip) and ip != "None" and bool((service.get("spec") or {}).get("ports"))


def visible_services(pod: Obj, services: list[Obj]) -> list[Obj]:
    """``getServiceEnvVarMap``: the services of the pod's namespace (unless
    ``enableServiceLinks: false``) plus ``default/kubernetes``, by name, with a ClusterIP."""
    namespace = pod["metadata"].get("namespace")
    links = (pod.get("spec") or {}).get("enableServiceLinks", True) is not False
    chosen: dict[str, Obj] = {}
    for service in services:
        meta = service.get("metadata") or {}
        if not _has_cluster_ip(service):
            continue
        name = meta.get("name", "")
        if meta.get("namespace") == "default" and name in MASTER_SERVICES:
            chosen.setdefault(name, service)
        elif meta.get("namespace") == namespace and links:
            chosen[name] = service
    return [chosen[name] for name in sorted(chosen)]


def service_env(services: list[Obj]) -> dict[str, str]:
    """``FromServices``: ``<NAME>_SERVICE_HOST``/``_PORT``/``_PORT_<PORTNAME>`` and the
    docker-link variables (``<NAME>_PORT``, ``<NAME>_PORT_80_TCP``, ``_PROTO``, ``_PORT``, ``_ADDR``)."""
    env: dict[str, str] = {}
    for service in services:
        spec = service["spec"]
        ip, ports = spec["clusterIP"], spec["ports"]
        prefix = _env_name(service["metadata"]["name"])
        env[f"{prefix}_SERVICE_HOST"] = ip
        env[f"{prefix}_SERVICE_PORT"] = str(ports[0].get("port"))
        for port in ports:
            if port.get("name"):
                env[f"{prefix}_SERVICE_PORT_{_env_name(port['name'])}"] = str(port.get("port"))
        for i, port in enumerate(ports):
            protocol = port.get("protocol") or "TCP"
            host_port = f"[{ip}]:{port.get('port')}" if ":" in ip else f"{ip}:{port.get('port')}"
            url = f"{protocol.lower()}://{host_port}"
            if i == 0:
                env[f"{prefix}_PORT"] = url
            base = f"{prefix}_PORT_{port.get('port')}_{protocol.upper()}"
            env[base] = url
            env[f"{base}_PROTO"] = protocol.lower()
            env[f"{base}_PORT"] = str(port.get("port"))
            env[f"{base}_ADDR"] = ip
    return env


def container_env(
    pod: Obj,
    container: Obj,
    *,
    image_env: dict[str, str],
    pod_ip: str,
    host_ip: str,
    node: str,
    services: list[Obj] | None = None,
    lookup: Lookup | None = None,
) -> dict[str, str]:
    """The environment a container starts with; EnvError when a reference cannot be resolved."""
    lookup = lookup or (lambda kind, namespace, name: None)
    from_sources = env_from(pod, container, lookup)
    env = {
        "PATH": DEFAULT_PATH,
        "LANG": os.environ.get("LANG", "C.UTF-8"),
        **image_env,
        **service_env(visible_services(pod, services or [])),
        **from_sources,
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
        elif item.get("valueFrom"):
            value = key_ref(pod, item, lookup)
            if value is not None:
                env[name] = value
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
