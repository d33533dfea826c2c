"""The `/openapi/v3` documents: what plain `kubectl apply` and `kubectl explain` read.

Before it sends anything, `kubectl apply` (validation on by default) fetches `/openapi/v3`, then
the document of the object's group-version, and looks for a PATCH operation tagged with the
object's `x-kubernetes-group-version-kind` that takes a `fieldValidation` query parameter; with
it, kubectl leaves validation to the server (`fieldValidation=Strict`), without it kubectl
refuses to apply. `kubectl explain` walks the same document's component schemas.

The documents are generated once from the resource registry (paths and operations, shaped like
kube-apiserver's) and the official 1.37 schemas (`schemas.py`), converted from JSON Schema to
OpenAPI 3.0 the way Kubernetes publishes them: `$ref`s under `#/components/schemas/`, a
referenced field with its own description wrapped in `allOf`, int-or-string as
`format: int-or-string`. Each response is computed once and cached with its hash.
"""

from __future__ import annotations

import hashlib
import json
from functools import cache
from typing import TYPE_CHECKING, Any

from sandbox.apiserver.resources import RESOURCES, Resource
from sandbox.apiserver.schemas import definitions, ref_name

if TYPE_CHECKING:
    from sandbox.apiserver.strategy import Subresource

REF_PREFIX = "#/components/schemas/"
V2_REF_PREFIX = "#/definitions/"
META = "io.k8s.apimachinery.pkg.apis.meta.v1."
PATCH_TYPES = ("application/apply-patch+yaml", "application/json-patch+json", "application/merge-patch+json",
               "application/strategic-merge-patch+json")
RESPONSE_TYPES = ("application/json", "application/yaml", "application/vnd.kubernetes.protobuf")

QUERY_PARAMETERS: dict[str, tuple[str, str]] = {
    "pretty": (
        "string",
        "If 'true', then the output is pretty printed. Defaults to 'false' unless the user-agent "
        "indicates a browser or command-line HTTP tool (curl and wget).",
    ),
    "dryRun": (
        "string",
        "When present, indicates that modifications should not be persisted. An invalid or unrecognized "
        "dryRun directive will result in an error response and no further processing of the request. "
        "Valid values are: - All: all dry run stages will be processed",
    ),
    "fieldManager": (
        "string",
        "fieldManager is a name associated with the actor or entity that is making these changes. The "
        "value must be less than or 128 characters long, and only contain printable characters, as "
        "defined by https://golang.org/pkg/unicode/#IsPrint.",
    ),
    "fieldValidation": (
        "string",
        "fieldValidation instructs the server on how to handle objects in the request (POST/PUT/PATCH) "
        "containing unknown or duplicate fields. Valid values are: - Ignore: This will ignore any unknown"
        " fields that are silently dropped from the object, and will ignore all but the last duplicate "
        "field that the decoder encounters. - Warn: This will send a warning via the standard warning "
        "response header for each unknown field that is dropped from the object, and for each duplicate "
        "field that is encountered. - Strict: This will fail the request with a BadRequest error if any "
        "unknown fields would be dropped from the object, or if any duplicate fields are present. The "
        "error returned from the server will contain all unknown and duplicate fields encountered.",
    ),
    "force": (
        "boolean",
        "Force is going to \"force\" Apply requests. It means user will re-acquire conflicting fields owned"
        " by other people. Force flag must be unset for non-apply patch requests.",
    ),
    "gracePeriodSeconds": (
        "integer",
        "The duration in seconds before the object should be deleted.",
    ),
    "propagationPolicy": (
        "string",
        "Whether and how garbage collection will be performed.",
    ),
    "allowWatchBookmarks": (
        "boolean",
        "allowWatchBookmarks requests watch events with type \"BOOKMARK\".",
    ),
    "continue": (
        "string",
        "The continue option should be set when retrieving more results from the server.",
    ),
    "fieldSelector": (
        "string",
        "A selector to restrict the list of returned objects by their fields. Defaults to everything.",
    ),
    "labelSelector": (
        "string",
        "A selector to restrict the list of returned objects by their labels. Defaults to everything.",
    ),
    "limit": (
        "integer",
        "limit is a maximum number of responses to return for a list call.",
    ),
    "resourceVersion": (
        "string",
        "resourceVersion sets a constraint on what resource versions a request may be served from.",
    ),
    "resourceVersionMatch": (
        "string",
        "resourceVersionMatch determines how resourceVersion is applied to list calls.",
    ),
    "sendInitialEvents": (
        "boolean",
        "`sendInitialEvents=true` may be set together with `watch=true`.",
    ),
    "timeoutSeconds": (
        "integer",
        "Timeout for the list/watch call.",
    ),
    "watch": (
        "boolean",
        "Watch for changes to the described resources and return them as a stream of add, update, and "
        "remove notifications.",
    ),
    "container": (
        "string",
        "The container for which to stream logs.",
    ),
    "follow": (
        "boolean",
        "Follow the log stream of the pod.",
    ),
    "tailLines": (
        "integer",
        "If set, the number of lines from the end of the logs to show.",
    ),
    "sinceSeconds": (
        "integer",
        "A relative time in seconds before the current time from which to show logs.",
    ),
    "timestamps": (
        "boolean",
        "If true, add an RFC3339 timestamp at the beginning of every line of log output.",
    ),
    "previous": (
        "boolean",
        "Return previous terminated container logs. Defaults to false.",
    ),
}
LIST_PARAMETERS = ("allowWatchBookmarks", "continue", "fieldSelector", "labelSelector", "limit",
                   "resourceVersion", "resourceVersionMatch", "sendInitialEvents", "timeoutSeconds", "watch")
WRITE_PARAMETERS = ("dryRun", "fieldManager", "fieldValidation")
LOG_PARAMETERS = ("container", "follow", "previous", "sinceSeconds", "tailLines", "timestamps")


def _query(name: str) -> dict[str, Any]:
    type_, description = QUERY_PARAMETERS[name]
    schema: dict[str, Any] = {"type": type_, "uniqueItems": True}
    return {"name": name, "in": "query", "description": description, "schema": schema}


def _path_param(name: str, description: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "description": description, "required": True,
            "schema": {"type": "string", "uniqueItems": True}}


def _ref(definition: str) -> dict[str, Any]:
    return {"$ref": REF_PREFIX + definition}


def _content(definition: str, types: tuple[str, ...] = RESPONSE_TYPES) -> dict[str, Any]:
    return {t: {"schema": _ref(definition)} for t in types}


def _responses(definition: str, *codes: str) -> dict[str, Any]:
    names = {"200": "OK", "201": "Created", "202": "Accepted"}
    out: dict[str, Any] = {code: {"description": names[code], "content": _content(definition)}
                           for code in codes}
    out["401"] = {"description": "Unauthorized"}
    return out


def _operation_id(verb: str, res: Resource, *, namespaced: bool, suffix: str = "") -> str:
    group = "".join(p.capitalize() for p in (res.group or "core").split(".")[:1])
    scope = "Namespaced" if namespaced else ""
    return f"{verb}{group}{res.version.capitalize()}{scope}{res.kind}{suffix}"


def _gvk(res: Resource, kind: str | None = None, group: str | None = None,
         version: str | None = None) -> dict[str, str]:
    return {"group": res.group if group is None else group, "kind": kind or res.kind,
            "version": version or res.version}


def _op(verb: str, action: str, res: Resource, description: str, *, namespaced: bool, definition: str,
        codes: tuple[str, ...], params: tuple[str, ...] = (), body: str | None = None,
        patch: bool = False, suffix: str = "", gvk: dict[str, str] | None = None) -> dict[str, Any]:
    tag = f"{(res.group or 'core').split('.')[0]}_{res.version}"
    op: dict[str, Any] = {
        "tags": [tag],
        "description": description,
        "operationId": _operation_id(verb, res, namespaced=namespaced, suffix=suffix),
        "parameters": [_query(p) for p in params],
        "responses": _responses(definition, *codes),
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": gvk or _gvk(res),
    }
    if patch:
        op["requestBody"] = {"content": {t: {"schema": _ref(META + "Patch")} for t in PATCH_TYPES},
                             "required": True}
    elif body:
        op["requestBody"] = {"content": {"*/*": {"schema": _ref(body)}}, "required": True}
    return op


def _resource_paths(res: Resource) -> dict[str, dict[str, Any]]:
    base = f"/api/{res.version}" if not res.group else f"/apis/{res.group}/{res.version}"
    definition = res.definition
    list_definition = definition + "List"
    kind = res.kind
    ns_prefix = f"{base}/namespaces/{{namespace}}" if res.namespaced else base
    ns_param = [_path_param("namespace", "object name and auth scope, such as for teams and projects")] \
        if res.namespaced else []
    name_param = _path_param("name", f"name of the {kind}")
    pretty = _query("pretty")
    scoped = res.namespaced
    paths: dict[str, dict[str, Any]] = {}
    collection: dict[str, Any] = {
        "get": _op("list", "list", res, f"list or watch objects of kind {kind}", namespaced=scoped,
                   definition=list_definition, codes=("200",), params=LIST_PARAMETERS),
        "post": _op("create", "post", res, f"create a {kind}", namespaced=scoped, definition=definition,
                    codes=("200", "201", "202"), params=WRITE_PARAMETERS, body=definition),
        "parameters": [*ns_param, pretty],
    }
    if "deletecollection" in res.verbs:
        collection["delete"] = _op("deletecollection", "deletecollection", res,
                                   f"delete collection of {kind}", namespaced=scoped,
                                   definition=META + "Status", codes=("200",),
                                   params=("dryRun", "gracePeriodSeconds", "propagationPolicy",
                                           *LIST_PARAMETERS[:-1]),
                                   body=META + "DeleteOptions")
        collection["delete"]["operationId"] = _operation_id("deleteCollection", res, namespaced=scoped)
    paths[f"{ns_prefix}/{res.plural}"] = collection
    if "get" not in res.verbs:
        # A kind that is only created (a review): the collection's POST is all there is.
        collection.pop("get")
        return paths
    paths[f"{ns_prefix}/{res.plural}/{{name}}"] = {
        "get": _op("read", "get", res, f"read the specified {kind}", namespaced=scoped, definition=definition,
                   codes=("200",)),
        "put": _op("replace", "put", res, f"replace the specified {kind}", namespaced=scoped,
                   definition=definition, codes=("200", "201"), params=WRITE_PARAMETERS, body=definition),
        "patch": _op("patch", "patch", res, f"partially update the specified {kind}", namespaced=scoped,
                     definition=definition, codes=("200", "201"), params=(*WRITE_PARAMETERS, "force"),
                     patch=True),
        "delete": _op("delete", "delete", res, f"delete a {kind}", namespaced=scoped,
                      definition=META + "Status", codes=("200", "202"),
                      params=("dryRun", "gracePeriodSeconds", "propagationPolicy"),
                      body=META + "DeleteOptions"),
        "parameters": [name_param, *ns_param, pretty],
    }
    if res.namespaced:
        paths[f"{base}/{res.plural}"] = {
            "get": _op("list", "list", res, f"list or watch objects of kind {kind}", namespaced=False,
                       definition=list_definition, codes=("200",), params=LIST_PARAMETERS,
                       suffix="ForAllNamespaces"),
            "parameters": [pretty],
        }
    for sub in res.subresources:
        path = f"{ns_prefix}/{res.plural}/{{name}}/{sub.name}"
        if sub.openapi == "object":
            group, version, sub_kind = sub.kind
            gvk = {"group": group, "kind": sub_kind, "version": version} if sub_kind else None
            paths[path] = _subresource_ops(res, sub.name.capitalize(), sub.definition or definition, scoped,
                                           [name_param, *ns_param, pretty], kind, gvk=gvk)
        elif sub.openapi == "create":
            paths[path] = _create_subresource_op(res, sub, kind, ns_param, pretty)
        elif sub.openapi == "log":
            paths[path] = {
                "get": {**_op("read", "get", res, f"read log of the specified {kind}", namespaced=scoped,
                              definition=definition, codes=("200",),
                              params=LOG_PARAMETERS,
                              suffix="Log"),
                        "responses": {"200": {"description": "OK", "content": {"text/plain": {"schema": {
                            "type": "string"}}}}, "401": {"description": "Unauthorized"}}},
                "parameters": [_path_param("name", f"name of the {kind}"), *ns_param, pretty],
            }
    return paths


def _create_subresource_op(res: Resource, sub: Subresource, kind: str, ns_param: list[dict],
                           pretty: dict) -> dict[str, Any]:
    """A create-only subresource (pods/eviction, pods/binding) as the real document has it: one
    POST of its own kind, e.g. `createCoreV1NamespacedPodEviction`, "name of the Eviction"."""
    group, version, sub_kind = sub.kind
    gvk = {"group": group, "kind": sub_kind, "version": version or res.version}
    op = _op("create", "post", res, f"create {sub.name} of a {kind}", namespaced=res.namespaced,
             definition=sub.definition, codes=("200", "201", "202"), params=WRITE_PARAMETERS,
             body=sub.definition, suffix=sub.name.capitalize(), gvk=gvk)
    return {"post": op, "parameters": [_path_param("name", f"name of the {sub_kind}"), *ns_param, pretty]}


def _subresource_ops(res: Resource, suffix: str, definition: str, scoped: bool, parameters: list[dict],
                     kind: str, *, gvk: dict[str, str] | None = None) -> dict[str, Any]:
    lower = suffix.lower()
    return {
        "get": _op("read", "get", res, f"read {lower} of the specified {kind}", namespaced=scoped,
                   definition=definition, codes=("200",), suffix=suffix, gvk=gvk),
        "put": _op("replace", "put", res, f"replace {lower} of the specified {kind}", namespaced=scoped,
                   definition=definition, codes=("200", "201"), params=WRITE_PARAMETERS, body=definition,
                   suffix=suffix, gvk=gvk),
        "patch": _op("patch", "patch", res, f"partially update {lower} of the specified {kind}",
                     namespaced=scoped, definition=definition, codes=("200", "201"),
                     params=(*WRITE_PARAMETERS, "force"), patch=True, suffix=suffix, gvk=gvk),
        "parameters": parameters,
    }


# --- JSON Schema -> OpenAPI 3.0 ------------------------------------------------------------------


def _convert(node: Any, *, v2: bool = False) -> Any:
    """Convert one JSON Schema node of the official schemas to Kubernetes' OpenAPI form: v3 wraps
    a `$ref` that has siblings (a description) in `allOf`; Swagger 2.0 (``v2``), as kube-apiserver
    publishes it, keeps the siblings beside `$ref` under `#/definitions/`."""
    if isinstance(node, list):
        return [_convert(n, v2=v2) for n in node]
    if not isinstance(node, dict):
        return node
    name = ref_name(node)
    if name is not None:
        siblings = {k: _convert(v, v2=v2) for k, v in node.items() if k != "$ref"}
        if v2:
            return {**siblings, "$ref": V2_REF_PREFIX + name}
        if not siblings:
            return _ref(name)
        return {"allOf": [_ref(name)], **siblings}
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "type" and isinstance(value, list):
            types = [t for t in value if t != "null"]
            if types:
                out["type"] = types[0]
        elif key in ("properties", "patternProperties"):
            # The JSON Schema adds an `enum` to apiVersion and kind; the API server's document has none.
            out[key] = {k: _convert({f: v for f, v in prop.items() if not (k in ("apiVersion", "kind")
                                                                             and f == "enum")}, v2=v2)
                        for k, prop in value.items()}
        elif key == "enum" and isinstance(value, list):
            out[key] = [v for v in value if v is not None]
        else:
            out[key] = _convert(value, v2=v2)
    return out


def component(name: str, *, v2: bool = False) -> dict[str, Any]:
    """One component schema (a definition in Swagger 2.0). IntOrString and Quantity are `oneOf`
    types in v3 (which is why `kubectl explain` prints `<IntOrString>` and `map[string]Quantity`);
    Swagger 2.0 has no `oneOf`, so there they are strings (`format: int-or-string`), as in
    kube-apiserver's `/openapi/v2`."""
    schema = _convert(definitions()[name], v2=v2)
    if name == "io.k8s.apimachinery.pkg.util.intstr.IntOrString":
        schema = {"description": INT_OR_STRING_DOC, "type": "string", "format": "int-or-string"} if v2 else {
            "description": INT_OR_STRING_DOC, "format": "int-or-string",
            "oneOf": [{"type": "integer"}, {"type": "string"}]}
    elif name == "io.k8s.apimachinery.pkg.api.resource.Quantity":
        schema = {"description": QUANTITY_DOC, "type": "string"} if v2 else {
            "description": QUANTITY_DOC, "oneOf": [{"type": "string"}, {"type": "number"}]}
    return schema


INT_OR_STRING_DOC = ("IntOrString is a type that can hold an int32 or a string.  When used in JSON or "
                     "YAML marshalling and unmarshalling, it produces or consumes the inner type.  This "
                     "allows you to have, for example, a JSON field that can accept a name or number.")
QUANTITY_DOC = ("Quantity is a fixed-point representation of a number. It provides convenient "
                "marshaling/unmarshaling in JSON and YAML, in addition to String() and AsInt64() accessors.")


def _closure(roots: list[str]) -> list[str]:
    """Every definition reachable from ``roots`` through `$ref`s, roots first."""
    defs = definitions()
    seen: list[str] = []
    stack = list(roots)
    while stack:
        name = stack.pop(0)
        if name in seen or name not in defs:
            continue
        seen.append(name)
        stack.extend(_refs(defs[name]))
    return seen


def _refs(node: Any) -> list[str]:
    if isinstance(node, list):
        return [r for n in node for r in _refs(n)]
    if not isinstance(node, dict):
        return []
    found = [name] if (name := ref_name(node)) else []
    return found + [r for v in node.values() for r in _refs(v)]


# --- documents -----------------------------------------------------------------------------------


def _group_version_path(res: Resource) -> str:
    return f"api/{res.version}" if not res.group else f"apis/{res.group}/{res.version}"


@cache
def group_version_specs() -> dict[str, tuple[dict[str, Any], list[str]]]:
    """The one generator both renderings share: each group-version's paths (operations in the
    v3 form) and the names of the definitions they reach, in order. `/openapi/v3` publishes them
    per group-version; `/openapi/v2` (`openapi_v2.py`) merges them into one Swagger 2.0 document."""
    grouped: dict[str, list[Resource]] = {}
    for res in RESOURCES:
        if res.definition in definitions():  # metrics.k8s.io has no official schema to publish
            grouped.setdefault(_group_version_path(res), []).append(res)
    out: dict[str, tuple[dict[str, Any], list[str]]] = {}
    for path, resources in grouped.items():
        paths: dict[str, Any] = {}
        roots = [META + "Status", META + "DeleteOptions", META + "Patch", META + "APIResourceList"]
        for res in resources:
            paths.update(_resource_paths(res))
            roots += [res.definition, res.definition + "List"]
            roots += [sub.definition for sub in res.subresources if sub.definition]
        version = resources[0].version
        paths[f"/{path}/"] = {
            "get": {"tags": [f"{(resources[0].group or 'core').split('.')[0]}_{version}"],
                    "description": "get available resources",
                    "operationId": f"get{(resources[0].group or 'core').split('.')[0].capitalize()}"
                                   f"{version.capitalize()}APIResources",
                    "responses": _responses(META + "APIResourceList", "200")},
        }
        out[path] = (paths, _closure(roots))
    return out


def digest(body: bytes) -> str:
    """A document's hash, as kube-openapi computes its ETag (SHA-512, upper-case hex)."""
    return hashlib.sha512(body).hexdigest().upper()


SECURITY_SCHEMES = {"BearerToken": {"type": "apiKey", "description": "Bearer Token authentication",
                                    "name": "authorization", "in": "header"}}


@cache
def _documents() -> dict[str, tuple[str, bytes]]:
    """Each group-version's document, serialized once, with its hash."""
    out: dict[str, tuple[str, bytes]] = {}
    for path, (paths, names) in group_version_specs().items():
        document = {
            "openapi": "3.0.0",
            "info": {"title": "Kubernetes", "version": "v1.37.1"},
            "paths": paths,
            "components": {
                "schemas": {name: component(name) for name in names},
                "securitySchemes": SECURITY_SCHEMES,
            },
            "security": [{"BearerToken": []}],
        }
        body = json.dumps(document, separators=(",", ":")).encode()
        out[path] = (digest(body)[:128], body)
    return out


@cache
def openapi_v3_index() -> dict[str, Any]:
    """The `/openapi/v3` discovery document: one entry per served group-version."""
    return {"paths": {path: {"serverRelativeURL": f"/openapi/v3/{path}?hash={digest}"}
                      for path, (digest, _) in sorted(_documents().items())}}


def openapi_v3_document(path: str) -> dict[str, Any] | None:
    """The OpenAPI v3 document of a group-version (`api/v1`, `apis/apps/v1`, ...), or None."""
    body = openapi_v3_document_bytes(path)
    return None if body is None else json.loads(body)


def openapi_v3_document_bytes(path: str) -> bytes | None:
    """The serialized document (cached, ready to send), or None for an unknown group-version."""
    entry = openapi_v3_entry(path)
    return None if entry is None else entry[1]


def openapi_v3_entry(path: str) -> tuple[str, bytes] | None:
    """A group-version's document and its hash (the index's `?hash=`, the ETag), or None."""
    return _documents().get(path.strip("/"))
