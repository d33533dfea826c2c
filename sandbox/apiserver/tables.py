"""Server-side Tables (`meta.k8s.io/v1` Table), the form every `kubectl get` asks for.

kubectl sends `Accept: application/json;as=Table;v=v1;g=meta.k8s.io` and prints the columns the
server returns; without them it prints only NAME and AGE. This module is the generic part of
`pkg/printers/internalversion/printers.go` and the TableConvertor: each kind's strategy
(`kinds/<kind>.py`) declares its column definitions (names, types, descriptions taken from the
official schemas, priority 1 for the `-o wide` columns) and computes its cells, notably
printPod's STATUS (ContainerCreating, CrashLoopBackOff, Init:1/2, Completed, Terminating, ...)
and RESTARTS with "(5m ago)"; the shared formatting (kubectl's HumanDuration ages, labels,
selectors) is in `printing.py`.

Like the real server (whose TableConvertor always generates with `Wide: true`), every row has
every column; kubectl hides priority>0 columns unless `-o wide`. In a watch, the first event's
Table carries the column definitions and later ones carry `"columnDefinitions": null`
(`watchEmbeddedEncoder` sets NoHeaders after the first object); `watch_event_table` builds both.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from sandbox.apiserver.kinds.endpoints import format_endpoints
from sandbox.apiserver.kinds.pod import pod_status_cells
from sandbox.apiserver.printing import get_path, human_duration
from sandbox.apiserver.resources import for_plural
from sandbox.apiserver.strategy import Strategy

__all__ = ["column_definitions", "format_endpoints", "human_duration", "partial_object_metadata",
           "pod_status_cells", "table_for", "table_row", "table_supported", "watch_event_table"]

_GENERIC = Strategy()


def _strategy(plural: str) -> Strategy:
    return for_plural(plural) or _GENERIC


def table_supported(plural: str) -> bool:
    """Whether ``plural`` has a printer (every served kind has one; others get Name/Created At)."""
    return for_plural(plural) is not None


def column_definitions(plural: str) -> list[dict[str, Any]]:
    """The Table columns the real server declares for ``plural``."""
    return _strategy(plural).columns()


def partial_object_metadata(obj: Mapping[str, Any]) -> dict[str, Any]:
    """An object as `PartialObjectMetadata` (what rows carry for `includeObject=Metadata`)."""
    return {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
            "metadata": dict(obj.get("metadata") or {})}


def table_row(plural: str, obj: dict, *, include_object: str = "Metadata",
              now: datetime | None = None) -> dict:
    """One Table row for ``obj``: its cells, row conditions and embedded object."""
    now = now or datetime.now(UTC)
    strategy = _strategy(plural)
    row: dict[str, Any] = {"cells": strategy.row(obj, now)}
    conditions = strategy.row_conditions(obj)
    if conditions:
        row["conditions"] = conditions
    if include_object == "Object":
        row["object"] = obj
    elif include_object == "None":
        row["object"] = None
    else:
        row["object"] = partial_object_metadata(obj)
    return row


def table_for(plural: str, objects: list[dict], *, wide: bool = True, include_object: str = "Metadata",
              resource_version: str = "", headers: bool = True) -> dict:
    """A `meta.k8s.io/v1` Table of ``objects``. ``wide`` is accepted for symmetry with kubectl
    but, as on the real server, rows always carry every column. ``headers=False`` gives the
    `"columnDefinitions": null` form used after the first event of a watch."""
    now = datetime.now(UTC)
    metadata: dict[str, Any] = {"resourceVersion": resource_version} if resource_version else {}
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": metadata,
        "columnDefinitions": column_definitions(plural) if headers else None,
        "rows": [table_row(plural, obj, include_object=include_object, now=now) for obj in objects],
    }


def watch_event_table(plural: str, obj: dict, *, first: bool, include_object: str = "Metadata") -> dict:
    """The Table a watch event carries for ``obj`` (ADDED/MODIFIED/DELETED): the first event of a
    stream has the column definitions, later ones `null`, as `watchEmbeddedEncoder` does."""
    version = str(get_path(obj, "metadata", "resourceVersion") or "")
    return table_for(plural, [obj], include_object=include_object, resource_version=version, headers=first)
