"""The resource registry: every kind the sandbox API server serves, described once.

Routing, discovery documents, the store's key space and field selectors are all derived from
these entries, so serving another kind is one more `Resource(...)` line.
"""

from __future__ import annotations

from dataclasses import dataclass, field

ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")
SUB_VERBS = ("get", "patch", "update")


@dataclass(frozen=True)
class Resource:
    """One served resource (a plural name in one group/version) and what it supports."""

    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool = True
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    verbs: tuple[str, ...] = ALL_VERBS
    status: bool = False
    scale: bool = False
    log: bool = False
    binding: bool = False
    generation: bool = False
    field_selectors: tuple[str, ...] = ()
    list_kind: str = field(default="")

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

    def subresources(self) -> list[str]:
        """Names of the subresources this resource serves."""
        subs = []
        if self.status:
            subs.append("status")
        if self.scale:
            subs.append("scale")
        if self.log:
            subs.append("log")
        if self.binding:
            subs.append("binding")
        return subs


EVENT_FIELDS = ("involvedObject.kind", "involvedObject.name", "involvedObject.namespace",
                "involvedObject.uid", "involvedObject.fieldPath", "involvedObject.apiVersion",
                "involvedObject.resourceVersion", "reason", "reportingComponent", "source", "type")

RESOURCES: tuple[Resource, ...] = (
    Resource("", "v1", "Namespace", "namespaces", namespaced=False, short_names=("ns",), status=True,
             verbs=("create", "delete", "get", "list", "patch", "update", "watch"),
             field_selectors=("status.phase",)),
    Resource("", "v1", "Node", "nodes", namespaced=False, short_names=("no",), status=True,
             field_selectors=("spec.unschedulable",)),
    Resource("", "v1", "Pod", "pods", short_names=("po",), categories=("all",), status=True, log=True,
             binding=True, generation=True,
             field_selectors=("spec.nodeName", "spec.restartPolicy", "spec.schedulerName",
                              "spec.serviceAccountName", "spec.hostNetwork", "status.phase",
                              "status.podIP", "status.nominatedNodeName")),
    Resource("", "v1", "Service", "services", short_names=("svc",), categories=("all",), status=True,
             field_selectors=("spec.clusterIP", "spec.type")),
    Resource("", "v1", "Endpoints", "endpoints", short_names=("ep",)),
    Resource("", "v1", "Event", "events", short_names=("ev",), field_selectors=EVENT_FIELDS),
    Resource("", "v1", "ConfigMap", "configmaps", short_names=("cm",)),
    Resource("", "v1", "ServiceAccount", "serviceaccounts", short_names=("sa",)),
    Resource("apps", "v1", "Deployment", "deployments", short_names=("deploy",), categories=("all",),
             status=True, scale=True, generation=True),
    Resource("apps", "v1", "ReplicaSet", "replicasets", short_names=("rs",), categories=("all",),
             status=True, scale=True, generation=True, field_selectors=("status.replicas",)),
    Resource("discovery.k8s.io", "v1", "EndpointSlice", "endpointslices",
             field_selectors=("addressType",)),
    Resource("rbac.authorization.k8s.io", "v1", "Role", "roles"),
    Resource("rbac.authorization.k8s.io", "v1", "RoleBinding", "rolebindings"),
)

BY_PATH: dict[tuple[str, str, str], Resource] = {(r.group, r.version, r.plural): r for r in RESOURCES}
BY_KEY: dict[str, Resource] = {r.key: r for r in RESOURCES}
BY_KIND: dict[tuple[str, str], Resource] = {(r.api_version, r.kind): r for r in RESOURCES}


def group_versions() -> dict[str, list[str]]:
    """Map each served group ("" is core) to its versions, in discovery order."""
    out: dict[str, list[str]] = {}
    for res in RESOURCES:
        versions = out.setdefault(res.group, [])
        if res.version not in versions:
            versions.append(res.version)
    return out


def lookup(group: str, version: str, plural: str) -> Resource | None:
    """The resource served at `/apis/group/version/plural`, or None."""
    return BY_PATH.get((group, version, plural))


def by_kind(api_version: str, kind: str) -> Resource | None:
    """The resource whose objects have this apiVersion and kind, or None."""
    return BY_KIND.get((api_version, kind))
