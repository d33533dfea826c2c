"""What a served kind is: its resource entry and its strategy, the sandbox's `strategy.go`.

kube-apiserver's generic store (`k8s.io/apiserver/pkg/registry/generic/registry/store.go`)
knows nothing about any kind: each kind brings a strategy object (`pkg/registry/<group>/<kind>/
strategy.go`) with its defaults, validation, table convertor and field-selector predicate.
This module is the same split: `Resource` is the discovery entry of a kind (group, version,
plural, short names, categories, scope, subresources, schema definition), `Strategy` the base
class every kind module under `kinds/` subclasses. `registry.py`, `tables.py`, `discovery.py`,
`openapi.py`, `selectors.py` and `server.py` only call these hooks, so a kind is one module.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar

from sandbox.apiserver.printing import col as column
from sandbox.apiserver.printing import created_at_row, name_col
from sandbox.apiserver.printing import doc as field_doc
from sandbox.apiserver.schemas import decode_error, normalize_nulls
from sandbox.apiserver.validation.defaulting import dict_at
from sandbox.apiserver.validation.fielderrors import Errors, Invalid, Undecodable
from sandbox.apiserver.validation.meta import validate_object_meta
from sandbox.apiserver.validation.names import NAME_CHECKS

if TYPE_CHECKING:
    from aiohttp import web

    from sandbox.apiserver.registry import Registry
    from sandbox.apiserver.server import ApiServer, Target
    from sandbox.apiserver.store import Store

ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")
SUB_VERBS = ("get", "patch", "update")
PROXY_VERBS = ("create", "delete", "get", "patch", "update")  # pods/proxy, services/proxy
METHOD_VERBS = {"GET": "get", "HEAD": "get", "POST": "create", "PUT": "update", "PATCH": "patch",
                "DELETE": "delete"}

# A kind-specific subresource answered by its own code: (server, request, target) -> response.
Handler = Callable[["ApiServer", "web.Request", "Target"], Awaitable["web.StreamResponse"]]


@dataclass(frozen=True)
class Subresource:
    """One subresource of a kind, as discovery and `/openapi/v3` describe it.

    `kind` is the (group, version, kind) of its bodies, empty for the parent's kind; `openapi`
    says how the document publishes it ("object": get/put/patch of `definition`, "log": text,
    "create": one POST of `definition`, "": not published); `handler` serves it, unless it is
    `status` or `scale`, which the registry's generic code serves for every kind that declares them."""

    name: str
    verbs: tuple[str, ...] = SUB_VERBS
    kind: tuple[str, str, str] = ("", "", "")
    openapi: str = "object"
    definition: str = ""
    handler: Handler | None = None

    def response_kind(self, parent: str) -> dict[str, str]:
        """The `responseKind` discovery reports (group and version empty for the parent's)."""
        group, version, kind = self.kind
        return {"group": group, "version": version, "kind": kind or parent}

    def allows(self, method: str) -> bool:
        """Whether an HTTP method maps to one of this subresource's verbs."""
        return METHOD_VERBS.get(method) in self.verbs


STATUS = Subresource("status")
SCALE = Subresource("scale", kind=("autoscaling", "v1", "Scale"),
                    definition="io.k8s.api.autoscaling.v1.Scale")


@dataclass(frozen=True)
class Version:
    """Another version a kind is served at beside the stored one (kube's `conversion.go`).

    Objects are stored once, at the kind's `Resource` version; a request at this version has
    its body converted with `to_stored` before defaulting and validation, and every object it
    reads (get, list, watch, responses) converted with `from_stored`. Both take and return whole
    objects (apiVersion included) and must not change their argument."""

    version: str
    definition: str
    to_stored: Callable[[dict], dict]
    from_stored: Callable[[dict], dict]


@dataclass(frozen=True)
class Resource:
    """One served resource (a plural name in one group/version) and what it supports.

    `storage` is empty for the version objects are stored at; a resource served at another
    version (`Strategy.versions`) names the stored version there."""

    group: str
    version: str
    kind: str
    plural: str
    definition: str
    namespaced: bool = True
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    verbs: tuple[str, ...] = ALL_VERBS
    subresources: tuple[Subresource, ...] = ()
    generation: bool = False
    field_selectors: tuple[str, ...] = ()
    storage: str = ""
    # The deprecation warning every answer about this resource carries (`Warning: 299`, which
    # kubectl prints), as kube-apiserver's `endpoints/deprecation` adds for deprecated APIs.
    deprecated: str = ""

    @property
    def singular(self) -> str:
        """The lower-case singular name, as discovery reports it."""
        return self.kind.lower()

    @property
    def api_version(self) -> str:
        """`v1` for the core group, otherwise `group/version`."""
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def key(self) -> str:
        """The store's key for this resource: `group/plural` (core group is empty)."""
        return f"{self.group}/{self.plural}"

    @property
    def qualified_kind(self) -> str:
        """`Deployment.apps` style name used in Invalid messages (plain kind for the core group)."""
        return f"{self.kind}.{self.group}" if self.group else self.kind

    @property
    def qualified_plural(self) -> str:
        """`deployments.apps` style name used in NotFound/AlreadyExists messages."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def status(self) -> bool:
        """Whether the kind has a status subresource (then the main resource ignores status)."""
        return self.subresource("status") is not None

    @property
    def scale(self) -> bool:
        """Whether the kind serves `/scale` (autoscaling/v1 Scale of spec.replicas)."""
        return self.subresource("scale") is not None

    def subresource(self, name: str) -> Subresource | None:
        """The subresource called ``name``, or None."""
        return next((s for s in self.subresources if s.name == name), None)


def now() -> str:
    """The current time as Kubernetes writes timestamps (RFC 3339, seconds, UTC)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def field_value(obj: dict, path: str) -> str:
    """The string value of a dotted field path in an object, as field selectors see it."""
    current: object = obj
    for part in path.split("."):
        if not isinstance(current, dict):
            return ""
        current = current.get(part)
    if current is None:
        return ""
    if isinstance(current, bool):
        return "true" if current else "false"
    return str(current)


class Strategy:
    """How one kind behaves; every hook has the generic behaviour, a kind overrides what differs.

    Class attributes: `resource` (the discovery entry); `name_rule` (the format of
    metadata.name: "subdomain", "label", "dns1035", or "path" for RBAC names);
    `reset_status_on_create` (a create ignores the status it is sent); `return_deleted_object`
    (DELETE answers with the object instead of a Status); `graceful_deletion` (deletion waits
    `grace_period` seconds for a confirmation); `deletion_always_pending` (deletion always
    goes through a terminating phase, like a namespace's)."""

    resource: ClassVar[Resource]
    # Other versions the kind is also served at, converted from and to `resource`'s version.
    versions: ClassVar[tuple[Version, ...]] = ()
    # A kind computed per request instead of stored (metrics.k8s.io): an async method
    # ``serve(server, request, target)`` that answers its reads; None for stored kinds.
    serve: ClassVar[Callable[..., Awaitable[web.StreamResponse]] | None] = None
    name_rule: ClassVar[str] = "subdomain"
    reset_status_on_create: ClassVar[bool] = False
    return_deleted_object: ClassVar[bool] = False
    graceful_deletion: ClassVar[bool] = False
    deletion_always_pending: ClassVar[bool] = False

    # ----- defaulting and validation (pure) -------------------------------------------------
    def default_object(self, obj: Any) -> Any:
        """Decode ``obj`` as the API server would (nulls) and apply its defaults, in place."""
        if not isinstance(obj, dict):
            return obj
        normalize_nulls(self.resource.plural, obj)
        dict_at(obj, "metadata")
        self.default(obj)
        return obj

    def default(self, obj: dict) -> None:
        """Fill in the API defaults of a decoded object, in place (`SetDefaults_<Kind>`)."""

    def validate(self, errs: Errors, obj: dict) -> None:
        """Record the field errors of an object (create and update)."""

    def validate_update(self, errs: Errors, obj: dict, old: dict) -> None:
        """Record the field errors of changing ``old`` into ``obj`` (immutable fields)."""

    def validate_object(self, obj: Any, *, old: dict | None = None) -> None:
        """Validate ``obj`` (already defaulted) for a create, or an update of ``old``: raise
        Undecodable (400) when it does not even decode, Invalid (422) with causes when it
        breaks a rule. Metadata rules are common to every kind; the rest are `validate*`."""
        res = self.resource
        kind, group = res.kind, res.group
        if not isinstance(obj, dict):
            message = f"{kind} cannot be handled as a {kind}: the body is not a JSON object"
            raise Undecodable(kind=kind, group=group, name="", message=message)
        meta = obj.get("metadata")
        name = str(meta.get("name") or meta.get("generateName") or "") if isinstance(meta, dict) else ""
        undecodable = decode_error(res.plural, obj)
        if undecodable is not None:
            raise Undecodable(kind=kind, group=group, name=name, message=undecodable)
        errs = Errors()
        if not isinstance(meta, dict):
            errs.required("metadata")
            meta = {}
        validate_object_meta(errs, meta, old_meta=(old or {}).get("metadata") if old else None,
                             name_check=NAME_CHECKS[self.name_rule])
        self.validate(errs, obj)
        if old is not None:
            self.validate_update(errs, obj, old)
        if errs:
            raise Invalid(kind=kind, group=group, name=name, errors=list(errs))

    def warnings(self, obj: dict, old: dict | None) -> list[str]:
        """`WarningsOnCreate` (``old`` None) / `WarningsOnUpdate`: the response's Warning headers."""
        return []

    # ----- tables ---------------------------------------------------------------------------
    def columns(self) -> list[dict[str, Any]]:
        """The Table column definitions (`kubectl get`); NAME and CREATED AT unless overridden."""
        return [name_col(), column("Created At", "date", field_doc(META, "creationTimestamp"))]

    def row(self, obj: dict, now: datetime) -> list[Any]:
        """One Table row's cells, one per column."""
        return created_at_row(obj, now)

    def row_conditions(self, obj: dict) -> list[dict[str, Any]] | None:
        """The row's `conditions` (printPod marks finished pods Completed), or None."""
        return None

    # ----- selectors ------------------------------------------------------------------------
    def field_value(self, obj: dict, path: str) -> str:
        """The value a field selector compares for ``path`` (one of `resource.field_selectors`)."""
        return field_value(obj, path)

    # ----- kinds that are not stored --------------------------------------------------------
    async def serve_create(self, api: ApiServer, request: web.Request,
                           target: Target) -> web.StreamResponse | None:
        """Answer a create of a kind that is computed, not stored (SelfSubjectReview, access
        reviews), or None to create and store the object as usual."""
        return None

    # ----- lifecycle hooks (the registry calls them) ------------------------------------------
    async def bootstrap(self, registry: Registry) -> None:
        """Create the objects of this kind every cluster starts with."""

    def allocate(self, registry: Registry, obj: dict, old: dict | None) -> None:
        """Allocate what the API server assigns (a Service's clusterIP), on create after
        validation, on update (``old`` set) before it; raise ApiError when it cannot."""

    async def after_create(self, registry: Registry, obj: dict) -> None:
        """What a controller does at once when an object of this kind appears."""

    def grace_period(self, store: Store, obj: dict, options: dict) -> int:
        """Seconds a deletion waits for confirmation (only with `graceful_deletion`)."""
        return 0

    def mark_terminating(self, obj: dict) -> None:
        """Change an object whose deletion begins (a namespace's phase), in place."""


META = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
