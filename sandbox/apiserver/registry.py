"""REST semantics of every resource, on top of the plain versioned store.

This is the sandbox's counterpart of Kubernetes' `pkg/registry`: what create, update,
patch and delete mean for an object. Validation, defaulting and patching are delegated to the
pure modules `validation.py` and `patch.py`; this module owns the object lifecycle:

- create: kind/apiVersion/namespace checks, generateName, uid, creationTimestamp,
  generation, Service clusterIP / nodePort allocation, 409 AlreadyExists;
- update/patch: optimistic concurrency (409 Conflict), the status subresource split (the main
  resource ignores status, `/status` ignores everything else), generation bumped on spec
  changes, no-op updates that write nothing, the `/scale` subresource, pod binding;
- delete: DeleteOptions preconditions, propagationPolicy (Foreground/Orphan become the
  `foregroundDeletion`/`orphan` finalizers the garbage collector resolves), finalizers, and
  graceful pod deletion (deletionTimestamp + deletionGracePeriodSeconds until the kubelet
  confirms with gracePeriodSeconds=0; a pod not bound to an existing node goes at once).

Every method raises `ApiError` for client mistakes; nothing is changed when it does.
"""

from __future__ import annotations

import ipaddress
import random
import re
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from . import errors, patch, schemas, validation
from .errors import ApiError
from .resources import Resource, lookup
from .selectors import selector_from_match_labels
from .store import Entry, Store, copy_object

SERVICE_CIDR = ipaddress.ip_network("127.96.0.0/16")
NODE_PORT_RANGE = range(30000, 32768)
BOOT_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
RESET_STATUS_ON_CREATE = frozenset({"pods", "services", "deployments", "replicasets"})
NAME_CHARS = "bcdfghjklmnpqrstvwxz2456789"
NAMESPACES = lookup("", "v1", "namespaces")
PODS = lookup("", "v1", "pods")
NODES = lookup("", "v1", "nodes")
SERVICE_ACCOUNTS = lookup("", "v1", "serviceaccounts")


def now() -> str:
    """The current time as Kubernetes writes timestamps (RFC 3339, seconds, UTC)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def allocate_cluster_ip(used: set[str]) -> str:
    """A free ClusterIP picked at random, as kube-apiserver's allocator does. Random rather than
    lowest-free also keeps sandboxes running side by side (tests, a second lab) from sharing
    an address, since every sandbox's proxy listens on real loopback IPs of one machine."""
    first, size = int(SERVICE_CIDR.network_address), SERVICE_CIDR.num_addresses
    for _ in range(64):
        candidate = str(ipaddress.ip_address(first + random.randrange(2, size - 1)))
        if candidate not in used:
            return candidate
    free = next((str(a) for a in SERVICE_CIDR.hosts() if str(a) not in used and a.packed[3] > 1), None)
    if free is None:
        raise ApiError(500, "InternalError", "Internal error occurred: range is full")
    return free


def default_and_validate(res: Resource, obj: dict, *, old: dict | None = None) -> None:
    """Apply API defaults then validate: an object that does not decode is 400 BadRequest (as a
    real server's decoder answers), any other validation failure 422 Invalid."""
    validation.default_object(res.plural, obj)
    try:
        validation.validate_object(res.plural, obj, old=old)
    except validation.Undecodable as exc:
        raise errors.bad_request(exc.message) from None
    except validation.Invalid as exc:
        name = obj.get("metadata", {}).get("name") or obj.get("metadata", {}).get("generateName") or ""
        raise errors.invalid(res, name, exc.message, exc.causes) from None


FIELD_VALIDATION = ("Ignore", "Warn", "Strict")
_INDEXED = re.compile(r"^(.*?)((?:\[\d+\])+)$")


def _prune(obj: dict, path: str) -> None:
    """Delete the field at a path like `spec.containers[0].foo` (names may be empty)."""
    tokens: list[str | int] = []
    for part in path.split("."):
        match = _INDEXED.match(part)
        if match:
            tokens.append(match.group(1))
            tokens.extend(int(i) for i in re.findall(r"\d+", match.group(2)))
        else:
            tokens.append(part)
    current: object = obj
    for token in tokens[:-1]:
        try:
            current = current[token]  # type: ignore[index]
        except (KeyError, IndexError, TypeError):
            return
    if isinstance(current, dict):
        current.pop(tokens[-1], None)


def check_fields(plural: str, obj: dict, mode: str, warnings: list[str] | None) -> None:
    """fieldValidation: drop fields the schema does not know; Strict rejects them (400), Warn reports them."""
    unknown = schemas.unknown_fields(plural, obj)
    if not unknown:
        return
    messages = [f'unknown field "{path}"' for path in unknown]
    if mode == "Strict":
        raise errors.bad_request("strict decoding error: " + ", ".join(messages))
    for path in reversed(unknown):
        _prune(obj, path)
    if mode == "Warn" and warnings is not None:
        warnings.extend(messages)


def _spec_of(obj: dict) -> dict:
    """Everything but metadata and status: what a generation bump watches."""
    return {k: v for k, v in obj.items() if k not in ("metadata", "status")}


class Registry:
    """Create, read, update, patch and delete objects with Kubernetes semantics."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.on_delete: Callable[[], None] | None = None

    # ----- bootstrap -------------------------------------------------------------------------
    async def bootstrap(self) -> None:
        """Create the namespaces (and their default ServiceAccounts) every cluster has."""
        for name in BOOT_NAMESPACES:
            if self.store.get(NAMESPACES.key, "", name) is None:
                await self.create(NAMESPACES, "", {"metadata": {"name": name}})

    # ----- reads -----------------------------------------------------------------------------
    def get(self, res: Resource, namespace: str, name: str) -> Entry:
        """The stored entry, or 404."""
        entry = self.store.get(res.key, namespace if res.namespaced else "", name)
        if entry is None:
            raise errors.not_found(res, name)
        return entry

    def require_namespace(self, namespace: str, *, for_create: Resource | None = None,
                          name: str = "") -> None:
        """404 unless the namespace exists; 403 when creating in a terminating one."""
        entry = self.store.get(NAMESPACES.key, "", namespace)
        if entry is None:
            raise errors.not_found(NAMESPACES, namespace)
        if for_create is not None and entry.obj["metadata"].get("deletionTimestamp"):
            message = (f'{for_create.qualified_plural} "{name}" is forbidden: unable to create new content '
                       f"in namespace {namespace} because it is being terminated")
            raise ApiError(403, "Forbidden", message)

    # ----- create ----------------------------------------------------------------------------
    def _check_type(self, res: Resource, body: dict) -> None:
        """400 when the body names another kind or API version than the URL."""
        kind, api_version = body.get("kind"), body.get("apiVersion")
        if kind not in (None, "", res.kind):
            raise errors.bad_request(f"the kind in the data ({kind}) does not match the expected kind "
                                     f"({res.kind})")
        if api_version not in (None, "", res.api_version):
            raise errors.bad_request(f"the API version in the data ({api_version}) does not match the "
                                     f"expected API version ({res.api_version})")
        if not isinstance(body.get("metadata", {}), dict):
            raise errors.bad_request("metadata must be an object")
        body["kind"], body["apiVersion"] = res.kind, res.api_version
        body.setdefault("metadata", {})

    def _check_namespace(self, res: Resource, namespace: str, meta: dict) -> str:
        """The object's namespace, after checking it agrees with the URL."""
        if not res.namespaced:
            meta.pop("namespace", None)
            return ""
        given = meta.get("namespace") or namespace
        if given != namespace:
            raise errors.bad_request("the namespace of the provided object does not match the namespace sent "
                                     "on the request")
        meta["namespace"] = namespace
        return namespace

    async def create(self, res: Resource, namespace: str, body: dict, *, dry_run: bool = False,
                     field_validation: str = "Warn", warnings: list[str] | None = None) -> dict:
        """Create an object (POST); returns the stored object. Unknown-field warnings go to `warnings`."""
        self._check_type(res, body)
        check_fields(res.plural, body, field_validation, warnings)
        meta = body["metadata"]
        namespace = self._check_namespace(res, namespace, meta)
        name, generate = meta.get("name"), meta.get("generateName")
        if not isinstance(name, str | None) or not isinstance(generate, str | None):
            raise errors.invalid_field(res, "", "metadata.name", "Invalid value: must be a string")
        if not name and generate:
            for _ in range(20):
                name = generate + "".join(random.choices(NAME_CHARS, k=5))
                if self.store.get(res.key, namespace, name) is None:
                    break
            meta["name"] = name
        if not name:
            raise errors.invalid_field(res, "", "metadata.name",
                                       "Required value: name or generateName is required",
                                       reason="FieldValueRequired")
        if res.namespaced:
            self.require_namespace(namespace, for_create=res, name=name)
        for transient in ("resourceVersion", "deletionTimestamp", "deletionGracePeriodSeconds", "selfLink",
                          "managedFields"):
            meta.pop(transient, None)
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = now()
        if res.generation:
            meta["generation"] = 1
        else:
            meta.pop("generation", None)
        if res.plural in RESET_STATUS_ON_CREATE:
            body.pop("status", None)
        default_and_validate(res, body)
        if self.store.get(res.key, namespace, name) is not None:
            raise errors.already_exists(res, name)
        if res.plural == "services":
            self._allocate_service(body, None)
        if dry_run:
            meta["resourceVersion"] = ""
            return body
        entry, durable = self.store.put(res.key, body)
        if res is NAMESPACES:
            await self._ensure_service_account(name)
        await durable
        return entry.obj

    async def _ensure_service_account(self, namespace: str) -> None:
        """The ServiceAccount controller's job: every namespace has a `default` ServiceAccount."""
        if self.store.get(SERVICE_ACCOUNTS.key, namespace, "default") is None:
            await self.create(SERVICE_ACCOUNTS, namespace, {"metadata": {"name": "default"}})

    # ----- Service allocations -----------------------------------------------------------------
    def _allocated(self, *, skip_uid: str | None) -> tuple[set[str], set[int]]:
        """ClusterIPs and nodePorts in use by Services other than `skip_uid`."""
        ips, ports = set(), set()
        for entry in self.store.entries(lookup("", "v1", "services").key):
            if entry.obj["metadata"].get("uid") == skip_uid:
                continue
            spec = entry.obj.get("spec", {})
            ips.update(spec.get("clusterIPs") or [spec.get("clusterIP")])
            ports.update(p.get("nodePort") for p in spec.get("ports") or [] if p.get("nodePort"))
        return ips, ports

    def _allocate_service(self, svc: dict, old: dict | None) -> None:
        """Give a Service its clusterIP and nodePorts (kept from `old` when the update omits them)."""
        res = lookup("", "v1", "services")
        name = svc["metadata"]["name"]
        spec = svc.setdefault("spec", {})
        old_spec = (old or {}).get("spec", {})
        used_ips, used_ports = self._allocated(skip_uid=(old or {}).get("metadata", {}).get("uid"))
        svc_type = spec.get("type", "ClusterIP")
        if svc_type == "ExternalName":
            spec.pop("clusterIP", None)
            spec.pop("clusterIPs", None)
        else:
            ip = spec.get("clusterIP") or old_spec.get("clusterIP")
            if not ip:
                ip = allocate_cluster_ip(used_ips)
            elif ip != "None":
                try:
                    address = ipaddress.ip_address(ip)
                except ValueError:
                    raise errors.invalid_field(res, name, "spec.clusterIPs[0]",
                                               f'Invalid value: "{ip}": must be a valid IP address') from None
                if address not in SERVICE_CIDR:
                    raise errors.invalid_field(res, name, "spec.clusterIPs",
                                               f'Invalid value: ["{ip}"]: failed to allocate IP {ip}: the '
                                               f"provided IP ({ip}) is not in the valid range. The range of "
                                               f"valid IPs is {SERVICE_CIDR}")
                if ip in used_ips:
                    raise errors.invalid_field(res, name, "spec.clusterIPs",
                                               f'Invalid value: ["{ip}"]: failed to allocate IP {ip}: '
                                               "provided IP is already allocated")
            spec["clusterIP"] = ip
            spec["clusterIPs"] = [ip]
        needs_node_port = svc_type in ("NodePort", "LoadBalancer")
        old_ports = {(p.get("port"), p.get("protocol", "TCP")): p.get("nodePort")
                     for p in old_spec.get("ports") or []}
        for index, port in enumerate(spec.get("ports") or []):
            if not isinstance(port, dict):
                continue
            if not needs_node_port:
                port.pop("nodePort", None)
                continue
            node_port = port.get("nodePort") or old_ports.get((port.get("port"), port.get("protocol", "TCP")))
            if not node_port:
                free = [p for p in NODE_PORT_RANGE if p not in used_ports]
                if not free:
                    raise ApiError(500, "InternalError", "Internal error occurred: node port range is full")
                node_port = random.choice(free)
            elif not isinstance(node_port, int) or node_port not in NODE_PORT_RANGE:
                raise errors.invalid_field(res, name, f"spec.ports[{index}].nodePort",
                                           f"Invalid value: {node_port}: provided port is not in the valid "
                                           f"range. The range of valid ports is 30000-32767")
            elif node_port in used_ports:
                raise errors.invalid_field(res, name, f"spec.ports[{index}].nodePort",
                                           f"Invalid value: {node_port}: provided port is already allocated")
            used_ports.add(node_port)
            port["nodePort"] = node_port

    # ----- update ----------------------------------------------------------------------------
    def _merge_for_update(self, res: Resource, old: dict, new: dict, subresource: str | None) -> dict:
        """Carry over what an update may not change, per the status split."""
        meta, old_meta = new["metadata"], old["metadata"]
        for kept in ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds",
                     "generation"):
            if kept in old_meta:
                meta[kept] = old_meta[kept]
            else:
                meta.pop(kept, None)
        meta.pop("selfLink", None)
        if subresource == "status":
            merged = copy_object(old)
            if "status" in new:
                merged["status"] = new["status"]
            else:
                merged.pop("status", None)
            return merged
        if res.status:
            if "status" in old:
                new["status"] = old["status"]
            else:
                new.pop("status", None)
        return new

    async def update(self, res: Resource, namespace: str, name: str, body: dict, *,
                     subresource: str | None = None, dry_run: bool = False, field_validation: str = "Warn",
                     warnings: list[str] | None = None) -> dict:
        """Replace an object (PUT, or the result of a PATCH); returns the stored object."""
        old = self.get(res, namespace, name).obj
        self._check_type(res, body)
        check_fields(res.plural, body, field_validation, warnings)
        meta = body["metadata"]
        if meta.get("name", name) != name:
            raise errors.bad_request(f"the name of the object ({meta.get('name')}) does not match the name "
                                     f"on the URL ({name})")
        meta["name"] = name
        namespace = self._check_namespace(res, namespace, meta)
        given_rv = meta.get("resourceVersion")
        if given_rv and given_rv != old["metadata"]["resourceVersion"]:
            raise errors.conflict(res, name, errors.STALE)
        new = self._merge_for_update(res, old, body, subresource)
        new["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"]
        if res.plural == "services" and subresource is None:
            self._allocate_service(new, old)
        default_and_validate(res, new, old=old)
        if res.generation and subresource is None and _spec_of(new) != _spec_of(old):
            new["metadata"]["generation"] = int(old["metadata"].get("generation") or 1) + 1
        if new == old:
            return old
        if dry_run:
            return new
        if self._finished_deleting(new):
            return (await self._remove(res, namespace, name, dry_run=False))[0]
        entry, durable = self.store.put(res.key, new)
        await durable
        return entry.obj

    @staticmethod
    def _finished_deleting(obj: dict) -> bool:
        """An object being deleted whose last finalizer (and grace period) is gone."""
        meta = obj["metadata"]
        return bool(meta.get("deletionTimestamp")) and not meta.get("finalizers") and \
            not meta.get("deletionGracePeriodSeconds")

    async def patch(self, res: Resource, namespace: str, name: str, content_type: str, body: bytes, *,
                    subresource: str | None = None, dry_run: bool = False, field_validation: str = "Warn",
                    warnings: list[str] | None = None) -> dict:
        """Apply a merge, strategic-merge or JSON patch, then update like a PUT."""
        old = self.get(res, namespace, name).obj
        patched = self._apply_patch(res, content_type, old, body)
        patched_rv = patched.get("metadata", {}).get("resourceVersion")
        if patched_rv in (None, ""):
            patched.setdefault("metadata", {})["resourceVersion"] = old["metadata"]["resourceVersion"]
        return await self.update(res, namespace, name, patched, subresource=subresource, dry_run=dry_run,
                                 field_validation=field_validation, warnings=warnings)

    @staticmethod
    def _apply_patch(res: Resource, content_type: str, original: dict, body: bytes) -> dict:
        """Run the patch module, mapping its errors to Status errors."""
        try:
            result = patch.apply_patch(content_type, copy_object(original), body, plural=res.plural)
        except patch.PatchError as exc:
            if exc.code == 422:
                raise ApiError(422, "Invalid", exc.message) from None
            raise errors.bad_request(exc.message) from None
        if not isinstance(result, dict) or not isinstance(result.get("metadata", {}), dict):
            raise ApiError(422, "Invalid", "the patch produced an object that is not a valid object")
        return result

    # ----- scale -----------------------------------------------------------------------------
    def get_scale(self, res: Resource, namespace: str, name: str) -> dict:
        """The autoscaling/v1 Scale of a Deployment or ReplicaSet."""
        obj = self.get(res, namespace, name).obj
        meta = obj["metadata"]
        return {
            "kind": "Scale", "apiVersion": "autoscaling/v1",
            "metadata": {"name": name, "namespace": namespace, "uid": meta["uid"],
                         "resourceVersion": meta["resourceVersion"],
                         "creationTimestamp": meta["creationTimestamp"]},
            "spec": {"replicas": obj.get("spec", {}).get("replicas", 1)},
            "status": {"replicas": obj.get("status", {}).get("replicas", 0),
                       "selector": selector_from_match_labels(obj.get("spec", {}).get("selector"))},
        }

    async def update_scale(self, res: Resource, namespace: str, name: str, scale: dict, *,
                           dry_run: bool = False) -> dict:
        """PUT a Scale: set spec.replicas of the parent (optimistic concurrency on its RV)."""
        current = self.get_scale(res, namespace, name)
        if not isinstance(scale, dict) or not isinstance(scale.get("spec", {}), dict):
            raise errors.bad_request("the body is not a Scale object")
        replicas = scale.get("spec", {}).get("replicas", 0)
        scale_rv = (scale.get("metadata") or {}).get("resourceVersion")
        if scale_rv and scale_rv != current["metadata"]["resourceVersion"]:
            raise errors.conflict(res, name, errors.STALE)
        if isinstance(replicas, bool) or not isinstance(replicas, int) or not 0 <= replicas <= 2**31 - 1:
            detail = f"Invalid value: {replicas}: must be greater than or equal to 0"
            raise ApiError(422, "Invalid", f'Scale.autoscaling "{name}" is invalid: spec.replicas: {detail}',
                           details={"name": name, "group": "autoscaling", "kind": "Scale",
                                    "causes": [{"reason": "FieldValueInvalid", "message": detail,
                                                "field": "spec.replicas"}]})
        obj = copy_object(self.get(res, namespace, name).obj)
        obj.setdefault("spec", {})["replicas"] = replicas
        await self.update(res, namespace, name, obj, dry_run=dry_run)
        return self.get_scale(res, namespace, name)

    async def patch_scale(self, res: Resource, namespace: str, name: str, content_type: str, body: bytes, *,
                          dry_run: bool = False) -> dict:
        """PATCH a Scale (kubectl scale sends a merge patch)."""
        current = self.get_scale(res, namespace, name)
        try:
            patched = patch.apply_patch(content_type, copy_object(current), body, plural="scale")
        except patch.PatchError as exc:
            raise ApiError(exc.code, "Invalid" if exc.code == 422 else "BadRequest", exc.message) from None
        return await self.update_scale(res, namespace, name, patched, dry_run=dry_run)

    # ----- binding ---------------------------------------------------------------------------
    async def bind(self, namespace: str, name: str, binding: dict) -> dict:
        """pods/binding: assign a pending pod to a node (the scheduler's one write)."""
        target = binding.get("target") if isinstance(binding, dict) else None
        node = target.get("name") if isinstance(target, dict) else None
        if not isinstance(node, str) or not node:
            raise ApiError(422, "Invalid", f'Binding "{name}" is invalid: target.name: Required value',
                           details={"name": name, "kind": "Binding", "causes": [
                               {"reason": "FieldValueRequired", "message": "Required value",
                                "field": "target.name"}]})
        pod = copy_object(self.get(PODS, namespace, name).obj)
        if pod["metadata"].get("deletionTimestamp"):
            raise errors.conflict(PODS, name, "the pod is being deleted")
        current = pod.setdefault("spec", {}).get("nodeName")
        if current:
            raise errors.conflict(PODS, name, f"pod {name} is already assigned to node \"{current}\"")
        pod["spec"]["nodeName"] = node
        conditions = [c for c in pod.setdefault("status", {}).get("conditions") or []
                      if c.get("type") != "PodScheduled"]
        conditions.append({"type": "PodScheduled", "status": "True", "lastProbeTime": None,
                           "lastTransitionTime": now()})
        pod["status"]["conditions"] = conditions
        _, durable = self.store.put(PODS.key, pod)
        await durable
        return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}

    # ----- delete ----------------------------------------------------------------------------
    def _grace_period(self, pod: dict, options: dict) -> int:
        """How long a pod may take to terminate: 0 means delete now."""
        spec, status = pod.get("spec", {}), pod.get("status", {})
        node = spec.get("nodeName")
        if not node or self.store.get(NODES.key, "", node) is None:
            return 0
        if status.get("phase") in ("Succeeded", "Failed"):
            return 0
        grace = options.get("gracePeriodSeconds")
        if grace is None:
            grace = spec.get("terminationGracePeriodSeconds", 30)
        return max(int(grace), 0)

    async def delete(self, res: Resource, namespace: str, name: str, options: dict, *,
                     dry_run: bool = False) -> tuple[dict, bool]:
        """Delete with DeleteOptions. Returns (object, gone): gone is False while deletion is pending."""
        entry = self.get(res, namespace, name)
        obj = entry.obj
        meta = obj["metadata"]
        pre = options.get("preconditions") or {}
        if pre.get("uid") and pre["uid"] != meta.get("uid"):
            raise errors.conflict(res, name, f"Precondition failed: UID in precondition: {pre['uid']}, UID "
                                             f"in object meta: {meta.get('uid')}")
        if pre.get("resourceVersion") and pre["resourceVersion"] != meta.get("resourceVersion"):
            raise errors.conflict(res, name, f"Precondition failed: ResourceVersion in precondition: "
                                             f"{pre['resourceVersion']}, ResourceVersion in object meta: "
                                             f"{meta.get('resourceVersion')}")
        policy = options.get("propagationPolicy")
        if policy is None and options.get("orphanDependents") is not None:
            policy = "Orphan" if options["orphanDependents"] else "Background"
        if policy not in (None, "Background", "Foreground", "Orphan"):
            raise errors.invalid_field(res, name, "propagationPolicy",
                                       f'Unsupported value: "{policy}": supported values: "Foreground", '
                                       f'"Background", "Orphan", "nil"', reason="FieldValueNotSupported")
        new = copy_object(obj)
        new_meta = new["metadata"]
        finalizers = list(new_meta.get("finalizers") or [])
        if policy == "Foreground" and "foregroundDeletion" not in finalizers:
            finalizers.append("foregroundDeletion")
        if policy == "Orphan" and "orphan" not in finalizers:
            finalizers.append("orphan")
        grace = self._grace_period(obj, options) if res is PODS else 0
        if meta.get("deletionTimestamp"):
            shorter = res is PODS and grace < (meta.get("deletionGracePeriodSeconds") or 0)
            if not shorter and finalizers == list(meta.get("finalizers") or []):
                return obj, False
        elif res is not NAMESPACES and not finalizers and grace == 0:
            return await self._remove(res, namespace, name, dry_run=dry_run)
        if res is PODS and grace == 0 and not finalizers:
            return await self._remove(res, namespace, name, dry_run=dry_run)
        deadline = datetime.now(UTC) + timedelta(seconds=grace)
        new_meta["deletionTimestamp"] = deadline.strftime("%Y-%m-%dT%H:%M:%SZ")
        new_meta["deletionGracePeriodSeconds"] = grace
        if finalizers:
            new_meta["finalizers"] = finalizers
        if res is NAMESPACES:
            new.setdefault("status", {})["phase"] = "Terminating"
        if res.generation and not meta.get("deletionTimestamp"):
            new_meta["generation"] = int(meta.get("generation") or 1) + 1
        if dry_run:
            return new, False
        entry, durable = self.store.put(res.key, new)
        await durable
        self._deleted()
        return entry.obj, False

    async def _remove(self, res: Resource, namespace: str, name: str, *, dry_run: bool) -> tuple[dict, bool]:
        """Remove an object from the store now."""
        if dry_run:
            return self.get(res, namespace, name).obj, True
        removed = self.store.remove(res.key, namespace if res.namespaced else "", name)
        if removed is None:
            raise errors.not_found(res, name)
        await removed[1]
        self._deleted()
        return removed[0].obj, True

    def _deleted(self) -> None:
        """Tell the garbage collector that an object went away or started terminating."""
        if self.on_delete is not None:
            self.on_delete()

    async def remove_finalizer(self, res: Resource, namespace: str, name: str, finalizer: str) -> None:
        """Drop one finalizer (completing the deletion when it was the last)."""
        entry = self.store.get(res.key, namespace, name)
        if entry is None or finalizer not in (entry.obj["metadata"].get("finalizers") or []):
            return
        obj = copy_object(entry.obj)
        obj["metadata"]["finalizers"] = [f for f in obj["metadata"]["finalizers"] if f != finalizer]
        if not obj["metadata"]["finalizers"]:
            del obj["metadata"]["finalizers"]
        await self.update(res, namespace, name, obj, subresource=None)
