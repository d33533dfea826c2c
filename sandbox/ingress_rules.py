"""Which backend serves a request: the Ingress routing rules, as a pure function of API objects.

The sandbox's ingress controller (`sandbox/ingress.py`) rebuilds a `RouteTable` from its
informer caches on every change and asks it, per request, `route(host, path)`. The semantics
are the Ingress API's (networking.k8s.io/v1), as ingress-nginx implements them:

- **Which Ingresses**: those whose ``spec.ingressClassName`` names an IngressClass with this
  controller's ``spec.controller``; an Ingress without a class is served when one of those
  classes is annotated ``ingressclass.kubernetes.io/is-default-class: "true"`` (or names it in
  the legacy ``kubernetes.io/ingress.class`` annotation).
- **Host**: a rule's ``host`` matches the request's Host header (lower-cased, port removed)
  exactly, or as a wildcard ``*.example.com`` matching exactly one more leading label
  (``a.example.com``, not ``example.com`` nor ``a.b.example.com``). Exact hosts win over
  wildcards, wildcards over rules without a host (which match every host). The rules of all
  served Ingresses for one host are merged, as ingress-nginx merges them into one server.
- **Path** within the chosen host: ``Exact`` matches the path exactly (case-sensitive);
  ``Prefix`` matches element-wise on ``/``-separated segments with trailing slashes ignored
  (``/foo`` matches ``/foo``, ``/foo/`` and ``/foo/bar``, not ``/foobar``; ``/`` matches
  everything); ``ImplementationSpecific`` is ingress-nginx's plain nginx ``location``: a
  string prefix (``/foo`` matches ``/foobar``). The longest matching path wins; at equal
  length ``Exact`` beats the others. A duplicate host+path+type goes to the oldest Ingress.
- **Default backend**: no matching rule -> the ``spec.defaultBackend`` of the oldest served
  Ingress that has one; none -> the controller answers 404 itself.

A backend is a Service port (by number or name). Its endpoints come from the Service's
EndpointSlices (label ``kubernetes.io/service-name``), the slice port whose name is the
Service port's name: the pods' own addresses, not the Service's ClusterIP, as ingress-nginx
balances. Endpoints whose ``ready`` condition is false (not ready, or terminating) are left
out, so they get no new requests and their idle pooled connections are closed (drained).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

Obj = dict[str, Any]

SERVICE_NAME_LABEL = "kubernetes.io/service-name"
DEFAULT_CLASS_ANNOTATION = "ingressclass.kubernetes.io/is-default-class"
LEGACY_CLASS_ANNOTATION = "kubernetes.io/ingress.class"
EXACT, PREFIX, IMPLEMENTATION_SPECIFIC = "Exact", "Prefix", "ImplementationSpecific"


@dataclass(frozen=True)
class Backend:
    """A Service port in a namespace: where an Ingress path sends its requests."""

    namespace: str
    service: str
    port: int | str

    @property
    def key(self) -> str:
        """``namespace/service:port`` — how logs and the endpoint table name it."""
        return f"{self.namespace}/{self.service}:{self.port}"


@dataclass(frozen=True)
class Route:
    """One path of one Ingress rule."""

    path: str
    path_type: str
    backend: Backend
    ingress: str
    order: tuple[str, str]

    def matches(self, path: str) -> bool:
        """Whether a request path matches this route's path under its pathType."""
        if self.path_type == EXACT:
            return path == self.path
        if self.path_type == PREFIX:
            prefix = self.path.rstrip("/")
            return not prefix or path == prefix or path.startswith(prefix + "/")
        return path.startswith(self.path)

    @property
    def rank(self) -> tuple[int, int]:
        """Sort key: longer paths first, Exact before the others at equal length."""
        length = len(self.path.rstrip("/")) if self.path_type == PREFIX else len(self.path)
        return (-length, 0 if self.path_type == EXACT else 1)


@dataclass(frozen=True)
class Target:
    """What `RouteTable.route` found: the backend and the Ingress that sent the request there."""

    backend: Backend
    ingress: str
    path: str


@dataclass
class RouteTable:
    """Routes by host, plus the default backend; built by `build_routes`."""

    exact: dict[str, list[Route]] = field(default_factory=dict)
    wildcard: dict[str, list[Route]] = field(default_factory=dict)
    any_host: list[Route] = field(default_factory=list)
    default: Target | None = None
    ingresses: list[str] = field(default_factory=list)

    def route(self, host: str, path: str) -> Target | None:
        """The backend of a request for ``host`` (Host header) and ``path`` (no query)."""
        host = normalize_host(host)
        routes = self.exact.get(host)
        if routes is None:
            _, dot, parent = host.partition(".")
            routes = self.wildcard.get(parent) if dot else None
        if routes is None:
            routes = self.any_host
        for route in routes:
            if route.matches(path):
                return Target(route.backend, route.ingress, route.path)
        return self.default

    def backends(self) -> set[Backend]:
        """Every backend some route or the default points at."""
        found = {r.backend for routes in (*self.exact.values(), *self.wildcard.values(), self.any_host)
                 for r in routes}
        if self.default is not None:
            found.add(self.default.backend)
        return found


def normalize_host(host: str) -> str:
    """A Host header as rules compare it: lower case, without port or trailing dot."""
    host = host.strip().lower()
    if host.startswith("["):
        return host.partition("]")[0] + "]"
    if ":" in host:
        host = host.rpartition(":")[0]
    return host.rstrip(".")


def is_default_class(ingress_class: Obj) -> bool:
    """Whether an IngressClass is annotated as the cluster's default."""
    annotations = (ingress_class.get("metadata") or {}).get("annotations") or {}
    return annotations.get(DEFAULT_CLASS_ANNOTATION) == "true"


def served_classes(ingress_classes: list[Obj], controller: str) -> tuple[set[str], bool]:
    """Names of the IngressClasses that belong to ``controller``, and whether one is default."""
    ours = [c for c in ingress_classes if (c.get("spec") or {}).get("controller") == controller]
    return {c["metadata"]["name"] for c in ours}, any(is_default_class(c) for c in ours)


def is_served(ingress: Obj, classes: set[str], default: bool) -> bool:
    """Whether this controller serves ``ingress`` (see the module docstring)."""
    class_name = (ingress.get("spec") or {}).get("ingressClassName")
    if class_name:
        return class_name in classes
    legacy = ((ingress.get("metadata") or {}).get("annotations") or {}).get(LEGACY_CLASS_ANNOTATION)
    if legacy:
        return legacy in classes
    return default


def _backend(namespace: str, spec: Obj | None) -> Backend | None:
    service = (spec or {}).get("service") or {}
    port = service.get("port") or {}
    number, name = port.get("number"), port.get("name")
    if not service.get("name") or (number is None and not name):
        return None
    return Backend(namespace, service["name"], int(number) if number is not None else str(name))


def _order(ingress: Obj) -> tuple[str, str]:
    meta = ingress.get("metadata") or {}
    return (meta.get("creationTimestamp") or "", f"{meta.get('namespace', '')}/{meta.get('name', '')}")


def build_routes(ingresses: list[Obj], ingress_classes: list[Obj], *, controller: str) -> RouteTable:
    """The route table of every Ingress this controller serves."""
    classes, default = served_classes(ingress_classes, controller)
    table = RouteTable()
    seen: dict[tuple[str, str, str], Route] = {}
    served = sorted((i for i in ingresses if is_served(i, classes, default)), key=_order)
    for ingress in served:
        meta = ingress.get("metadata") or {}
        namespace = meta.get("namespace") or "default"
        key = f"{namespace}/{meta.get('name', '')}"
        table.ingresses.append(key)
        spec = ingress.get("spec") or {}
        default_backend = _backend(namespace, spec.get("defaultBackend"))
        if default_backend is not None and table.default is None:
            table.default = Target(default_backend, key, "")
        for rule in spec.get("rules") or []:
            host = normalize_host(rule.get("host") or "")
            for p in (rule.get("http") or {}).get("paths") or []:
                backend = _backend(namespace, p.get("backend"))
                if backend is None:
                    continue
                path_type = p.get("pathType") or IMPLEMENTATION_SPECIFIC
                path = p.get("path") or "/"
                ident = (host, path, path_type)
                if ident in seen:
                    continue
                route = seen[ident] = Route(path, path_type, backend, key, _order(ingress))
                if not host:
                    table.any_host.append(route)
                elif host.startswith("*."):
                    table.wildcard.setdefault(host[2:], []).append(route)
                else:
                    table.exact.setdefault(host, []).append(route)
    for routes in (*table.exact.values(), *table.wildcard.values(), table.any_host):
        routes.sort(key=lambda r: (r.rank, r.order))
    return table


def backend_endpoints(
    backend: Backend, services: dict[str, Obj], slices: list[Obj]
) -> list[tuple[str, int, str]]:
    """The ready endpoints ``(ip, port, pod)`` of a backend, from its Service's EndpointSlices.

    ``services`` maps ``namespace/name`` to Service objects; ``slices`` are that Service's
    EndpointSlices. A Service port given by number is found by ``port``, by name by ``name``;
    the slice port with the Service port's name gives the pods' port (the resolved targetPort)."""
    svc = services.get(f"{backend.namespace}/{backend.service}")
    if svc is None:
        return []
    port_name: str | None = None
    for sp in (svc.get("spec") or {}).get("ports") or []:
        if (isinstance(backend.port, int) and sp.get("port") == backend.port) or (
            isinstance(backend.port, str) and sp.get("name") == backend.port
        ):
            port_name = sp.get("name") or ""
            break
    if port_name is None:
        return []
    found: list[tuple[str, int, str]] = []
    seen: set[tuple[str, int]] = set()
    for sl in slices:
        ports = sl.get("ports") or []
        port = next((p.get("port") for p in ports if (p.get("name") or "") == port_name), None)
        if port is None:
            continue
        for ep in sl.get("endpoints") or []:
            if (ep.get("conditions") or {}).get("ready") is False:
                continue
            pod = (ep.get("targetRef") or {}).get("name", "")
            for ip in ep.get("addresses") or []:
                if (ip, int(port)) not in seen:
                    seen.add((ip, int(port)))
                    found.append((ip, int(port), pod))
    return sorted(found)
