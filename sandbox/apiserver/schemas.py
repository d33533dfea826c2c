"""The official Kubernetes 1.37 type schemas, loaded once, for the modules that need type knowledge.

Strategic merge patch needs each list's merge key and patch strategy, and `/openapi/v3` needs
the component schemas; both come from the same source of truth Kubernetes generates from its Go
types. The `kubernetes-validate` package ships them (as JSON Schema `$defs` with the
`x-kubernetes-*` extensions intact), so the sandbox reads them from there instead of keeping a
hand-written copy that could drift.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

SCHEMA_VERSION = "v1.37.0-local"

# The root definition of every resource the sandbox serves, by plural.
ROOT_DEFINITIONS: dict[str, str] = {
    "pods": "io.k8s.api.core.v1.Pod",
    "services": "io.k8s.api.core.v1.Service",
    "endpoints": "io.k8s.api.core.v1.Endpoints",
    "events": "io.k8s.api.core.v1.Event",
    "nodes": "io.k8s.api.core.v1.Node",
    "namespaces": "io.k8s.api.core.v1.Namespace",
    "configmaps": "io.k8s.api.core.v1.ConfigMap",
    "serviceaccounts": "io.k8s.api.core.v1.ServiceAccount",
    "deployments": "io.k8s.api.apps.v1.Deployment",
    "replicasets": "io.k8s.api.apps.v1.ReplicaSet",
    "endpointslices": "io.k8s.api.discovery.v1.EndpointSlice",
    "roles": "io.k8s.api.rbac.v1.Role",
    "rolebindings": "io.k8s.api.rbac.v1.RoleBinding",
    "scale": "io.k8s.api.autoscaling.v1.Scale",
}


@cache
def definitions() -> dict[str, dict[str, Any]]:
    """Every definition by its OpenAPI name (e.g. `io.k8s.api.core.v1.Pod`)."""
    base = resources.files("kubernetes_validate") / "kubernetes-json-schema" / SCHEMA_VERSION
    path = base / "_definitions.json"
    return json.loads(path.read_text())["$defs"]


def ref_name(node: dict[str, Any]) -> str | None:
    """The definition a `$ref` node points to, or None."""
    ref = node.get("$ref")
    if not isinstance(ref, str):
        return None
    return ref.rsplit("/", 1)[-1]


# id(node) -> (node, resolved): schema nodes live as long as the process, so each is resolved once.
_resolved: dict[int, tuple[dict[str, Any], dict[str, Any]]] = {}


def resolve(node: dict[str, Any] | None) -> dict[str, Any]:
    """Follow a schema node's `$ref` (keeping the node's own keys, such as a patch strategy).
    Only for nodes of the loaded schemas (`root_schema`, `definitions`): results are memoized."""
    if not node:
        return {}
    hit = _resolved.get(id(node))
    if hit is not None and hit[0] is node:
        return hit[1]
    name = ref_name(node)
    result = node if name is None else {**definitions().get(name, {}),
                                        **{k: v for k, v in node.items() if k != "$ref"}}
    _resolved[id(node)] = (node, result)
    return result


@cache
def root_schema(plural: str) -> dict[str, Any]:
    """The resolved schema of the objects of ``plural`` (empty for an unknown plural)."""
    root = ROOT_DEFINITIONS.get(plural)
    return resolve(definitions().get(root, {})) if root else {}


def unknown_fields(plural: str, obj: Any) -> list[str]:
    """Paths of the fields in ``obj`` its schema does not declare (`spec.containers[0].foo`), in
    document order: what `fieldValidation=Strict` rejects and `Warn` reports."""
    schema = root_schema(plural)
    if not schema:
        return []
    found: list[str] = []
    _walk_unknown(obj, schema, "", found)
    return found


def _walk_unknown(value: Any, schema: dict[str, Any], path: str, found: list[str]) -> None:
    if isinstance(value, dict):
        props = schema.get("properties")
        extra = schema.get("additionalProperties")
        for key, item in value.items():
            child = f"{path}.{key}" if path else str(key)
            if isinstance(props, dict) and key in props:
                _walk_unknown(item, resolve(props[key]), child, found)
            elif isinstance(extra, dict):
                _walk_unknown(item, resolve(extra), child, found)
            elif isinstance(props, dict):
                found.append(child)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        items = resolve(schema["items"])
        for i, item in enumerate(value):
            _walk_unknown(item, items, f"{path}[{i}]", found)


def strict_decoding_message(fields: list[str]) -> str:
    """The 400 message of a Strict request with unknown fields."""
    return "strict decoding error: " + ", ".join(f'unknown field "{f}"' for f in fields)
