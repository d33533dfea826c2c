"""PATCH bodies applied the way the Kubernetes API server applies them.

Three content types reach a PATCH endpoint: JSON merge patch (RFC 7386, `kubectl scale` and
`kubectl patch --type merge`), JSON patch (RFC 6902, via the `jsonpatch` package) and
strategic merge patch, which plain `kubectl apply` sends for every update. Strategic merge
patch is Kubernetes' own format: lists with a merge key (containers by name, ports by
containerPort, conditions by type, ...) merge element by element, lists of primitives with the
merge strategy (finalizers) are unioned, and directives steer the merge: `$patch`
(replace/delete/merge), `$retainKeys`, `$setElementOrder/<list>` and
`$deleteFromPrimitiveList/<list>`. The merge keys and strategies come from the official
schemas (`schemas.py`), exactly as `k8s.io/apimachinery/pkg/util/strategicpatch` reads them
from the Go struct tags.

Errors map to the server's: a malformed patch is 400 BadRequest; a well-formed patch whose
result is unusable (a JSON patch `test` that fails, a path that does not exist, a result that
is not an object) is 422. The original object is never mutated.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import jsonpatch
import jsonpointer

from sandbox.apiserver.schemas import resolve, root_schema

MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"
PATCH_TYPES = (JSON_PATCH, MERGE_PATCH, STRATEGIC_MERGE_PATCH)
MAX_JSON_PATCH_OPERATIONS = 10000

DIRECTIVE = "$patch"
RETAIN_KEYS = "$retainKeys"
SET_ELEMENT_ORDER = "$setElementOrder/"
DELETE_FROM_PRIMITIVE_LIST = "$deleteFromPrimitiveList/"


class PatchError(Exception):
    """A patch that cannot be applied: `.code` is 400 (malformed) or 422 (unusable result)."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def apply_patch(content_type: str, original: dict, body: bytes, *, plural: str) -> dict:
    """Apply a PATCH body of ``content_type`` to a copy of ``original`` and return the result."""
    media = content_type.split(";", 1)[0].strip().lower()
    if media not in PATCH_TYPES:
        raise PatchError(415, f"the body of the request was in an unknown format - accepted media types "
                              f"include: {', '.join(PATCH_TYPES)}, {APPLY_PATCH}")
    try:
        patch = json.loads(body or b"null")
    except (ValueError, UnicodeDecodeError) as exc:
        raise PatchError(400, f"error decoding patch: {exc}") from exc
    except RecursionError:
        raise PatchError(400, "error decoding patch: json: exceeded max depth") from None
    try:
        return _apply(media, original, patch, plural=plural)
    except RecursionError:
        raise PatchError(422, "the patch nests too deeply to be applied") from None


def _apply(media: str, original: dict, patch: Any, *, plural: str) -> dict:
    """Apply a decoded patch of one of the three types."""
    if media == JSON_PATCH:
        result = _json_patch(original, patch)
    elif media == MERGE_PATCH:
        if not isinstance(patch, dict):
            raise PatchError(400, "json: cannot unmarshal a merge patch that is not a JSON object "
                                  "into an object")
        result = merge_patch(original, patch)
    else:
        if not isinstance(patch, dict):
            raise PatchError(400, "json: cannot unmarshal array into Go value of type "
                                  "map[string]interface {}")
        result = strategic_merge_patch(original, patch, plural=plural)
    if not isinstance(result, dict):
        raise PatchError(422, "the patched object is not a JSON object")
    return result


# --- RFC 7386 ----------------------------------------------------------------------------------


def merge_patch(original: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch: objects merge recursively, null deletes, the rest replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(original) if isinstance(original, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


# --- RFC 6902 ----------------------------------------------------------------------------------


def _json_patch(original: dict, operations: Any) -> Any:
    if not isinstance(operations, list):
        raise PatchError(400, "json: cannot unmarshal object into Go value of type jsonpatch.Patch")
    if len(operations) > MAX_JSON_PATCH_OPERATIONS:
        raise PatchError(413, "The allowed maximum operations in a JSON patch is "
                              f"{MAX_JSON_PATCH_OPERATIONS}, got {len(operations)}")
    for op in operations:
        if not (isinstance(op, dict) and isinstance(op.get("op"), str) and isinstance(op.get("path"), str)):
            raise PatchError(400, "invalid JSON patch: every operation needs string \"op\" and \"path\"")
    try:
        patches = [jsonpatch.JsonPatch([op]) for op in operations]
    except (jsonpatch.InvalidJsonPatch, jsonpointer.JsonPointerException) as exc:
        raise PatchError(400, str(exc)) from exc
    document = copy.deepcopy(original)
    for op, single in zip(operations, patches, strict=True):
        try:
            document = single.apply(document, in_place=True)
        except jsonpatch.InvalidJsonPatch as exc:
            raise PatchError(400, str(exc)) from exc
        except jsonpatch.JsonPatchTestFailed as exc:
            raise PatchError(422, f"testing value {op['path']} failed: test failed") from exc
        except (jsonpatch.JsonPatchException, jsonpointer.JsonPointerException,
                TypeError, ValueError, KeyError, IndexError) as exc:
            detail = str(exc) or type(exc).__name__
            raise PatchError(422, f"{op['op']} operation does not apply: {detail}") from exc
    return document


# --- strategic merge patch ---------------------------------------------------------------------


def strategic_merge_patch(original: dict, patch: dict, *, plural: str) -> dict:
    """Apply a strategic merge patch to a copy of ``original`` using the schema of ``plural``."""
    return _merge_map(copy.deepcopy(original), patch, root_schema(plural))


def _field_meta(schema: dict, key: str) -> tuple[dict, str, list[str]]:
    """The (resolved) schema of field ``key``, its merge key and its patch strategies."""
    props = schema.get("properties")
    if isinstance(props, dict) and key in props:
        node = props[key]
    elif isinstance(schema.get("additionalProperties"), dict):
        node = schema["additionalProperties"]
    else:
        return {}, "", []
    resolved = resolve(node)
    strategy = node.get("x-kubernetes-patch-strategy") or resolved.get("x-kubernetes-patch-strategy") or ""
    strategies = [s for s in str(strategy).split(",") if s]
    return resolved, str(resolved.get("x-kubernetes-patch-merge-key") or ""), strategies


def _items(schema: dict) -> dict:
    items = schema.get("items")
    return resolve(items) if isinstance(items, dict) else {}


def _merge_map(original: dict, patch: dict, schema: dict) -> dict:
    """`mergeMap`: merge ``patch`` into ``original`` (which this function owns and mutates).
    `$patch: replace` takes the patch as the whole map, `$patch: delete` empties it."""
    directive = patch.get(DIRECTIVE)
    if directive is not None:
        if directive == "replace":
            return _strip(patch, schema)
        if directive == "delete":
            return {}
        if directive != "merge":
            raise PatchError(400, f"Unable to find unknown directive {json.dumps(directive)} in "
                                  f"{json.dumps(patch)}")
    retain = patch.get(RETAIN_KEYS)
    if retain is not None:
        if not isinstance(retain, list) or not all(isinstance(k, str) for k in retain):
            raise PatchError(400, "invalid patch: $retainKeys must be a list of strings")
        for key in list(original):
            if key not in retain:
                del original[key]
        missing = [k for k in patch if not k.startswith("$") and k not in retain and patch[k] is not None]
        if missing:
            raise PatchError(422, f"The patch {json.dumps(patch)} has keys {missing} that are not in "
                                  f"$retainKeys {retain}")
    orders: dict[str, list] = {}
    for key, value in patch.items():
        if key.startswith(DELETE_FROM_PRIMITIVE_LIST):
            field = key[len(DELETE_FROM_PRIMITIVE_LIST):]
            if not isinstance(value, list):
                raise PatchError(400, "invalid patch: $deleteFromPrimitiveList must be a list")
            current = original.get(field)
            if isinstance(current, list):
                original[field] = [v for v in current if v not in value]
        elif key.startswith(SET_ELEMENT_ORDER):
            if not isinstance(value, list):
                raise PatchError(400, "invalid patch: $setElementOrder must be a list")
            orders[key[len(SET_ELEMENT_ORDER):]] = value
    for key, value in patch.items():
        if key.startswith("$"):
            if key not in (DIRECTIVE, RETAIN_KEYS) and not key.startswith(
                    (SET_ELEMENT_ORDER, DELETE_FROM_PRIMITIVE_LIST)):
                raise PatchError(400, f"Unable to find unknown directive {json.dumps(key)} in the patch")
            continue
        field_schema, merge_key, strategies = _field_meta(schema, key)
        if value is None:
            original.pop(key, None)
            continue
        current = original.get(key)
        if key not in original:
            current = {} if isinstance(value, dict) else [] if isinstance(value, list) else None
        elif type(current) is not type(value) and not (isinstance(current, int | float)
                                                         and isinstance(value, int | float)):
            original[key] = _strip(value, field_schema)
            continue
        original[key] = _merge_value(current, value, field_schema, merge_key, strategies, orders.get(key))
    for key, order in orders.items():
        current = original.get(key)
        if key not in patch and isinstance(current, list):
            _, merge_key, _ = _field_meta(schema, key)
            original[key] = _normalize_order(current, order, merge_key, server=current)
    return original


def _merge_value(current: Any, value: Any, schema: dict, merge_key: str, strategies: list[str],
                 order: list | None) -> Any:
    if isinstance(value, dict):
        if "replace" in strategies:
            return _strip(value, schema)
        return _merge_map(current, value, schema)
    if isinstance(value, list):
        if "merge" in strategies:
            return _merge_list(current, value, _items(schema), merge_key, order)
        return _strip(value, schema)
    return value


def _is_primitive(value: Any) -> bool:
    return not isinstance(value, dict | list)


def _merge_list(original: list, patch: list, item_schema: dict, merge_key: str, order: list | None) -> list:
    """`mergeSlice`: union lists of primitives, merge lists of objects by ``merge_key``; then order
    the result by ``order`` (`$setElementOrder`) or else by the patch list."""
    if not original and not patch:
        return original
    server = list(original)
    sample = next((v for v in [*patch, *original] if v is not None), None)
    if _is_primitive(sample):
        merged: list = []
        for value in [*original, *patch]:
            if not _is_primitive(value):
                raise PatchError(400, "unable to merge a list of primitives with a list of objects")
            if value not in merged:
                merged.append(value)
        _check_order(patch, order, "")
        return _normalize_order(merged, patch if order is None else order, "", server=server)
    return _normalize_order(_merge_object_list(original, patch, item_schema, merge_key, order),
                            [e for e in patch if isinstance(e, dict) and e.get(DIRECTIVE) != "delete"]
                            if order is None else order, merge_key, server=server)


def _check_order(patch: list, order: list | None, merge_key: str) -> None:
    """A `$setElementOrder` list must name the patch list's items in the same order."""
    if order is None:
        return
    patched = [_identity(e, merge_key) for e in patch
               if not (isinstance(e, dict) and e.get(DIRECTIVE) is not None)]
    ordered = [_identity(o, merge_key) for o in order]
    if [o for o in ordered if o in patched] != patched:
        raise PatchError(400, "invalid patch: the order of items in $setElementOrder doesn't match the "
                              "order of items in the patch list")


def _merge_object_list(original: list, patch: list, item_schema: dict, merge_key: str,
                       order: list | None) -> list:
    if not merge_key:
        raise PatchError(400, "cannot merge lists without merge key")
    remaining = []
    for element in patch:
        if not isinstance(element, dict):
            raise PatchError(400, f"invalid patch: list element {json.dumps(element)} is not an object")
        directive = element.get(DIRECTIVE)
        if directive == "replace":
            return [_strip(e, item_schema) for e in patch if e is not element]
        if directive == "delete":
            if merge_key not in element:
                raise PatchError(400, f"map: {json.dumps(element)} does not contain declared merge key: "
                                      f"{merge_key}")
            doomed = element[merge_key]
            for i, item in enumerate(original):
                if isinstance(item, dict) and item.get(merge_key) == doomed:
                    del original[i]
                    break
            continue
        if directive not in (None, "merge"):
            raise PatchError(400, f"Unable to find unknown directive {json.dumps(directive)} in "
                                  f"{json.dumps(element)}")
        remaining.append({k: v for k, v in element.items() if k != DIRECTIVE})
    _check_order(remaining, order, merge_key)
    for element in remaining:
        if merge_key not in element:
            raise PatchError(400, f"map: {json.dumps(element)} does not contain declared merge key: "
                                  f"{merge_key}")
        for i, item in enumerate(original):
            if isinstance(item, dict) and item.get(merge_key) == element[merge_key]:
                original[i] = _merge_map(item, element, item_schema)
                break
        else:
            original.append(_merge_map({}, element, item_schema))
    return original


def _identity(item: Any, merge_key: str) -> Any:
    if isinstance(item, dict) and merge_key:
        return json.dumps(item.get(merge_key))
    return json.dumps(item, sort_keys=True)


def _normalize_order(merged: list, order: list, merge_key: str, *, server: list) -> list:
    """`normalizeElementOrder`: items named in ``order`` follow it; the server's other items keep
    their place relative to the items they came after in ``server`` (the original list)."""

    def identity(item: Any) -> Any:
        return _identity(item, merge_key)

    order_ids = [identity(o) for o in order]
    server_order = [identity(m) for m in server]
    in_patch = sorted((m for m in merged if identity(m) in order_ids),
                      key=lambda m: order_ids.index(identity(m)))
    server_only = [m for m in merged if identity(m) not in order_ids]
    result: list = []
    i = j = 0
    while i < len(in_patch) or j < len(server_only):
        if i >= len(in_patch):
            result.append(server_only[j])
            j += 1
        elif j >= len(server_only):
            result.append(in_patch[i])
            i += 1
        else:
            left, right = identity(in_patch[i]), identity(server_only[j])
            if left in server_order and right in server_order \
                    and server_order.index(left) < server_order.index(right):
                result.append(in_patch[i])
                i += 1
            else:
                result.append(server_only[j])
                j += 1
    return result


def _strip(value: Any, schema: dict) -> Any:
    """A patch value taken as is, minus directives and nulls (the server ignores unmatched nulls)."""
    if isinstance(value, dict):
        result = {}
        for key, item in value.items():
            if key.startswith("$") or item is None:
                continue
            field_schema, _, _ = _field_meta(schema, key)
            result[key] = _strip(item, field_schema)
        return result
    if isinstance(value, list):
        items = _items(schema)
        return [_strip(v, items) for v in value
                if not (isinstance(v, dict) and v.get(DIRECTIVE) == "delete")]
    return value
