"""Pod volumes (pkg/kubelet/volumemanager, reduced): emptyDir, configMap, secret, downwardAPI and
projected, materialised as directories of the pod on the node and bound into its containers.

- ``emptyDir``: an empty directory (mode 0777, as Kubernetes makes it) that lives as long as the
  pod — container restarts keep its files, deleting the pod removes it;
- ``configMap`` / ``secret``: one file per key (or per ``items`` entry, at its ``path``) with
  ``defaultMode`` / ``mode`` (0644 by default); a missing object or key fails the mount like the
  kubelet (``MountVolume.SetUp failed for volume "config" : configmap "x" not found``) unless
  ``optional``, and the pod waits in ContainerCreating; the files follow later changes of the
  object (`refresh`), except through a ``subPath`` mount, as in Kubernetes;
- ``downwardAPI``: files of fieldRef values (name, namespace, uid, labels, annotations …);
- ``projected``: configMap, secret, downwardAPI and serviceAccountToken sources in one directory.

The files of configMap, secret, downwardAPI and projected volumes are written by the kubelet's
AtomicWriter (`atomicwriter.py`): a timestamped directory behind a ``..data`` symlink, one
symlink per visible name, swapped in one rename on every change.

configMap, secret, downwardAPI and projected volumes are mounted read-only; ``volumeMounts``
honour ``mountPath``, ``subPath`` and ``readOnly``. Other volume types (hostPath, PVCs …) are
not supported: they fail the mount with a message that says so, never silently.
"""

from __future__ import annotations

import base64
import contextlib
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sandbox.kubelet import atomicwriter
from sandbox.kubelet.envvars import field_ref
from sandbox.kubelet.isolation import Mount

Obj = dict[str, Any]
Lookup = Callable[[str, str, str], Obj | None]

DEFAULT_MODE = 0o644
READ_ONLY_TYPES = ("configMap", "secret", "downwardAPI", "projected")
SUPPORTED = ("emptyDir", *READ_ONLY_TYPES)


class MountError(Exception):
    """A volume cannot be set up (a FailedMount event; the pod stays ContainerCreating)."""


def _volume_type(volume: Obj) -> str:
    for kind in (*SUPPORTED, "hostPath", "persistentVolumeClaim", "nfs", "csi", "ephemeral", "image"):
        if kind in volume:
            return kind
    return next((k for k in volume if k != "name"), "unknown")


def _object_data(kind: str, obj: Obj) -> dict[str, bytes]:
    if kind == "Secret":
        return {k: base64.b64decode(v or "") for k, v in (obj.get("data") or {}).items()}
    data = {k: str(v).encode() for k, v in (obj.get("data") or {}).items()}
    data.update({k: base64.b64decode(v or "") for k, v in (obj.get("binaryData") or {}).items()})
    return data


def _keyed_files(
    kind: str, source: Obj, namespace: str, lookup: Lookup, volume: str, default_mode: int
) -> dict[str, tuple[bytes, int]]:
    """path -> (content, mode) of one configMap/secret source."""
    name = source.get("name") or source.get("secretName") or ""
    obj = lookup(kind, namespace, name)
    if obj is None:
        if source.get("optional"):
            return {}
        raise MountError(
            f'MountVolume.SetUp failed for volume "{volume}" : {kind.lower()} "{name}" not found'
        )
    data = _object_data(kind, obj)
    items = source.get("items")
    if not items:
        return {key: (value, default_mode) for key, value in data.items()}
    out = {}
    for item in items:
        key = item.get("key", "")
        if key not in data:
            if source.get("optional"):
                continue
            raise MountError(
                f'MountVolume.SetUp failed for volume "{volume}" : configmap references non-existent '
                f"config key: {key}"
                if kind == "ConfigMap"
                else f'MountVolume.SetUp failed for volume "{volume}" : references non-existent secret '
                f"key: {key}"
            )
        out[item.get("path") or key] = (
            data[key],
            int(item["mode"]) if item.get("mode") is not None else default_mode,
        )
    return out


def _downward_files(
    source: Obj, pod: Obj, pod_ip: str, host_ip: str, default_mode: int
) -> dict[str, tuple[bytes, int]]:
    out = {}
    for item in source.get("items") or []:
        ref = item.get("fieldRef") or {}
        path = ref.get("fieldPath", "")
        if path in ("metadata.labels", "metadata.annotations"):
            values = (pod.get("metadata") or {}).get(path.split(".")[1]) or {}
            text = "\n".join(f'{k}="{v}"' for k, v in sorted(values.items()))
        else:
            text = field_ref(pod, path, pod_ip=pod_ip, host_ip=host_ip) if ref else ""
        mode = int(item["mode"]) if item.get("mode") is not None else default_mode
        out[item.get("path", "")] = (text.encode(), mode)
    return out


def volume_files(
    volume: Obj, pod: Obj, lookup: Lookup, *, pod_ip: str, host_ip: str,
    tokens: dict[tuple[str, str], str] | None = None,
) -> dict[str, tuple[bytes, int]]:
    """The files of a configMap/secret/downwardAPI/projected volume."""
    tokens = tokens or {}
    namespace = pod["metadata"].get("namespace", "default")
    name = volume.get("name", "")
    kind = _volume_type(volume)
    spec = volume.get(kind) or {}
    default_mode = int(spec.get("defaultMode", DEFAULT_MODE))
    if kind == "configMap":
        return _keyed_files("ConfigMap", spec, namespace, lookup, name, default_mode)
    if kind == "secret":
        return _keyed_files("Secret", spec, namespace, lookup, name, default_mode)
    if kind == "downwardAPI":
        return _downward_files(spec, pod, pod_ip, host_ip, default_mode)
    files: dict[str, tuple[bytes, int]] = {}
    for source in spec.get("sources") or []:
        if "configMap" in source:
            files.update(
                _keyed_files("ConfigMap", source["configMap"], namespace, lookup, name, default_mode)
            )
        elif "secret" in source:
            files.update(_keyed_files("Secret", source["secret"], namespace, lookup, name, default_mode))
        elif "downwardAPI" in source:
            files.update(_downward_files(source["downwardAPI"], pod, pod_ip, host_ip, default_mode))
        elif "serviceAccountToken" in source:
            path = (source["serviceAccountToken"] or {}).get("path", "token")
            token = tokens.get((name, path))
            if token is None:
                raise MountError(f'MountVolume.SetUp failed for volume "{name}" : no token for {path} yet')
            files[path] = (token.encode(), default_mode)
    return files


class PodVolumes:
    """The volumes of one pod on the node, under ``root`` (the pod's runtime directory)."""

    def __init__(self, root: Path) -> None:
        self.root = root / "volumes"
        # (volume, path) -> a pod-bound ServiceAccount token the kubelet requested (TokenRequest).
        self.tokens: dict[tuple[str, str], str] = {}

    @staticmethod
    def token_requests(pod: Obj) -> list[tuple[str, str, Obj]]:
        """(volume, path, serviceAccountToken source) of every projected token of the pod."""
        out = []
        for volume in (pod.get("spec") or {}).get("volumes") or []:
            for source in (volume.get("projected") or {}).get("sources") or []:
                token = source.get("serviceAccountToken")
                if isinstance(token, dict):
                    out.append((volume.get("name", ""), token.get("path", "token"), token))
        return out

    def path(self, name: str) -> Path:
        """Where volume ``name`` lives on the node."""
        return self.root / name

    def set_up(self, pod: Obj, lookup: Lookup, *, pod_ip: str, host_ip: str) -> None:
        """Create or refresh every volume; MountError for the first that cannot be set up."""
        for volume in (pod.get("spec") or {}).get("volumes") or []:
            name = volume.get("name", "")
            kind = _volume_type(volume)
            if kind not in SUPPORTED:
                raise MountError(
                    f'MountVolume.SetUp failed for volume "{name}" : {kind} volumes are not supported '
                    "by the sandbox kubelet (emptyDir, configMap, secret, downwardAPI and projected are)"
                )
            if kind == "emptyDir":
                directory = self.path(name)
                if not directory.exists():
                    directory.mkdir(parents=True)
                    os.chmod(directory, 0o777)
                continue
            files = volume_files(volume, pod, lookup, pod_ip=pod_ip, host_ip=host_ip, tokens=self.tokens)
            try:
                atomicwriter.write(self.path(name), files)
            except atomicwriter.PayloadError as exc:
                raise MountError(f'MountVolume.SetUp failed for volume "{name}" : {exc}') from None

    def refresh(self, pod: Obj, lookup: Lookup, *, pod_ip: str, host_ip: str) -> None:
        """A ConfigMap or Secret changed: bring the pod's volumes up to date (errors kept for later)."""
        with contextlib.suppress(MountError, OSError):
            self.set_up(pod, lookup, pod_ip=pod_ip, host_ip=host_ip)

    def mounts(self, pod: Obj, container: Obj) -> list[Mount]:
        """The container's ``volumeMounts`` as bind mounts (subPath, readOnly honoured)."""
        volumes = {v.get("name"): v for v in (pod.get("spec") or {}).get("volumes") or []}
        out = []
        for mount in container.get("volumeMounts") or []:
            volume = volumes.get(mount.get("name"))
            if volume is None:
                continue
            source = self.path(mount["name"])
            sub = mount.get("subPath") or ""
            if sub:
                source = source / sub
                if _volume_type(volume) == "emptyDir" and not source.exists():
                    source.mkdir(parents=True, exist_ok=True)
                    os.chmod(source, 0o777)
            read_only = bool(mount.get("readOnly")) or _volume_type(volume) in READ_ONLY_TYPES
            out.append(Mount(str(source), mount.get("mountPath", ""), read_only=read_only))
        return out

    def remove(self) -> None:
        """The pod is gone: its volumes go with it."""
        shutil.rmtree(self.root, ignore_errors=True)
