"""The resource registry: every kind the sandbox API server serves, looked up by URL, key or kind.

Each kind is described once, in its module under `kinds/` (its `Resource` entry and its
`Strategy`); routing, discovery documents, the store's key space, OpenAPI, Tables and field
selectors are all derived from those entries, so serving another kind is one more module.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

from sandbox.apiserver.kinds import STRATEGIES
from sandbox.apiserver.strategy import ALL_VERBS, SUB_VERBS, Resource, Strategy, Version

__all__ = ["ALL_VERBS", "BY_KEY", "BY_KIND", "BY_PATH", "RESOURCES", "SUB_VERBS", "Resource", "by_kind",
           "for_plural", "from_stored", "group_versions", "lookup", "stored", "strategy_for", "to_stored"]


def _served(strategy: Strategy) -> Iterator[Resource]:
    """A kind's resource at its stored version, then at each other version it is served at
    (same plural and store key, its own schema definition)."""
    yield strategy.resource
    for version in strategy.versions:
        yield dataclasses.replace(strategy.resource, version=version.version, definition=version.definition,
                                  storage=strategy.resource.version)


RESOURCES: tuple[Resource, ...] = tuple(r for s in STRATEGIES for r in _served(s))

BY_PATH: dict[tuple[str, str, str], Resource] = {(r.group, r.version, r.plural): r for r in RESOURCES}
# The store's key space: one entry per kind, its stored version.
BY_KEY: dict[str, Resource] = {s.resource.key: s.resource for s in STRATEGIES}
BY_KIND: dict[tuple[str, str], Resource] = {(r.api_version, r.kind): r for r in RESOURCES}
_STRATEGIES: dict[str, Strategy] = {s.resource.key: s for s in STRATEGIES}
# Plurals are unique among stored kinds; metrics.k8s.io reuses "pods" and "nodes" for computed
# read-only resources, so the first (stored) kind keeps the plural.
_BY_PLURAL: dict[str, Strategy] = {}
for _strategy in STRATEGIES:
    _BY_PLURAL.setdefault(_strategy.resource.plural, _strategy)


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


def strategy_for(res: Resource) -> Strategy:
    """The strategy of a served resource."""
    return _STRATEGIES[res.key]


def for_plural(plural: str) -> Strategy | None:
    """The strategy of the kind whose plural is ``plural`` (plurals are unique here), or None."""
    return _BY_PLURAL.get(plural)


def _version(res: Resource) -> Version:
    return next(v for v in strategy_for(res).versions if v.version == res.version)


def stored(res: Resource) -> Resource:
    """The resource at the version its objects are stored at (``res`` itself when it is that)."""
    return BY_KEY[res.key] if res.storage else res


def to_stored(res: Resource, obj: dict) -> dict:
    """An object sent at ``res``'s version, converted to the stored version."""
    return _version(res).to_stored(obj) if res.storage else obj


def from_stored(res: Resource, obj: dict) -> dict:
    """A stored object as ``res``'s version serves it."""
    return _version(res).from_stored(obj) if res.storage else obj
