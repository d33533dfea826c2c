"""Field ownership (`metadata.managedFields`) and server-side apply, as kube-apiserver does them.

A port of the parts of structured-merge-diff (`sigs.k8s.io/structured-merge-diff/v6`: `typed/
{tofieldset,compare,merge,remove}.go`, `merge/update.go`) and apiserver's field manager
(`k8s.io/apiserver/pkg/endpoints/handlers/fieldmanager`, `.../util/managedfields/internal`) the
sandbox needs, on the official schemas (`schemas.py`: `x-kubernetes-list-type`,
`x-kubernetes-list-map-keys`, `x-kubernetes-map-type`).

- A field set is a set of paths; a path is a tuple of path elements in their serialized form:
  `f:name` (a field), `k:{"name":"nginx"}` (an item of an associative list), `v:"x"` (an item of
  a set list), `i:0` (an index). `fieldsV1` is the same set as a tree, `.` marking a node that is
  a member itself and has children.
- Every write records who changed what: an `Update` entry per (manager, subresource) grows by
  the fields it added or modified; every other manager loses the fields it no longer decides.
- Apply (`application/apply-patch+yaml`) merges the applied configuration into the live object,
  prunes what the manager applied last time and no longer applies (unless someone else owns
  it), and refuses with 409 when it changes a field another manager owns, unless `force=true`,
  which transfers ownership.

Simplification (documented, not hidden): struct-typed nodes are never members themselves
(kube's Go zero values make non-pointer structs always present, so they rarely are), and one
API version per kind, so no conversion between versions of managed sets.
"""

from __future__ import annotations

import contextvars
import json
from collections.abc import Iterable
from typing import Any

from . import errors, schemas
from .strategy import now

Path = tuple[str, ...]
FieldSet = set[Path]

MISSING: Any = object()
MAX_MANAGER_LENGTH = 128
DEFAULT_MANAGER = "kube-apiserver"

# Who is writing: the server sets it per request (fieldManager, else the User-Agent's first
# token); writes the API server makes on its own (bootstrap, garbage collection) keep the default.
current_manager: contextvars.ContextVar[str] = contextvars.ContextVar("field_manager",
                                                                      default=DEFAULT_MANAGER)

# Root fields the field manager never tracks (apiserver's stripmeta.go), plus what the server
# itself sets during deletion.
STRIPPED: frozenset[Path] = frozenset({
    ("f:apiVersion",), ("f:kind",), ("f:metadata",),
    *(("f:metadata", f"f:{name}") for name in (
        "name", "namespace", "creationTimestamp", "selfLink", "uid", "clusterName", "generation",
        "managedFields", "resourceVersion", "deletionTimestamp", "deletionGracePeriodSeconds")),
})


def manager_from_user_agent(user_agent: str) -> str:
    """apiserver's `prefixFromUserAgent`: the User-Agent up to its first `/`, printable, 128 chars."""
    prefix = user_agent.split("/", 1)[0]
    return "".join(c for c in prefix if c.isprintable())[:MAX_MANAGER_LENGTH]


# --- schema ------------------------------------------------------------------------------------

SCALAR, ATOMIC, STRUCT, MAP, ASSOCIATIVE, SET = "scalar", "atomic", "struct", "map", "associative", "set"


EMPTY: dict = {}
DEDUCED = "deduced"
_shapes: dict[int, tuple[dict, str]] = {}
_children: dict[tuple[int, str], tuple[dict, dict, bool]] = {}


def _static_shape(node: dict) -> str:
    """The shape a schema node declares (DEDUCED: from the value; MAP: a map when the value is one)."""
    hit = _shapes.get(id(node))
    if hit is not None and hit[0] is node:
        return hit[1]
    shape = DEDUCED
    if node:
        types = node.get("type")
        types = set(types) if isinstance(types, list) else {types} if types else set()
        list_type = node.get("x-kubernetes-list-type")
        if node.get("x-kubernetes-map-type") == "atomic":
            shape = ATOMIC
        elif "array" in types or "items" in node:
            shape = ASSOCIATIVE if list_type == "map" else SET if list_type == "set" else ATOMIC
        elif "properties" in node:
            shape = STRUCT
        elif isinstance(node.get("additionalProperties"), dict) or "object" in types:
            shape = MAP
        elif types or "$ref" in node:
            shape = SCALAR
    _shapes[id(node)] = (node, shape)
    return shape


def _shape(node: dict, value: Any) -> str:
    """How structured-merge-diff treats a schema node (deduced from the value when untyped)."""
    shape = _static_shape(node)
    if shape == MAP:
        return MAP if isinstance(value, dict) else SCALAR
    if shape != DEDUCED:
        return shape
    if isinstance(value, dict):
        return MAP
    if isinstance(value, list):
        return ATOMIC
    return SCALAR


def _child(node: dict, key: str) -> tuple[dict, bool]:
    """The schema of field ``key`` and whether it is a declared field (not a map entry)."""
    hit = _children.get((id(node), key))
    if hit is not None and hit[0] is node:
        return hit[1], hit[2]
    props = node.get("properties")
    if isinstance(props, dict) and key in props:
        found = schemas.resolve(props[key]), True
    else:
        extra = node.get("additionalProperties")
        found = (schemas.resolve(extra) if isinstance(extra, dict) else EMPTY), False
    if found[1]:  # declared fields only: map keys (labels, data) are unbounded
        _children[(id(node), key)] = (node, *found)
    return found


def _items(node: dict) -> dict:
    items = node.get("items")
    return schemas.resolve(items) if isinstance(items, dict) else EMPTY


def _compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, sort_keys=True)


def item_element(node: dict, shape: str, item: Any) -> str:
    """The path element of a list item: `k:{...}` for associative lists, `v:...` for sets."""
    if shape == ASSOCIATIVE and isinstance(item, dict):
        keys = node.get("x-kubernetes-list-map-keys") or []
        return "k:" + _compact({k: item[k] for k in sorted(keys) if k in item})
    return "v:" + _compact(item)


def root(plural: str) -> dict:
    """The schema a kind's field sets are computed against."""
    return schemas.root_schema(plural)


# --- field sets of one object (typed/tofieldset.go) ---------------------------------------------


def to_field_set(obj: Any, node: dict) -> FieldSet:
    """The fields an applied configuration sets: its leaves, list items and map entries."""
    out: FieldSet = set()
    _to_set(obj, node, (), out)
    return out


def _to_set(value: Any, node: dict, path: Path, out: FieldSet) -> None:
    shape = _shape(node, value)
    if shape in (SCALAR, ATOMIC):
        out.add(path)
    elif shape in (ASSOCIATIVE, SET):
        if isinstance(value, list):
            items = _items(node)
            for item in value:
                child = (*path, item_element(node, shape, item))
                _to_set(item, items, child, out)
                out.add(child)
    elif isinstance(value, dict):
        for key, item in value.items():
            child_node, declared = _child(node, key)
            child = (*path, f"f:{key}")
            _to_set(item, child_node, child, out)
            if item is None or item == {} or not declared:
                out.add(child)


# --- comparison (typed/compare.go) -----------------------------------------------------------


def compare(old: Any, new: Any, node: dict) -> tuple[FieldSet, FieldSet, FieldSet]:
    """(added, modified, removed) paths from ``old`` to ``new``."""
    added: FieldSet = set()
    modified: FieldSet = set()
    removed: FieldSet = set()
    _compare(old, new, node, (), added, modified, removed)
    return added, modified, removed


def _empty(value: Any) -> bool:
    return value is MISSING or value is None or value == {} or value == []


def _compare(old: Any, new: Any, node: dict, path: Path, added: FieldSet, modified: FieldSet,
             removed: FieldSet, required: bool = False) -> None:
    """`compareWalker.compare`. A granular map or list that appears or goes is itself added or
    removed; a struct only as a list item, and a required field never (Go's zero value of its
    parent already carries it, so kube sees it as present)."""
    if old is not MISSING and new is not MISSING and old == new:
        return  # nothing below changed (the common case of an update: skip the walk)
    shape = _shape(node, new if new is not MISSING else old)
    leaf = shape in (SCALAR, ATOMIC) or (_empty(old) and _empty(new)) or \
        (old is not MISSING and new is not MISSING and type(old) is not type(new))
    if leaf:
        if old is MISSING:
            added.add(path)
        elif new is MISSING:
            removed.add(path)
        elif old != new:
            modified.add(path)
        return
    if shape in (ASSOCIATIVE, SET):
        items = _items(node)
        olds = _index(node, shape, old if isinstance(old, list) else [])
        news = _index(node, shape, new if isinstance(new, list) else [])
        for element in {**olds, **news}:
            _compare(olds.get(element, MISSING), news.get(element, MISSING), items, (*path, element),
                     added, modified, removed)
    else:
        olds = old if isinstance(old, dict) else {}
        news = new if isinstance(new, dict) else {}
        needed = node.get("required") or ()
        for key in {**olds, **news}:
            _compare(olds.get(key, MISSING), news.get(key, MISSING), _child(node, key)[0],
                     (*path, f"f:{key}"), added, modified, removed, key in needed)
    if not path or required or (shape == STRUCT and not path[-1].startswith(("k:", "v:", "i:"))):
        return
    if old is MISSING:
        added.add(path)
    elif new is MISSING:
        removed.add(path)


def _index(node: dict, shape: str, items: list) -> dict[str, Any]:
    """List items by path element (the first of duplicates wins, as `AllowDuplicates` reads them)."""
    found: dict[str, Any] = {}
    for item in items:
        found.setdefault(item_element(node, shape, item), item)
    return found


# --- merge (typed/merge.go, the applied configuration wins) --------------------------------------


def merge(live: Any, config: Any, node: dict) -> Any:
    """``config`` merged into ``live``: leaves and atomic values from the configuration, maps
    and associative/set lists merged item by item (live items keep their place)."""
    if config is MISSING:
        return live
    shape = _shape(node, config)
    if live is MISSING or live is None or shape in (SCALAR, ATOMIC) or type(live) is not type(config):
        return config
    if shape in (ASSOCIATIVE, SET):
        items = _items(node)
        incoming = _index(node, shape, config)
        result = []
        seen = set()
        for item in live:
            element = item_element(node, shape, item)
            if element in seen:
                continue
            seen.add(element)
            result.append(merge(item, incoming[element], items) if element in incoming else item)
        result.extend(item for element, item in incoming.items() if element not in seen)
        return result
    merged = dict(live)
    for key, value in config.items():
        merged[key] = merge(live.get(key, MISSING), value, _child(node, key)[0])
    return merged


def drop_nulls(value: Any) -> Any:
    """A merged object as it is stored: fields applied as null are absent."""
    if isinstance(value, dict):
        return {k: drop_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [drop_nulls(v) for v in value]
    return value


# --- removal (typed/remove.go, for pruning) ----------------------------------------------------


def remove_paths(obj: dict, paths: Iterable[Path], node: dict) -> None:
    """Delete the fields and list items at ``paths`` from ``obj`` (in place)."""
    for path in sorted(paths, key=len, reverse=True):
        _remove(obj, path, node)


def _remove(value: Any, path: Path, node: dict) -> None:
    element, rest = path[0], path[1:]
    if isinstance(value, dict) and element.startswith("f:"):
        key = element[2:]
        if key not in value:
            return
        if not rest:
            del value[key]
            return
        _remove(value[key], rest, _child(node, key)[0])
        return
    if isinstance(value, list):
        shape = _shape(node, value)
        for i, item in enumerate(value):
            if item_element(node, shape, item) == element:
                if rest:
                    _remove(item, rest, _items(node))
                else:
                    del value[i]
                return


# --- fieldsV1 encoding (fieldpath/serialize.go) --------------------------------------------------


def encode_set(paths: FieldSet) -> dict:
    """A field set as its `fieldsV1` tree."""
    tree: dict = {}
    for path in paths:
        node = tree
        for element in path:
            node = node.setdefault(element, {})
    for path in paths:
        node = tree
        for element in path:
            node = node[element]
        if node and "." not in node:
            node["."] = {}
    return _sorted_tree(tree)


def _sorted_tree(tree: dict) -> dict:
    return {k: _sorted_tree(tree[k]) for k in sorted(tree, key=lambda k: (k != ".", k))}


def decode_set(tree: Any) -> FieldSet:
    """A `fieldsV1` tree as a field set (400 when it is not one)."""
    out: FieldSet = set()

    def walk(node: Any, path: Path) -> None:
        if not isinstance(node, dict):
            raise errors.bad_request(f"metadata.managedFields: invalid fieldsV1: {_compact(node)}")
        for key, child in node.items():
            if key == ".":
                out.add(path)
            elif not isinstance(child, dict):
                raise errors.bad_request(f"metadata.managedFields: invalid fieldsV1 at {key}")
            elif not child:
                out.add((*path, key))
            else:
                walk(child, (*path, key))

    walk(tree, ())
    return out


def path_string(path: Path) -> str:
    """`fieldpath.Path.String()`: `.spec.containers[name="nginx"].image`."""
    parts = []
    for element in path:
        kind, text = element[:2], element[2:]
        if kind == "f:":
            parts.append("." + text)
        elif kind == "k:":
            fields = json.loads(text)
            parts.append("[" + ",".join(f"{k}={_go_string(v)}" for k, v in fields.items()) + "]")
        elif kind == "v:":
            parts.append(f"[={_go_string(json.loads(text))}]")
        else:
            parts.append(f"[{text}]")
    return "".join(parts)


def _go_string(value: Any) -> str:
    """`value.ToString`: strings quoted, everything else as JSON."""
    return json.dumps(value, ensure_ascii=False) if isinstance(value, str) else _compact(value)


# --- fieldsV1 trees edited in place (an update touches a few paths of a few entries) -------------


def _node(tree: dict, path: Path) -> dict | None:
    for element in path:
        child = tree.get(element)
        if child is None:
            return None
        tree = child
    return tree


def has_path(tree: dict, path: Path) -> bool:
    """Whether ``path`` is a member of the fieldsV1 ``tree``."""
    node = _node(tree, path)
    return node is not None and (not node or "." in node)


def _discard(tree: dict, path: Path) -> None:
    """Remove ``path``'s membership, and the nodes that then hold nothing (a node with
    children that is a member carries `.`; one without is only a prefix)."""
    trail = [tree]
    for element in path:
        child = trail[-1].get(element)
        if child is None:
            return
        trail.append(child)
    if any(k != "." for k in trail[-1]):
        trail[-1].pop(".", None)
        return
    for depth in range(len(path), 0, -1):
        parent = trail[depth - 1]
        del parent[path[depth - 1]]
        if list(parent) == ["."]:
            parent.clear()  # a member whose last child went: now a member leaf
            return
        if parent or depth == 1:
            return


def _insert(tree: dict, path: Path) -> None:
    """Add ``path`` as a member (a member leaf that gains children keeps its membership as `.`)."""
    node = tree
    for element in path:
        child = node.get(element)
        if child is None:
            child = node[element] = {}
        elif not child:
            child["."] = {}
        node = child
    if node and "." not in node:
        node["."] = {}


def _copy_tree(tree: dict) -> dict:
    return {k: _copy_tree(v) for k, v in tree.items()}


# --- managers ------------------------------------------------------------------------------------

Key = tuple[str, str, str]  # (manager, operation, subresource): the apiserver's manager identifier


def _key(entry: dict) -> Key:
    get = entry.get
    return str(get("manager") or ""), str(get("operation") or ""), str(get("subresource") or "")


def validate_entries(entries: Any) -> list[dict]:
    """`metadata.managedFields` a client wrote, checked (400 when malformed); `[{}]` clears them."""
    if entries is None:
        return []
    if not isinstance(entries, list):
        raise errors.bad_request("metadata.managedFields: must be a list")
    seen: set[Key] = set()
    kept = []
    for entry in entries:
        if not isinstance(entry, dict):
            raise errors.bad_request("metadata.managedFields: every entry must be an object")
        if entry == {}:
            continue
        if entry.get("operation") not in ("Apply", "Update"):
            raise errors.bad_request(f'metadata.managedFields: operation must be "Apply" or "Update", '
                                     f"got {_compact(entry.get('operation'))}")
        decode_set(entry.get("fieldsV1") or {})
        if _key(entry) in seen:
            raise errors.bad_request(f"metadata.managedFields: duplicate entry for manager "
                                     f"{_compact(entry.get('manager'))}")
        seen.add(_key(entry))
        kept.append(entry)
    return kept


def _entry(key: Key, api_version: str, time: str, tree: dict) -> dict:
    entry: dict = {"manager": key[0], "operation": key[1], "apiVersion": api_version, "time": time,
                   "fieldsType": "FieldsV1", "fieldsV1": tree}
    if key[2]:
        entry["subresource"] = key[2]
    return entry


def _sorted_entries(entries: list[dict]) -> list[dict]:
    """Entries as the apiserver sorts them: operation, time, manager, apiVersion, subresource."""
    return sorted(entries, key=lambda e: (e.get("operation", ""), e.get("time", ""), e.get("manager", ""),
                                          e.get("apiVersion", ""), e.get("subresource", "")))


def describe(key: Key, api_version: str) -> str:
    """apiserver's `printManager`: `"kubectl-client-side-apply" using apps/v1`."""
    manager, operation, subresource = key
    text = json.dumps(manager)
    if subresource:
        text += f" with subresource {json.dumps(subresource)}"
    if operation == "Update":
        text += f" using {api_version}"
    return text


def _tracked(obj: dict, subresource: str, has_status: bool) -> dict:
    """The part of an object a write through ``subresource`` decides (resetFields): the
    status subresource only the status, the main resource everything else when the kind
    has a status subresource."""
    if subresource == "status":
        return {"status": obj["status"]} if "status" in obj else {}
    if has_status:
        return {k: v for k, v in obj.items() if k != "status"}
    return obj


def _keep(paths: FieldSet, subresource: str, has_status: bool) -> FieldSet:
    """Drop the stripped root fields and those outside what ``subresource`` decides."""
    kept = {p for p in paths if p and p not in STRIPPED}
    if subresource == "status":
        return {p for p in kept if p[0] == "f:status"}
    if has_status:
        return {p for p in kept if p[0] != "f:status"}
    return kept


def _without_stripped(obj: Any) -> Any:
    if not isinstance(obj, dict):
        return obj
    result = {k: v for k, v in obj.items() if k not in ("apiVersion", "kind")}
    meta = result.get("metadata")
    if isinstance(meta, dict):
        result["metadata"] = {k: v for k, v in meta.items()
                              if ("f:metadata", f"f:{k}") not in STRIPPED}
    return result


def _changes(old: dict, new: dict, node: dict, subresource: str,
             has_status: bool) -> tuple[FieldSet, FieldSet, FieldSet]:
    added, modified, removed = compare(_tracked(_without_stripped(old), subresource, has_status),
                                       _tracked(_without_stripped(new), subresource, has_status), node)
    return (_keep(added, subresource, has_status), _keep(modified, subresource, has_status),
            _keep(removed, subresource, has_status))


def _settle(entries: list[dict], me: Key | None, changed: FieldSet, removed: FieldSet, *,
            force: bool) -> list[dict]:
    """`Updater.update`: every other manager loses the fields this write removed and (when
    forced) those it changed; 409 when not forced and another manager owns a changed field.
    Entries are copied only where they change."""
    result: list[dict] = []
    conflicts: list[tuple[Key, str, Path]] = []
    for entry in entries:
        key = _key(entry)
        tree = entry.get("fieldsV1") or {}
        clash = sorted(p for p in changed if has_path(tree, p)) if key != me else []
        gone = [p for p in removed if has_path(tree, p)] if key != me else []
        if clash and not force:
            conflicts.extend((key, str(entry.get("apiVersion") or ""), p) for p in clash)
        if clash or gone:
            tree = _copy_tree(tree)
            for path in {*clash, *gone}:
                _discard(tree, path)
            if not tree:
                continue
            entry = {**entry, "fieldsV1": tree}
        result.append(entry)
    if conflicts:
        raise apply_conflict(conflicts)
    return result


def apply_conflict(conflicts: list[tuple[Key, str, Path]]) -> errors.ApiError:
    """409 Conflict with one `FieldManagerConflict` cause per field (`NewConflictError`)."""
    causes = [{"reason": "FieldManagerConflict", "message": f"conflict with {describe(key, v)}",
               "field": path_string(p)} for key, v, p in conflicts]
    if len(conflicts) == 1:
        key, version, path = conflicts[0]
        message = f"Apply failed with 1 conflict: conflict with {describe(key, version)}: {path_string(path)}"
    else:
        by_manager: dict[str, list[str]] = {}
        for key, version, path in conflicts:
            by_manager.setdefault(describe(key, version), []).append(path_string(path))
        lines = []
        for manager in sorted(by_manager):
            lines.append(f"conflicts with {manager}:")
            lines.extend(f"- {p}" for p in by_manager[manager])
        message = f"Apply failed with {len(conflicts)} conflicts: " + "\n".join(lines)
    return errors.ApiError(409, "Conflict", message, details={"causes": causes})


def _store_entries(meta: dict, entries: list[dict]) -> None:
    if entries:
        meta["managedFields"] = _sorted_entries(entries)
    else:
        meta.pop("managedFields", None)


def record_update(old: dict | None, new: dict, *, plural: str, api_version: str, manager: str,
                  subresource: str, has_status: bool) -> None:
    """Set ``new``'s managedFields after a create or update by ``manager`` (in place).

    managedFieldsUpdater.Update: the fields this write added or modified join the manager's
    `Update` entry (its time is bumped only then), other managers lose what it changed or removed."""
    meta = new.setdefault("metadata", {})
    previous = (old or {}).get("metadata", {}).get("managedFields")
    if old is not None and "managedFields" in meta and meta["managedFields"] != previous:
        entries = validate_entries(meta["managedFields"])  # the client rewrote the field ownership
    else:
        entries = previous or []
    added, modified, removed = _changes(old or {}, new, root(plural), subresource, has_status)
    mine = added | modified
    if mine or removed:
        entries = _settle(entries, None, mine, removed, force=True)
    if mine:
        key = (manager, "Update", subresource)
        found = next((e for e in entries if _key(e) == key), None)
        tree = _copy_tree(found.get("fieldsV1") or {}) if found else {}
        for path in mine:
            _insert(tree, path)
        entries = [e for e in entries if e is not found] + [_entry(key, api_version, now(), tree)]
    _store_entries(meta, entries)


def apply(live: dict | None, config: dict, *, plural: str, api_version: str, manager: str,
          subresource: str, has_status: bool, force: bool) -> dict:
    """Server-side apply of ``config`` by ``manager`` to ``live`` (None: the object is created).

    Returns the object to store, managedFields set; raises 409 on conflicts unless forced."""
    node = root(plural)
    live_obj = live or {}
    entries = live_obj.get("metadata", {}).get("managedFields") or []
    key = (manager, "Apply", subresource)
    applied = _keep(to_field_set(_without_stripped(config), node), subresource, has_status)
    mine = next((e for e in entries if _key(e) == key), None)
    last = decode_set(mine.get("fieldsV1") or {}) if mine else set()
    merged = drop_nulls(json.loads(json.dumps(merge(live_obj, config, node))))
    stale = last - applied
    if stale:
        owned = set(applied)
        for entry in entries:
            if entry is not mine:
                owned |= decode_set(entry.get("fieldsV1") or {})
        doomed = {p for p in stale if not any(o[:len(p)] == p for o in owned)}
        remove_paths(merged, doomed, node)
        _drop_emptied(merged, doomed, owned)
    added, modified, removed = _changes(live_obj, merged, node, subresource, has_status)
    entries = _settle(entries, key, added | modified, removed, force=force)
    changed = _without_stripped(merged) != _without_stripped(live_obj)
    time = now() if changed or mine is None else str(mine.get("time") or now())
    entries = [e for e in entries if _key(e) != key] + [_entry(key, api_version, time, encode_set(applied))]
    _store_entries(merged.setdefault("metadata", {}), entries)
    return merged


def _drop_emptied(obj: dict, doomed: FieldSet, owned: FieldSet) -> None:
    """After pruning, remove struct fields the removal left empty and nobody owns (what
    `EnsureNamedFieldsAreMembers` achieves for named fields)."""
    parents = sorted({p[:i] for p in doomed for i in range(1, len(p))}, key=len, reverse=True)
    for parent in parents:
        if any(o[:len(parent)] == parent for o in owned):
            continue
        value: Any = obj
        for element in parent:
            if isinstance(value, dict) and element.startswith("f:"):
                value = value.get(element[2:], MISSING)
            else:
                value = MISSING
                break
        if isinstance(value, dict) and not value and all(e.startswith("f:") for e in parent):
            container: Any = obj
            for element in parent[:-1]:
                container = container[element[2:]]
            del container[parent[-1][2:]]
