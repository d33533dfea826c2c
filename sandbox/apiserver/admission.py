"""The ServiceAccount admission plugin, kube-apiserver's `plugin/pkg/admission/serviceaccount`.

On every pod create (not on updates, not on subresources) it:

1. defaults `spec.serviceAccountName` to `default` (pod defaulting already does: the
   deprecated `serviceAccount` field mirrors it);
2. refuses the pod (403) when that ServiceAccount does not exist:
   `pods "x" is forbidden: error looking up service account ns/sa: serviceaccount "sa" not found`;
3. unless `automountServiceAccountToken: false` on the pod (which wins) or on its
   ServiceAccount, adds the projected volume `kube-api-access-<5 random chars>` (a bound
   token of 3607 s at `token`, `ca.crt` from the namespace's `kube-root-ca.crt` ConfigMap,
   `namespace` from the downward API, defaultMode 420) and a read-only mount of it at
   `/var/run/secrets/kubernetes.io/serviceaccount` on every init container and container that
   does not already mount something there (a pod that already has a `kube-api-access-*`
   volume keeps it); ephemeral containers are not mounted, as in the real plugin;
4. copies the ServiceAccount's `imagePullSecrets` into a pod that has none;
5. with the `kubernetes.io/enforce-mountable-secrets: "true"` annotation on the ServiceAccount,
   refuses Secrets (volumes, env, envFrom, imagePullSecrets) the ServiceAccount does not list.

It runs as the pod strategy's create-time `allocate` hook, i.e. after validation, where a
real API server runs mutating admission before it: only a pod that is both invalid and names a
missing ServiceAccount answers differently (422 here, 403 there). Mirror pods do not exist in
the sandbox (no static pods), so their rules are left out. The default ServiceAccount exists as
soon as its namespace does (see `kinds/namespace.py`), so there is no retry loop for it.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Any

from sandbox.apiserver import errors
from sandbox.apiserver.kinds import serviceaccount

if TYPE_CHECKING:
    from sandbox.apiserver.registry import Registry
    from sandbox.apiserver.strategy import Resource

DEFAULT_SERVICE_ACCOUNT = "default"
VOLUME_PREFIX = "kube-api-access"
TOKEN_MOUNT_PATH = "/var/run/secrets/kubernetes.io/serviceaccount"
ENFORCE_MOUNTABLE_SECRETS = "kubernetes.io/enforce-mountable-secrets"
ROOT_CA_CONFIGMAP = "kube-root-ca.crt"
WARN_ONLY_BOUND_TOKEN_EXPIRATION = 3607  # serviceaccount.WarnOnlyBoundTokenExpirationSeconds
PROJECTED_DEFAULT_MODE = 0o644  # v1.ProjectedVolumeSourceDefaultMode (420)
NAME_CHARS = "bcdfghjklmnpqrstvwxz2456789"  # names.SimpleNameGenerator's alphabet


def token_volume_source() -> dict[str, Any]:
    """`TokenVolumeSource()`: what every auto-mounted `kube-api-access-*` volume projects."""
    return {"defaultMode": PROJECTED_DEFAULT_MODE, "sources": [
        {"serviceAccountToken": {"expirationSeconds": WARN_ONLY_BOUND_TOKEN_EXPIRATION, "path": "token"}},
        {"configMap": {"name": ROOT_CA_CONFIGMAP, "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
        {"downwardAPI": {"items": [{"path": "namespace",
                                    "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}},
    ]}


def should_automount(account: dict, pod: dict) -> bool:
    """`shouldAutomount`: the pod's preference wins, then the ServiceAccount's, else true."""
    for owner in (pod.get("spec") or {}, account):
        if isinstance(owner.get("automountServiceAccountToken"), bool):
            return bool(owner["automountServiceAccountToken"])
    return True


def _containers(spec: dict, group: str) -> list[dict]:
    return [c for c in spec.get(group) or [] if isinstance(c, dict)]


def mount_service_account_token(spec: dict) -> None:
    """`mountServiceAccountToken`: the volume (unless one is there) and a mount in every init
    container and container that does not mount the default path yet."""
    volumes = spec.get("volumes") or []
    existing = next((v.get("name") for v in volumes if isinstance(v, dict)
                     and str(v.get("name") or "").startswith(VOLUME_PREFIX + "-")), None)
    name = existing or f"{VOLUME_PREFIX}-" + "".join(random.choices(NAME_CHARS, k=5))
    needs_volume = False
    for group in ("initContainers", "containers"):
        for ctr in _containers(spec, group):
            mounts = ctr.get("volumeMounts") or []
            if any(isinstance(m, dict) and m.get("mountPath") == TOKEN_MOUNT_PATH for m in mounts):
                continue
            ctr["volumeMounts"] = [*mounts, {"name": name, "readOnly": True, "mountPath": TOKEN_MOUNT_PATH}]
            needs_volume = True
    if existing is None and needs_volume:
        spec["volumes"] = [*volumes, {"name": name, "projected": token_volume_source()}]


def _secret_reference_error(account: dict, spec: dict) -> str | None:
    """`limitSecretReferences`: the first Secret the pod uses that the ServiceAccount does not list."""
    sa_name = account["metadata"]["name"]
    mountable = {s.get("name") for s in account.get("secrets") or [] if isinstance(s, dict)}
    for volume in spec.get("volumes") or []:
        secret = (volume or {}).get("secret")
        if isinstance(secret, dict) and secret.get("secretName") not in mountable:
            return (f'volume with secret.secretName="{secret.get("secretName")}" is not allowed because '
                    f"service account {sa_name} does not reference that secret")
    for group, what in (("initContainers", "init container"), ("containers", "container")):
        for ctr in _containers(spec, group):
            for env in ctr.get("env") or []:
                ref = ((env or {}).get("valueFrom") or {}).get("secretKeyRef")
                if isinstance(ref, dict) and ref.get("name") not in mountable:
                    return (f'{what} {ctr.get("name")} with envVar {env.get("name")} referencing '
                            f'secret.secretName="{ref.get("name")}" is not allowed because service account '
                            f"{sa_name} does not reference that secret")
            for source in ctr.get("envFrom") or []:
                ref = (source or {}).get("secretRef")
                if isinstance(ref, dict) and ref.get("name") not in mountable:
                    return (f'{what} {ctr.get("name")} with envFrom referencing secret.secretName='
                            f'"{ref.get("name")}" is not allowed because service account {sa_name} does not '
                            "reference that secret")
    pull = {s.get("name") for s in account.get("imagePullSecrets") or [] if isinstance(s, dict)}
    for i, ref in enumerate(spec.get("imagePullSecrets") or []):
        if (ref or {}).get("name") not in pull:
            return (f'imagePullSecrets[{i}].name="{(ref or {}).get("name")}" is not allowed because service '
                    f"account {sa_name} does not reference that imagePullSecret")
    return None


def admit_pod(registry: Registry, res: Resource, pod: dict) -> None:
    """The plugin's Admit + Validate for a pod create (mutates ``pod``; ApiError 403 when refused)."""
    meta, spec = pod.get("metadata") or {}, pod.get("spec")
    if not isinstance(spec, dict):
        return
    namespace, pod_name = meta.get("namespace") or "", meta.get("name") or ""
    generate = meta.get("generateName") or ""
    if generate and pod_name.startswith(generate) and len(pod_name) == len(generate) + 5:
        pod_name = generate  # admission runs before the name is generated: its errors name the prefix
    account_name = spec.get("serviceAccountName") or DEFAULT_SERVICE_ACCOUNT
    spec["serviceAccountName"] = account_name
    entry = registry.store.get(serviceaccount.RESOURCE.key, namespace, account_name)
    if entry is None:
        raise errors.forbidden(res, pod_name, f"error looking up service account {namespace}/{account_name}: "
                                              f'serviceaccount "{account_name}" not found')
    account = entry.obj
    if should_automount(account, pod):
        mount_service_account_token(spec)
    if not spec.get("imagePullSecrets") and account.get("imagePullSecrets"):
        spec["imagePullSecrets"] = [{"name": s.get("name")} for s in account["imagePullSecrets"]
                                    if isinstance(s, dict)]
    annotations = (account.get("metadata") or {}).get("annotations") or {}
    annotation = str(annotations.get(ENFORCE_MOUNTABLE_SECRETS, ""))
    if annotation.lower() in ("1", "t", "true"):
        why = _secret_reference_error(account, spec)
        if why is not None:
            raise errors.forbidden(res, pod_name, why)
