"""REST semantics of every resource, on top of the plain versioned store.

This is the sandbox's counterpart of kube-apiserver's generic store
(`k8s.io/apiserver/pkg/registry/generic/registry/store.go`): what create, update, patch and
delete mean for an object of any kind. It knows no kind: each kind's strategy
(`kinds/<kind>.py`, see `strategy.Strategy`) brings its defaults, validation, allocations
(a Service's clusterIP), start-up objects and deletion behaviour; patching is `patch.py`.

- create: kind/apiVersion/namespace checks, generateName, uid, creationTimestamp,
  generation, the strategy's allocations, 409 AlreadyExists;
- update/patch: optimistic concurrency (409 Conflict), the status subresource split (the main
  resource ignores status, `/status` ignores everything else), generation bumped on spec
  changes, no-op updates that write nothing, the `/scale` subresource;
- delete: DeleteOptions preconditions, propagationPolicy (Foreground/Orphan become the
  `foregroundDeletion`/`orphan` finalizers the garbage collector resolves), finalizers, and
  graceful deletion for kinds whose strategy asks for it (pods: deletionTimestamp +
  deletionGracePeriodSeconds until the kubelet confirms with gracePeriodSeconds=0).

Every method raises `ApiError` for client mistakes; nothing is changed when it does.
"""

from __future__ import annotations

import random
import re
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from . import errors, managedfields, patch, schemas
from .auth import TokenIssuer
from .errors import ApiError
from .kinds import namespace as namespaces
from .resources import RESOURCES, Resource, from_stored, stored, strategy_for, to_stored
from .selectors import selector_from_match_labels
from .store import Entry, Store, copy_object
from .strategy import now
from .validation import Invalid, Undecodable

NAME_CHARS = "bcdfghjklmnpqrstvwxz2456789"
NAMESPACES = namespaces.RESOURCE


def default_and_validate(res: Resource, obj: dict, *, old: dict | None = None) -> None:
    """Apply API defaults then validate: an object that does not decode is 400 BadRequest (as a
    real server's decoder answers), any other validation failure 422 Invalid."""
    strategy = strategy_for(res)
    strategy.default_object(obj)
    try:
        strategy.validate_object(obj, old=old)
    except Undecodable as exc:
        raise errors.bad_request(exc.message) from None
    except Invalid as exc:
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


def check_fields(plural: str, obj: dict, mode: str, warnings: list[str] | None, *,
                 definition: str | None = None) -> None:
    """fieldValidation: drop fields the schema (the plural's, or ``definition``) does not know;
    Strict rejects them (400), Warn reports them."""
    unknown = schemas.unknown_fields(plural, obj) if definition is None else \
        schemas.unknown_fields_of(definition, obj)
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
        self.issuer: TokenIssuer | None = None  # signs tokens for kinds that mint them (the server sets it)
        self.ca_pem = b""  # the cluster CA certificate, for the Secrets that carry it

    # ----- bootstrap -------------------------------------------------------------------------
    async def bootstrap(self) -> None:
        """Create the objects every cluster starts with (each kind's strategy knows its own)."""
        for res in RESOURCES:
            if not res.storage:
                await strategy_for(res).bootstrap(self)

    async def ensure(self, res: Resource, namespace: str, body: dict) -> None:
        """Create ``body`` unless an object of that name exists (start-up objects)."""
        if self.store.get(res.key, namespace, body["metadata"]["name"]) is None:
            await self.create(res, namespace, copy_object(body))

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
            raise errors.forbidden(for_create, name, f"unable to create new content in namespace {namespace} "
                                                     "because it is being terminated")

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

    def _converted(self, res: Resource, body: dict, field_validation: str,
                   warnings: list[str] | None) -> dict:
        """A body sent at a version other than the stored one, checked against that version's
        schema (kind, apiVersion, types, unknown fields) and converted to the stored version."""
        self._check_type(res, body)
        undecodable = schemas.decode_error_of(res.definition, body)
        if undecodable is not None:
            raise errors.bad_request(undecodable)
        check_fields(res.plural, body, field_validation, warnings, definition=res.definition)
        return to_stored(res, body)

    async def create(self, res: Resource, namespace: str, body: dict, *, dry_run: bool = False,
                     field_validation: str = "Warn", warnings: list[str] | None = None,
                     applied: bool = False) -> dict:
        """Create an object (POST); returns the stored object (at ``res``'s version). Unknown-field
        warnings go to `warnings`. The creating manager owns what it set (`applied`: server-side
        apply already set managedFields)."""
        if res.storage:
            body = self._converted(res, body, field_validation, warnings)
            return from_stored(res, await self.create(stored(res), namespace, body, dry_run=dry_run,
                                                      field_validation=field_validation, warnings=warnings,
                                                      applied=applied))
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
                          *(() if applied else ("managedFields",))):
            meta.pop(transient, None)
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = now()
        if res.generation:
            meta["generation"] = 1
        else:
            meta.pop("generation", None)
        strategy = strategy_for(res)
        if strategy.reset_status_on_create:
            body.pop("status", None)
        default_and_validate(res, body)
        if not applied:
            self._record(res, None, body, "")
        if warnings is not None:
            warnings.extend(strategy.warnings(body, None))
        if self.store.get(res.key, namespace, name) is not None:
            raise errors.already_exists(res, name)
        strategy.allocate(self, body, None)
        if dry_run:
            meta["resourceVersion"] = ""
            return body
        entry, durable = self.store.put(res.key, body)
        await strategy.after_create(self, entry.obj)
        await durable
        return entry.obj

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

    @staticmethod
    def _record(res: Resource, old: dict | None, new: dict, subresource: str) -> None:
        """managedFields of a create or update by the request's field manager."""
        managedfields.record_update(old, new, plural=res.plural, api_version=res.api_version,
                                    manager=managedfields.current_manager.get(), subresource=subresource,
                                    has_status=res.status)

    async def update(self, res: Resource, namespace: str, name: str, body: dict, *,
                     subresource: str | None = None, dry_run: bool = False, field_validation: str = "Warn",
                     warnings: list[str] | None = None, applied: bool = False,
                     managed_subresource: str | None = None) -> dict:
        """Replace an object (PUT, or the result of a PATCH); returns the stored object (at
        ``res``'s version). Field ownership is recorded for the request's manager (unless
        `applied`: server-side apply computed it), under ``managed_subresource`` when it is not
        ``subresource`` (`scale`)."""
        if res.storage:
            body = self._converted(res, body, field_validation, warnings)
            updated = await self.update(stored(res), namespace, name, body, subresource=subresource,
                                        dry_run=dry_run, field_validation=field_validation, warnings=warnings,
                                        applied=applied, managed_subresource=managed_subresource)
            return from_stored(res, updated)
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
        if subresource is None:
            strategy_for(res).allocate(self, new, old)
        default_and_validate(res, new, old=old)
        if warnings is not None and subresource is None:
            warnings.extend(strategy_for(res).warnings(new, old))
        if res.generation and subresource is None and _spec_of(new) != _spec_of(old):
            new["metadata"]["generation"] = int(old["metadata"].get("generation") or 1) + 1
        if not applied:
            self._record(res, old, new, managed_subresource or subresource or "")
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
        """Apply a merge, strategic-merge or JSON patch (to the object at ``res``'s version, as
        kube-apiserver patches the requested version), then update like a PUT."""
        old = from_stored(res, self.get(res, namespace, name).obj)
        patched = self._apply_patch(res, content_type, old, body)
        patched_rv = patched.get("metadata", {}).get("resourceVersion")
        if patched_rv in (None, ""):
            patched.setdefault("metadata", {})["resourceVersion"] = old["metadata"]["resourceVersion"]
        return await self.update(res, namespace, name, patched, subresource=subresource, dry_run=dry_run,
                                 field_validation=field_validation, warnings=warnings)

    async def apply(self, res: Resource, namespace: str, name: str, config: dict, *, manager: str,
                    force: bool, subresource: str | None = None, dry_run: bool = False,
                    field_validation: str = "Strict", warnings: list[str] | None = None) -> tuple[dict, bool]:
        """Server-side apply (`managedfields.apply`): create the object from ``config`` or merge it
        into the live one. Returns (object, created)."""
        meta = config.get("metadata")
        if not isinstance(meta, dict) or meta.get("name") != name:
            given = meta.get("name") if isinstance(meta, dict) else None
            raise errors.bad_request(f"the name of the object ({given}) does not match the name on the URL "
                                     f"({name})")
        if meta.get("managedFields"):
            raise errors.bad_request("metadata.managedFields must be nil")
        self._check_type(res, config)
        check_fields(res.plural, config, field_validation, warnings,
                     definition=res.definition if res.storage else None)
        entry = self.store.get(res.key, namespace if res.namespaced else "", name)
        options = {"plural": res.plural, "api_version": res.api_version, "manager": manager,
                   "subresource": subresource or "", "has_status": res.status, "force": force}
        if entry is None:
            if subresource is not None:
                raise errors.not_found(res, name)
            obj = managedfields.apply(None, config, **options)  # type: ignore[arg-type]
            return await self.create(res, namespace, obj, dry_run=dry_run, field_validation=field_validation,
                                     warnings=warnings, applied=True), True
        # Applied at the requested version, as kube-apiserver merges into the converted live object.
        live = from_stored(res, entry.obj) if res.storage else copy_object(entry.obj)
        merged = managedfields.apply(live, config, **options)  # type: ignore[arg-type]
        merged["metadata"]["resourceVersion"] = meta.get("resourceVersion") or \
            entry.obj["metadata"]["resourceVersion"]
        return await self.update(res, namespace, name, merged, subresource=subresource, dry_run=dry_run,
                                 field_validation=field_validation, warnings=warnings, applied=True), False

    @staticmethod
    def _apply_patch(res: Resource, content_type: str, original: dict, body: bytes) -> dict:
        """Run the patch module, mapping its errors to Status errors."""
        try:
            result = patch.apply_patch(content_type, copy_object(original), body, plural=res.plural)
        except patch.PatchError as exc:
            if exc.code == 422:
                raise errors.unprocessable(exc.message) from None
            raise errors.bad_request(exc.message) from None
        if not isinstance(result, dict) or not isinstance(result.get("metadata", {}), dict):
            raise errors.unprocessable("the patch produced an object that is not a valid object")
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
        await self.update(res, namespace, name, obj, dry_run=dry_run, managed_subresource="scale")
        return self.get_scale(res, namespace, name)

    async def patch_scale(self, res: Resource, namespace: str, name: str, content_type: str, body: bytes, *,
                          dry_run: bool = False) -> dict:
        """PATCH a Scale (kubectl scale sends a merge patch)."""
        current = self.get_scale(res, namespace, name)
        try:
            patched = patch.apply_patch(content_type, copy_object(current), body, plural="scale")
        except patch.PatchError as exc:
            if exc.code == 422:
                raise errors.unprocessable(exc.message) from None
            raise ApiError(exc.code, "BadRequest", exc.message) from None
        return await self.update_scale(res, namespace, name, patched, dry_run=dry_run)

    # ----- delete ----------------------------------------------------------------------------
    async def delete(self, res: Resource, namespace: str, name: str, options: dict, *,
                     dry_run: bool = False) -> tuple[dict, bool]:
        """Delete with DeleteOptions. Returns (object, gone): gone is False while deletion is pending."""
        if res.storage:
            obj, gone = await self.delete(stored(res), namespace, name, options, dry_run=dry_run)
            return from_stored(res, obj), gone
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
        strategy = strategy_for(res)
        graceful = strategy.graceful_deletion
        grace = strategy.grace_period(self.store, obj, options) if graceful else 0
        if meta.get("deletionTimestamp"):
            shorter = graceful and grace < (meta.get("deletionGracePeriodSeconds") or 0)
            if not shorter and finalizers == list(meta.get("finalizers") or []):
                return obj, False
        elif not strategy.deletion_always_pending and not finalizers and grace == 0:
            return await self._remove(res, namespace, name, dry_run=dry_run)
        if graceful and grace == 0 and not finalizers:
            return await self._remove(res, namespace, name, dry_run=dry_run)
        deadline = datetime.now(UTC) + timedelta(seconds=grace)
        new_meta["deletionTimestamp"] = deadline.strftime("%Y-%m-%dT%H:%M:%SZ")
        new_meta["deletionGracePeriodSeconds"] = grace
        if finalizers:
            new_meta["finalizers"] = finalizers
        strategy.mark_terminating(new)
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
