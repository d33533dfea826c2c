"""What a traffic run needs to know about the cluster while it runs, pushed from the watch hub.

Heatmap rows include ready pods that get no traffic (the point of two lessons: new pods behind
old keep-alive connections, and not-ready pods), and the heatmap marks cluster changes (a scale,
a rollout, a pod joining or leaving the endpoints). None of it is polled: :class:`TrafficFeed`
is a listener of the dashboard's watch hub (dashboard.hub). After every batch of changes the hub
applied it recomputes, from the hub's cache, the view of each followed run — the run's Service's
endpoint states, and the replicas and revision of the Deployments whose pods the Service's live
selector matches — and hands the view to the run only when it differs from the last one sent.

So a relist of 1,000 pods is one computation per run, not 1,000 messages, and nothing that
matters is lost: every distinct state reaches the run in order, through the run's own event
loop (``TrafficRun.cluster_update`` is the one hand-off point), never through the channel layer
with its bounded queues.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from dashboard import objects
from dashboard.cache import Change, ClusterCache

if TYPE_CHECKING:
    from dashboard.hub import Hub

log = logging.getLogger(__name__)

READY, NOT_READY, TERMINATING = objects.READY, objects.NOT_READY, objects.TERMINATING
# The kinds whose changes can change a run's view.
WATCHED = frozenset({"EndpointSlice", "Endpoints", "Deployment", "Service"})


@dataclass(frozen=True)
class ClusterView:
    """What a run knows of the cluster: endpoint pods with their state, and the Deployments
    behind the Service as name -> (desired replicas, revision)."""

    endpoints: dict[str, str]
    deployments: dict[str, tuple[int, str]]


def cluster_view(objs: Mapping[str, Iterable[Any]], *, service: str) -> ClusterView:
    """The view of one Service from cached objects (kind -> objects)."""
    slices, legacy = list(objs.get("EndpointSlice", [])), list(objs.get("Endpoints", []))
    found = next((s for s in objs.get("Service", []) if objects.name(s) == service), None)
    selector = objects.selector_from_map(objects.spec(found).get("selector")) if found else objects.NOTHING
    deployments = {}
    for deployment in objs.get("Deployment", []):
        template = objects.mapping(objects.spec(deployment).get("template"))
        if selector.selects(template):
            revision = objects.revision(deployment)
            deployments[objects.name(deployment)] = (objects.count(objects.spec(deployment).get("replicas")),
                                                     "" if revision is None else str(revision))
    return ClusterView(endpoints=objects.endpoint_states(slices, legacy, service), deployments=deployments)


def describe_changes(before: ClusterView | None, after: ClusterView,
                     endpoint_changes: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Heatmap marks for what changed between two views, as (kind, label) pairs."""
    marks: list[tuple[str, str]] = []
    if before is not None:
        for name, (replicas, revision) in after.deployments.items():
            old = before.deployments.get(name)
            if old is None:
                continue
            if old[0] != replicas:
                marks.append(("scale", f"{name} scaled {old[0]}→{replicas}"))
            if old[1] and old[1] != revision:
                marks.append(("rollout", f"{name} rollout (revision {revision})" if revision
                              else f"{name} rollout"))
    labels = {"added": ("pod", "{} added"), READY: ("ready", "{} ready"),
              NOT_READY: ("unready", "{} not ready"), TERMINATING: ("kill", "{} terminating"),
              "gone": ("gone", "{} gone")}
    for pod, what in endpoint_changes:
        kind, label = labels.get(what, ("pod", "{} " + what))
        marks.append((kind, label.format(pod)))
    return marks


class Follower(Protocol):
    """A run as the feed sees it."""

    @property
    def service(self) -> str | None:
        """The Service whose endpoints the run follows (None: no Service, nothing to follow)."""

    @property
    def active(self) -> bool:
        """False once the run has ended."""

    def cluster_update(self, view: ClusterView) -> None:
        """Take a new view (called on the hub's loop; must hand over, never block)."""


class TrafficFeed:
    """The hub listener that keeps every running traffic run's cluster view current."""

    def __init__(self, cache: ClusterCache) -> None:
        self.cache = cache
        self._followers: dict[int, tuple[Follower, ClusterView | None]] = {}

    def follow(self, run: Follower) -> None:
        """Start feeding a run (on the hub's loop): it gets the current view at once."""
        if run.service:
            self._followers[id(run)] = (run, None)
            self._push(run)

    def unfollow(self, run: Follower) -> None:
        """Stop feeding a run."""
        self._followers.pop(id(run), None)

    @property
    def following(self) -> int:
        """How many runs are fed."""
        return len(self._followers)

    def on_changes(self, changes: list[Change], cache: ClusterCache) -> None:
        """The hub's listener: after a batch that touched a watched kind, push what changed."""
        if not any(change.kind in WATCHED for change in changes):
            return
        for run, _ in list(self._followers.values()):
            self._push(run)

    def _push(self, run: Follower) -> None:
        if not run.active:
            self.unfollow(run)
            return
        snapshot = {kind: self.cache.objects.get(kind, {}).values() for kind in WATCHED}
        view = cluster_view(snapshot, service=run.service or "")
        _, last = self._followers.get(id(run), (run, None))
        if view != last:
            self._followers[id(run)] = (run, view)
            run.cluster_update(view)


_feeds: weakref.WeakKeyDictionary[Hub, TrafficFeed] = weakref.WeakKeyDictionary()


def feed_for(hub: Hub) -> TrafficFeed:
    """The hub's traffic feed, registered as its listener on first use (call on the hub's loop)."""
    feed = _feeds.get(hub)
    if feed is None:
        feed = _feeds[hub] = TrafficFeed(hub.cache)
        hub.add_listener(feed.on_changes)
    return feed
