"""What the open pages are sent: the page's sections, a snapshot, then deltas as htmx OOB swaps.

**Sections.** The live page is a list of sections (:data:`SECTIONS`), each one partial under
``templates/dashboard/`` rendered from the cache. A feature adds its own with
:func:`register_section` (a name, the partial's element id, the kinds whose changes re-render
it, and a function from a :class:`ViewInput` to the partial's context) and places
``{{ sections.<name> }}`` in ``index.html``: the first page load, every snapshot and every
delta then render it through the same code. A section whose context or template raises is
logged (the traceback once, then one line a minute while it keeps failing) and replaced by an
error box with the section's element id; the page status names the broken sections. One bad
cluster object therefore never breaks the page, the other sections or the stream.

**One renderer for every viewer.** A :class:`FrameBuilder` remembers what the pages currently
show (each pod card, each node group's heading, a digest of every other section) and turns a
batch of cache changes into the smallest set of swaps:

- a section whose kinds changed is re-rendered whole, and sent only if its HTML changed;
- the pod sections are groups (node and ReplicaSet; app label outside the selector) showing
  their first cards and counting the rest (dashboard.podgroups, whose PodPanes is this
  builder's memory of them): a changed pod is its card replaced in place, plus its group's
  heading when a count changed; a card enters or leaves a group's window when membership
  changes; a deleted one is replaced by a "leaving" copy the page's script fades out;
- a Node change re-renders that node's heading only; the pod sections are rebuilt only when the
  set of node groups changes.

A snapshot (a page connecting, a resync) costs what changed since the last one: the builder
remembers every pod's card (:class:`CardMemo`) and the topology its pod nodes across snapshots.

:class:`ViewStream` owns the process's one builder: every change is rendered once, in one
worker thread of its own (templates never stall the event loop, and never wait behind the
blocking I/O of other features), into a :class:`Frame` whose messages — the same ``str``
objects — go to every socket that shows the same view (dashboard.consumers). Recent frames
stay in a bounded ring, so a socket that lags a little catches up from the ring and one that
lags a lot gets a snapshot.

**Message size.** daphne refuses websocket messages over 1 MiB (LBDEMO_WS_MESSAGE_LIMIT), so
a snapshot or frame is a list of messages, each below the limit: the pod sections are sent as
their skeleton plus their groups appended one by one. While a snapshot arrives in
several messages the status says "loading"; only its last message says "live".
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import ctypes
import ctypes.util
import gc
import hashlib
import itertools
import logging
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import Any

from django.conf import settings
from django.template.loader import render_to_string
from django.utils.safestring import SafeString, mark_safe

from dashboard import beyond, collector, objects, podgroups, presenters, topology
from dashboard.cache import Change, Obj
from dashboard.objects import Selector
from dashboard.presenters import PodCard, Scope
from dashboard.timeline import Healing

log = logging.getLogger(__name__)

ENDPOINT_KINDS = frozenset({"EndpointSlice", "Endpoints"})
# The pod sections follow pods, nodes, endpoints and the Service (its selector decides which
# pods are "selected").
POD_KINDS = frozenset({"Pod", "Node", "Service"}) | ENDPOINT_KINDS
ANY_KIND = "*"
# Room kept in every message for the status element.
STATUS_RESERVE = 4096
# The status text of an unhealthy hub that cannot say more (a test double).
UNHEALTHY = "reaching the cluster…"
# A section that keeps failing is logged again at most this often (seconds).
ERROR_LOG_INTERVAL = 60.0


def settings_scope() -> Scope:
    """The namespace, Deployment, Service and selector the dashboard is configured for."""
    return Scope(namespace=settings.LBDEMO_NAMESPACE, deployment=settings.LBDEMO_DEPLOYMENT,
                 service=settings.LBDEMO_SERVICE, max_replicas=settings.LBDEMO_MAX_REPLICAS,
                 selector=objects.parse_selector(settings.LBDEMO_SELECTOR))


def message_limit() -> int:
    """The largest websocket message the transport accepts, in bytes."""
    return int(getattr(settings, "LBDEMO_WS_MESSAGE_LIMIT", 1024 * 1024))


PodCards = list[PodCard]


class CardMemo:
    """Pod cards by name, reused while the pod's resourceVersion, the selector and its endpoint
    state are the same: a snapshot at 10,000 pods (a page connecting, a resync) reads every pod's
    card for its group, and most are what the last snapshot built. A remembered card's AGE is
    the one it was built with: the cards a snapshot shows get theirs anew (PodPanes). One thread
    at a time (the stream's render worker); pods that are gone are dropped past PRUNE_AT."""

    PRUNE_AT = 256

    def __init__(self) -> None:
        self._cards: dict[str, tuple[str, Selector, str, PodCard]] = {}

    def cards(self, view: ViewInput) -> PodCards:
        """Every pod's card, oldest first (see ViewInput.cards)."""
        selector, endpoints, memo = view.selector, view.endpoint_states, self._cards

        def card(pod: Obj) -> PodCard:
            meta = objects.metadata(pod)
            name, rv = objects.text(meta.get("name")), objects.text(meta.get("resourceVersion"))
            endpoint = endpoints.get(name, "none")
            known = memo.get(name)
            if known is not None and rv and known[0] == rv and known[2] == endpoint and known[1] == selector:
                return known[3]
            built = view.card(pod)
            if rv:
                memo[name] = (rv, selector, endpoint, built)
            return built

        cards = presenters.each(card, sorted(view.list("Pod"), key=presenters.created_key), "pod")
        if len(memo) > len(cards) + self.PRUNE_AT:
            live = {c.name for c in cards}
            self._cards = {k: v for k, v in memo.items() if k in live}
        return cards
NodePanes = list[podgroups.NodePane]
AppGroups = list[podgroups.PodGroup]


class ViewInput:
    """One consistent state of the cache as the sections read it (plain data: any thread)."""

    def __init__(self, objects: Mapping[str, list[Obj]], *, seq: int, scope: Scope, now: datetime,
                 timeline: list[Healing], synced: bool = True, trouble: str = "",
                 pods_by_name: dict[str, Obj] | None = None, source: str = "",
                 card_memo: CardMemo | None = None) -> None:
        self.objects = objects
        self.card_memo = card_memo
        # The hub's epoch the objects come from: page loads reuse what they read of unchanged
        # pods from the same cluster (podgroups.FACTS, topology.page_graph); '' reads afresh.
        self.source = source
        if pods_by_name is not None:  # the cache's own index, copied with the snapshot
            self.__dict__["pods_by_name"] = pods_by_name
        self.seq = seq
        self.scope = scope
        self.now = now
        self.timeline = timeline
        self.synced = synced
        self.trouble = trouble

    def list(self, kind: str) -> list[Obj]:
        """All objects of a kind."""
        return self.objects.get(kind) or []

    @cached_property
    def pods_by_name(self) -> dict[str, Obj]:
        """Pods by name."""
        return {str((p.get("metadata") or {}).get("name") or ""): p for p in self.list("Pod")}

    @cached_property
    def endpoint_states(self) -> dict[str, str]:
        """Pod name -> endpoint condition, for the configured Service."""
        return presenters.endpoint_states(self.list("EndpointSlice"), self.list("Endpoints"),
                                          self.scope.service)

    @cached_property
    def selector(self) -> Selector:
        """The pods the page calls "selected": the live Service's selector, else LBDEMO_SELECTOR."""
        return presenters.effective_selector(self.list("Service"), self.scope)

    def card(self, pod: Obj) -> PodCard:
        """The card of one pod."""
        return presenters.pod_card(pod, now=self.now, selector=self.selector, endpoints=self.endpoint_states)

    @cached_property
    def cards(self) -> PodCards:
        """Every pod's card, oldest first (a pod that cannot be shown is logged and left out),
        from ``card_memo`` when the pod, the selector and its endpoint state are unchanged."""
        if self.card_memo is None:
            return presenters.pod_cards(self.list("Pod"), now=self.now, selector=self.selector,
                                        endpoints=self.endpoint_states)
        return self.card_memo.cards(self)

    @cached_property
    def pod_layout(self) -> podgroups.Layout:
        """Both pod sections, windowed, with cards for the windows only (dashboard.podgroups)."""
        return podgroups.page_layout(self)

    @property
    def node_panes(self) -> NodePanes:
        """The selected pods by node and owner, windowed."""
        return self.pod_layout.nodes

    @property
    def app_groups(self) -> AppGroups:
        """The pods outside the selector by app label, windowed."""
        return self.pod_layout.others


@dataclass(frozen=True)
class Section:
    """One part of the live page: a partial, its element id and where its context comes from."""

    name: str
    dom_id: str
    template: str
    label: str
    kinds: frozenset[str]
    context: Callable[[ViewInput], dict[str, Any]]
    # Pod sections (cards in groups) are sent card by card, not re-rendered whole.
    pods: bool = False
    # A section whose element keeps state in the page's script (the topology graph) is sent as
    # patches instead: ``state(scope)`` makes the stream's memory of it, an object with
    # ``snapshot(view) -> context`` and ``delta(view, kinds, changes=...) -> context | None``
    # (None: nothing to send; ``changes`` lets it skip work the changes cannot affect) for
    # ``stream_template`` (the element frames replace). The page load still uses ``template``
    # and ``context``.
    state: Callable[[Scope], Any] | None = None
    stream_template: str = ""


SECTIONS: list[Section] = []


def register_section(section: Section, *, before: str | None = None) -> Section:
    """Add a section to the live page (replacing one of the same name); see the module docstring."""
    names = [s.name for s in SECTIONS]
    if section.name in names:
        SECTIONS[names.index(section.name)] = section
        return section
    if before is not None and before in names:
        SECTIONS.insert(names.index(before), section)
    else:
        SECTIONS.append(section)
    return section


def _deployment(v: ViewInput) -> dict[str, Any]:
    return {"deployment": presenters.deployment_view(v.list("Deployment"), name=v.scope.deployment,
                                                     max_replicas=v.scope.max_replicas)}


def _topology_page(v: ViewInput) -> dict[str, Any]:
    graph = topology.page_graph(v.objects, scope=v.scope, source=v.source)
    return {"seq": v.seq, "payload": topology.encode(topology.reset_payload(graph, seq=v.seq))}


def _service(v: ViewInput) -> dict[str, Any]:
    return {"service": presenters.service_view(v.list("Service"), name=v.scope.service,
                                               slices=v.list("EndpointSlice"), endpoints=v.list("Endpoints"))}


for _section in (
    Section("deployment", "deployment", "dashboard/_deployment.html", "Deployment",
            frozenset({"Deployment"}), _deployment),
    Section("replicasets", "replicasets", "dashboard/_replicasets.html", "ReplicaSets",
            frozenset({"ReplicaSet"}),
            lambda v: {"replicasets": presenters.replicaset_views(v.list("ReplicaSet"),
                                                                  deployment=v.scope.deployment)}),
    Section("selector", "pods-selector", "dashboard/_selector.html", "Service selector",
            frozenset({"Service"}), lambda v: {"selector": presenters.selector_text(v.selector)}),
    Section("nodes", "nodes", "dashboard/_nodes.html", "pods by node", POD_KINDS,
            lambda v: {"nodes": v.node_panes}, pods=True),
    Section("other_pods", "other-pods", "dashboard/_other_pods.html", "pods outside the selector",
            POD_KINDS, lambda v: {"groups": v.app_groups}, pods=True),
    # The Service card shows targetPorts the endpoints resolve, hence the endpoint kinds.
    Section("service", "service", "dashboard/_service.html", "Service",
            frozenset({"Service"}) | ENDPOINT_KINDS, _service),
    Section("endpoints", "endpoints", "dashboard/_endpoints.html", "endpoints", ENDPOINT_KINDS,
            lambda v: {"endpoints": presenters.endpoints_view(v.list("EndpointSlice"), v.list("Endpoints"),
                                                              service=v.scope.service)}),
    # Ingress and autoscaling panels (dashboard.beyond): the HPA panel shows its last rescale Event.
    Section("ingresses", "ingresses", "dashboard/_ingresses.html", "Ingress", frozenset({"Ingress"}),
            lambda v: {"ingresses": beyond.ingress_views(v.list("Ingress"), now=v.now)}),
    Section("hpas", "hpas", "dashboard/_hpas.html", "autoscaling",
            frozenset({"HorizontalPodAutoscaler", "Event"}),
            lambda v: {"hpas": beyond.hpa_views(v.list("HorizontalPodAutoscaler"), v.list("Event"),
                                                now=v.now)}),
    Section("timeline", "timeline", "dashboard/_timeline.html", "self-healing timeline",
            frozenset({"Pod", "Node"}) | ENDPOINT_KINDS,
            lambda v: {"timeline": presenters.healing_views(v.timeline)}),
    Section("events", "events", "dashboard/_events.html", "events", frozenset({"Event"}),
            lambda v: {"events": presenters.event_views(v.list("Event"), now=v.now)}),
    # The traffic panel's warning: endpoints on simulated nodes serve no traffic (dashboard.podgroups).
    Section("simulated_endpoints", "simulated-endpoints", "dashboard/_simulated_endpoints.html",
            "simulated endpoints", frozenset({"Node", "Service"}) | ENDPOINT_KINDS,
            lambda v: {"lines": podgroups.simulated_endpoint_lines(v)}),
    Section("topology", "topology-panel", "dashboard/_topology.html", "topology", topology.GRAPH_KINDS,
            _topology_page, state=topology.TopologyState, stream_template="dashboard/_topology_patch.html"),
):
    register_section(_section)


# What was last logged for each failing section, shared by every renderer of the process (the
# stream's and each page load's), so one broken object is one traceback, not one per request.
_logged: dict[str, tuple[str, float]] = {}


class SectionErrors:
    """Which sections failed in their last render, and the rate-limited logging of failures."""

    def __init__(self) -> None:
        self.failing: dict[str, str] = {}
        self._logged = _logged

    def failed(self, section: Section, exc: BaseException) -> None:
        """Record (and log, rate-limited) a failed render."""
        text = f"{type(exc).__name__}: {exc}"[:300]
        last = self._logged.get(section.name)
        now = time.monotonic()
        if last is None or last[0] != text:
            log.error("the %s section failed to render (%s); the page shows an error there",
                      section.label, text, exc_info=exc)
            self._logged[section.name] = (text, now)
        elif now - last[1] >= ERROR_LOG_INTERVAL:
            log.error("the %s section still fails to render (%s)", section.label, text)
            self._logged[section.name] = (text, now)
        self.failing[section.name] = section.label

    def ok(self, section: Section) -> None:
        """Record a successful render."""
        logged = self._logged.pop(section.name, None)
        if self.failing.pop(section.name, None) is not None and logged is not None:
            log.info("the %s section renders again", section.label)

    def labels(self) -> list[str]:
        """Labels of the failing sections, in page order."""
        order = [s.name for s in SECTIONS]
        rank = {name: i for i, name in enumerate(order)}
        return [self.failing[n] for n in sorted(self.failing, key=lambda n: rank.get(n, len(rank)))]


def render_section(section: Section, view: ViewInput, errors: SectionErrors, *, oob: bool,
                   extra: dict[str, Any] | None = None) -> str:
    """One section's HTML, or its error box if building or rendering it fails."""
    flag = "true" if oob else ""
    try:
        context = section.context(view)
        html = render_to_string(section.template, {**context, **(extra or {}), "oob": flag})
    except Exception as exc:
        errors.failed(section, exc)
        return error_box(section, oob=oob)
    errors.ok(section)
    return html


def error_box(section: Section, *, oob: bool, reason: str = "") -> str:
    """The box that stands in for a section that cannot be shown."""
    return render_to_string("dashboard/_section_error.html", {
        "dom_id": section.dom_id, "label": section.label, "reason": reason, "oob": "true" if oob else ""})


def health_of(hub: Any) -> str:
    """"" while the hub is healthy, else what the page's status says instead of "live" (a silent
    API server and a failing watch are told apart by the hub)."""
    if hub.healthy:
        return ""
    return str(getattr(hub, "trouble", "") or UNHEALTHY)


def status_html(*, seq: int, pod_count: int, synced: bool, errors: list[str], oob: bool = True,
                loading: str = "", trouble: str = "") -> str:
    """The live indicator, carrying the sequence number the message brings the page to."""
    return render_to_string("dashboard/_status.html", {
        "seq": seq, "pod_count": pod_count, "synced": synced, "errors": errors, "loading": loading,
        "trouble": trouble or UNHEALTHY, "oob": "true" if oob else ""})


def page_sections(view: ViewInput, errors: SectionErrors | None = None) -> tuple[dict[str, SafeString], str]:
    """Every section rendered for the first page load (not out-of-band), and the status element."""
    errors = errors or SectionErrors()
    with objects.printing_once():
        sections = {s.name: mark_safe(render_section(s, view, errors, oob=False)) for s in SECTIONS}
    status = status_html(seq=view.seq, pod_count=len(view.list("Pod")), synced=view.synced,
                         errors=errors.labels(), oob=False, trouble=view.trouble)
    return sections, mark_safe(status)


def _size(text: str) -> int:
    return len(text.encode("utf-8"))


def pack(pieces: Iterable[str], *, limit: int) -> list[str]:
    """Concatenate pieces into as few messages as fit below ``limit`` bytes (order kept)."""
    messages: list[str] = []
    current: list[str] = []
    size = 0
    for piece in pieces:
        n = _size(piece)
        if current and size + n > limit:
            messages.append("".join(current))
            current, size = [], 0
        current.append(piece)
        size += n
    if current:
        messages.append("".join(current))
    return messages


def _digest(html: str) -> bytes:
    return hashlib.blake2b(html.encode("utf-8"), digest_size=16).digest()


@dataclass
class FrameBuilder:
    """Memory of what the pages show, turning cache changes into swaps. Not thread-safe: one
    builder is used by one thread at a time (the stream's render worker, or a test)."""

    scope: Scope
    limit: int = field(default_factory=message_limit)
    pods: podgroups.PodPanes = field(default_factory=podgroups.PodPanes)
    shown: dict[str, bytes] = field(default_factory=dict)
    errors: SectionErrors = field(default_factory=SectionErrors)
    states: dict[str, Any] = field(default_factory=dict)
    selector: Selector | None = None
    seq: int | None = None
    cards: CardMemo = field(default_factory=CardMemo)

    @property
    def budget(self) -> int:
        """Bytes of one message available to sections (the status is added to each)."""
        return max(1024, self.limit - STATUS_RESERVE)

    def view(self, objects: Mapping[str, list[Obj]], *, seq: int, now: datetime,
             timeline: list[Healing], synced: bool = True, trouble: str = "",
             pods_by_name: dict[str, Obj] | None = None, source: str = "") -> ViewInput:
        """The input of one render (its cards from this builder's memo)."""
        return ViewInput(objects, seq=seq, scope=self.scope, now=now, timeline=timeline, synced=synced,
                         trouble=trouble, pods_by_name=pods_by_name, source=source, card_memo=self.cards)

    def _status(self, view: ViewInput, *, loading: str = "") -> str:
        return status_html(seq=view.seq, pod_count=len(view.list("Pod")), synced=view.synced and not loading,
                           errors=self.errors.labels(), loading=loading, trouble=view.trouble)

    # --- snapshot ------------------------------------------------------------------------------
    def snapshot(self, view: ViewInput) -> list[str]:
        """The whole page as messages below the limit; resets what the pages are known to show."""
        with objects.printing_once():
            return self._snapshot(view)

    def _snapshot(self, view: ViewInput) -> list[str]:
        self.pods, self.shown = podgroups.PodPanes(), {}
        pieces: list[str] = []
        # Stateful sections keep their state (the topology's memo of pod nodes): a snapshot
        # replaces what they show, not what they remember.
        self.selector = view.selector
        for section in SECTIONS:
            if section.pods:
                pieces.extend(self._pod_section_pieces(section, view))
            elif section.state is not None:
                pieces.extend(self._patch(section, view, None))
            else:
                pieces.append(self._whole(section, view))
        self.seq = view.seq
        return self._messages(pieces, view, snapshot=True)

    def _patch(self, section: Section, view: ViewInput, kinds: set[str] | None,
               changes: list[Change] | None = None) -> list[str]:
        """A stateful section's snapshot (``kinds`` None) or patch; nothing if it failed (the
        status names it) or has nothing to send."""
        try:
            state = self.states.get(section.name)
            if state is None:
                state = self.states[section.name] = section.state(self.scope)  # type: ignore[misc]
                context = state.snapshot(view)
            else:
                context = (state.snapshot(view) if kinds is None
                           else state.delta(view, kinds, changes=changes))
            if context is None:
                return []
            html = render_to_string(section.stream_template or section.template, {**context, "oob": "true"})
        except Exception as exc:
            self.errors.failed(section, exc)
            self.states.pop(section.name, None)  # start over from a snapshot of it
            return []
        self.errors.ok(section)
        if _size(html) > self.budget:
            log.error("the %s section's update is %d bytes, more than a websocket message may carry",
                      section.label, _size(html))
            self.errors.failing[section.name] = section.label
            self.states.pop(section.name, None)
            return []
        return [html]

    def _whole(self, section: Section, view: ViewInput) -> str:
        """A section rendered whole, or its error box when it does not fit in a message."""
        html = render_section(section, view, self.errors, oob=True)
        if _size(html) > self.budget:
            log.error("the %s section is %d bytes, more than a websocket message may carry", section.label,
                      _size(html))
            self.errors.failing[section.name] = section.label
            html = error_box(section, oob=True, reason="too large to show")
        self.shown[section.name] = _digest(html)
        return html

    def _pod_section_pieces(self, section: Section, view: ViewInput) -> list[str]:
        """A pod section as its skeleton (node panes, no groups) plus its groups appended."""
        skeleton = render_section(section, view, self.errors, oob=True, extra={"skeleton": True})
        if section.name in self.errors.failing:
            return [skeleton]
        return self.pods.section_pieces(section.name, skeleton, view)

    def _messages(self, pieces: list[str], view: ViewInput, *, snapshot: bool) -> list[str]:
        """Pack pieces into messages, each ending with a status; only the last one says "live"."""
        messages = pack(pieces, limit=self.budget)
        if not messages:
            return [self._status(view)]
        if len(messages) == 1:
            return [messages[0] + self._status(view)]
        total = len(messages)
        out = []
        for i, message in enumerate(messages[:-1]):
            loading = f"loading {i + 1}/{total}" if snapshot else f"updating {i + 1}/{total}"
            out.append(message + self._status(view, loading=loading))
        out.append(messages[-1] + self._status(view))
        return out

    # --- deltas --------------------------------------------------------------------------------
    def delta(self, changes: list[Change], view: ViewInput, *, status: bool = True) -> list[str]:
        """Messages that bring the pages from the last frame to ``view`` ([] if nothing shows a
        difference and ``status`` is false)."""
        with objects.printing_once():
            return self._delta(changes, view, status=status)

    def _delta(self, changes: list[Change], view: ViewInput, *, status: bool) -> list[str]:
        kinds = {c.kind for c in changes}
        pieces: list[str] = []
        for section in SECTIONS:
            if not (section.kinds & kinds or ANY_KIND in section.kinds):
                continue
            if section.pods:
                continue
            if section.state is not None:
                pieces.extend(self._patch(section, view, kinds, changes))
                continue
            html = render_section(section, view, self.errors, oob=True)
            digest = _digest(html)
            if self.shown.get(section.name) == digest:
                continue
            if _size(html) > self.budget:
                html = error_box(section, oob=True, reason="too large to show")
                self.errors.failing[section.name] = section.label
            self.shown[section.name] = digest
            pieces.append(html)
        if kinds & POD_KINDS:
            pieces[:0] = self._pod_pieces(changes, view, kinds)
        self.seq = view.seq
        if not pieces and not status:
            return []
        return self._messages(pieces, view, snapshot=False)

    def _pod_pieces(self, changes: list[Change], view: ViewInput, kinds: set[str]) -> list[str]:
        """Swaps for pod cards, groups and node headings (dashboard.podgroups), guarded like a
        section: a failure shows an error."""
        sections = [s for s in SECTIONS if s.pods]
        try:
            pieces = self.pods.delta(changes, view, kinds)
        except Exception as exc:
            for section in sections:
                self.errors.failed(section, exc)
            self.pods = podgroups.PodPanes()
            return [error_box(s, oob=True) for s in sections]
        if pieces is None or any(s.name in self.errors.failing for s in sections):
            # Another selector, another set of nodes, or it works again: rebuild both sections.
            self.pods = podgroups.PodPanes()
            return [p for s in sections for p in self._pod_section_pieces(s, view)]
        return pieces


RELEASE_AFTER = 5.0  # s after the last viewer left


def release_memory() -> None:
    """Collect garbage and hand freed heap pages back to the OS (glibc's ``malloc_trim``).

    A class of 200 viewers leaves ~10 MiB of freed socket buffers and frame copies in the
    allocator's free lists, which CPython and glibc keep; without this the process stays at its
    peak after the load (bench/viewers.py's "after" column). Elsewhere than glibc only the
    collection runs. Objects dashboard.collector froze are not walked: with 10,000 pods cached
    that walk stalled every page for a second or more; their cycles wait for its periodic thaw."""
    gc.collect()
    if _LIBC is not None:
        _LIBC.malloc_trim(0)


def _glibc() -> Any:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
    except OSError:
        return None
    return libc if libc is not None and hasattr(libc, "malloc_trim") else None


_LIBC = _glibc()


class SharedText(str):
    """A message sent to many sockets, its UTF-8 bytes encoded once: daphne sends every text
    message with ``text.encode("utf8")``, which for a plain ``str`` would encode the same frame
    again for each of hundreds of pages."""

    utf8: bytes

    def __new__(cls, text: str) -> SharedText:
        """Wrap ``text`` and encode it once."""
        obj = super().__new__(cls, text)
        obj.utf8 = text.encode("utf-8")
        return obj

    def encode(self, encoding: str = "utf-8", errors: str = "strict") -> bytes:
        """The cached bytes for UTF-8, else what ``str.encode`` gives."""
        if errors == "strict" and encoding.lower().replace("-", "").replace("_", "") == "utf8":
            return self.utf8
        return str.encode(self, encoding, errors)


def shared(messages: Iterable[str]) -> tuple[SharedText, ...]:
    """Messages as :class:`SharedText`, for frames and snapshots every socket sends."""
    return tuple(m if isinstance(m, SharedText) else SharedText(m) for m in messages)


@dataclass(frozen=True)
class Frame:
    """Messages bringing the pages from frame ``index - 1`` to ``index`` (cache sequence ``seq``)."""

    index: int
    seq: int
    messages: tuple[str, ...]
    size: int

    @cached_property
    def sizes(self) -> tuple[int, ...]:
        """UTF-8 size of each message (computed once, for every socket)."""
        return tuple(len(m.utf8) if isinstance(m, SharedText) else _size(m) for m in self.messages)

    def entries(self) -> list[tuple[int, str, int]]:
        """``(seq, message, size)`` for each message, as a socket queues them."""
        return [(self.seq, m, n) for m, n in zip(self.messages, self.sizes, strict=True)]


@dataclass(frozen=True)
class Snapshot:
    """The whole page at frame ``index`` (cache sequence ``seq``), as messages."""

    index: int
    seq: int
    messages: tuple[str, ...]

    @cached_property
    def sizes(self) -> tuple[int, ...]:
        """UTF-8 size of each message (computed once, for every socket)."""
        return tuple(len(m.utf8) if isinstance(m, SharedText) else _size(m) for m in self.messages)

    def entries(self) -> list[tuple[int, str, int]]:
        """``(seq, message, size)`` for each message, as a socket queues them."""
        return [(self.seq, m, n) for m, n in zip(self.messages, self.sizes, strict=True)]


class ViewStream:
    """The process's one renderer of the live view, shared by every open page (see the docstring).

    Runs on the event loop that owns the hub; the rendering itself happens in the stream's own
    single worker thread, one render at a time, in order.
    """

    def __init__(self, hub: Any, scope: Scope, *, frame_interval: float = 0.1, history_frames: int = 64,
                 history_bytes: int = 8 * 1024 * 1024, limit: int | None = None) -> None:
        self.hub = hub
        self.builder = FrameBuilder(scope, limit=limit or message_limit())
        self.frame_interval = frame_interval
        self.history_frames = history_frames
        self.history_bytes = history_bytes
        self.frames: deque[Frame] = deque()
        self.index = 0
        self.shown_healthy: str | None = None  # health_of() the last frame showed
        self.latest: Snapshot | None = None
        self.subscribers: set[Callable[[], None]] = set()
        self._waiters: list[asyncio.Future[Snapshot]] = []
        self._executor = concurrent.futures.ThreadPoolExecutor(max_workers=1,
                                                               thread_name_prefix="lbdemo-render")
        self._timer: asyncio.TimerHandle | None = None
        self._release_pending = False  # a memory release is scheduled (at most one)
        self._running = False
        self._last_tick = 0.0
        self._poll: asyncio.TimerHandle | None = None
        self._listener = lambda *changed: self.wake()
        hub.add_listener(self._listener)

    # --- subscribers -----------------------------------------------------------------------------
    def subscribe(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` (on the loop) after every new frame."""
        self.subscribers.add(callback)
        self._schedule_poll()

    def unsubscribe(self, callback: Callable[[], None]) -> None:
        """Stop calling ``callback``; once the last viewer has gone, give the memory their sockets
        used back to the system a few seconds later (`release_memory`)."""
        self.subscribers.discard(callback)
        if not self.subscribers and not self._release_pending:  # one at a time:
            self._release_pending = True  # each release blocks the loop ~0.3 s (pages reconnecting)
            asyncio.get_running_loop().call_later(RELEASE_AFTER, self._release_if_idle)

    def _release_if_idle(self) -> None:
        self._release_pending = False
        if not self.subscribers:
            release_memory()

    def frames_after(self, index: int) -> list[Frame] | None:
        """Frames after ``index`` in order, or None if the ring no longer reaches back to it."""
        if index == self.index:
            return []
        frames = self.frames
        if not frames or frames[0].index > index + 1 or index > self.index:
            return None
        # The ring's indices are consecutive: the usual answer (the last frame) without a scan
        # of the whole ring for every socket.
        start = index + 1 - frames[0].index
        if frames[-1].index - frames[0].index == len(frames) - 1:
            return list(itertools.islice(frames, start, None)) if start else list(frames)
        return [f for f in frames if f.index > index]

    async def snapshot(self) -> Snapshot:
        """A snapshot of the current state (rendered once for every page that asks meanwhile)."""
        latest = self.latest
        if latest is not None and latest.index == self.index and self.builder.seq == self.hub.cache.seq \
                and self.shown_healthy == health_of(self.hub):
            return latest
        future: asyncio.Future[Snapshot] = asyncio.get_running_loop().create_future()
        self._waiters.append(future)
        self.wake(now=True)
        return await future

    # --- ticking -------------------------------------------------------------------------------
    def wake(self, *, now: bool = False) -> None:
        """Arrange a tick no sooner than ``frame_interval`` after the previous one (coalescing)."""
        if self._running or (self._timer is not None and not now):
            return
        if self._timer is not None:
            self._timer.cancel()
        loop = self.hub.loop
        delay = 0.0 if now else max(0.0, self._last_tick + self.frame_interval - time.monotonic())
        self._timer = loop.call_later(delay, self._start_tick)

    def _schedule_poll(self) -> None:
        """While pages are open, look at the hub's health every second (it flips without changes)."""
        if self._poll is None and self.subscribers:
            self._poll = self.hub.loop.call_later(1.0, self._on_poll)

    def _on_poll(self) -> None:
        self._poll = None
        if self.shown_healthy is not None and self.shown_healthy != health_of(self.hub):
            self.wake()
        self._schedule_poll()

    def _start_tick(self) -> None:
        self._timer = None
        if self._running:
            return
        self._running = True
        task = self.hub.loop.create_task(self._tick())
        task.add_done_callback(self._tick_done)

    def _tick_done(self, task: asyncio.Task[None]) -> None:
        """Every tick's outcome is retrieved here: a crash is logged and the pages resync."""
        self._running = False
        self._last_tick = time.monotonic()
        if not task.cancelled() and task.exception() is not None:
            log.error("the live view failed to render a frame; pages will resync",
                      exc_info=task.exception())
            self.builder.seq = None
            self.frames.clear()
            self.index += 1
            for waiter in self._waiters:
                if not waiter.done():
                    waiter.set_exception(RuntimeError("the live view failed to render"))
            self._waiters.clear()
            self._notify()
        if self._waiters or (self.builder.seq is not None and self.hub.cache.seq != self.builder.seq):
            self.wake()

    async def _tick(self) -> None:
        """Render what changed since the last frame (and a snapshot if a page waits for one)."""
        if not self.subscribers and not self._waiters:
            # Nobody watches: forget, and start from a snapshot when someone does.
            self.builder.seq, self.latest = None, None
            self.frames.clear()
            return
        cache = self.hub.cache
        seq, objects = cache.snapshot()
        health = health_of(self.hub)
        changes = cache.changes_since(self.builder.seq) if self.builder.seq is not None else None
        view = self.builder.view(objects, seq=seq, now=presenters.utcnow(),
                                 timeline=self.hub.timeline.visible(time.time()), synced=not health,
                                 trouble=health, pods_by_name=cache.named("Pod"),
                                 source=str(getattr(self.hub, "epoch", "") or ""))
        waiters, self._waiters = self._waiters, []
        try:
            await self._render(view, changes, health, waiters)
        except BaseException as exc:
            for waiter in waiters:  # every page waiting for this snapshot hears of the failure
                if not waiter.done():
                    waiter.set_exception(RuntimeError(f"the live view failed to render: {exc}"))
            raise

    async def _render(self, view: ViewInput, changes: list[Change] | None, health: str,
                      waiters: list[asyncio.Future[Snapshot]]) -> None:
        """The rendering half of a tick (in the worker thread), then the hand-out."""
        seq = view.seq
        health_changed = health != self.shown_healthy
        loop = asyncio.get_running_loop()
        frame: Frame | None = None
        snapshot: Snapshot | None = None
        if changes is None:
            # No state to build on (first tick, or the change log no longer reaches back):
            # every page needs a snapshot.
            messages = await loop.run_in_executor(self._executor, self.builder.snapshot, view)
            self.index += 1
            self.frames.clear()
            snapshot = Snapshot(self.index, seq, shared(messages))
            collector.install_for(len(view.list("Pod")))  # short collector pauses with a big cache
        else:
            if changes or health_changed:
                messages = await loop.run_in_executor(self._executor, self.builder.delta, changes, view)
                if messages:
                    self.index += 1
                    texts = shared(messages)
                    frame = Frame(self.index, seq, texts, sum(len(t.utf8) for t in texts))
                    self._remember(frame)
            if waiters:
                messages = await loop.run_in_executor(self._executor, self._snapshot_keeping_memory, view)
                snapshot = Snapshot(self.index, seq, shared(messages))
        self.shown_healthy = health
        if snapshot is not None:
            self.latest = snapshot
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(self.latest or snapshot)  # type: ignore[arg-type]
        if frame is not None or snapshot is not None:
            self._notify()

    def _snapshot_keeping_memory(self, view: ViewInput) -> list[str]:
        """A snapshot of the state the last frame brought the pages to (the builder's memory of
        that state is rebuilt identically, so deltas continue from it)."""
        return self.builder.snapshot(view)

    def _remember(self, frame: Frame) -> None:
        self.frames.append(frame)
        total = sum(f.size for f in self.frames)
        while len(self.frames) > 1 and (len(self.frames) > self.history_frames or total > self.history_bytes):
            total -= self.frames.popleft().size

    def _notify(self) -> None:
        for callback in list(self.subscribers):
            try:
                callback()
            except Exception:
                log.exception("a live-view subscriber failed")

    def close(self) -> None:
        """Stop timers, the worker and the hub's wake-ups (tests, a replaced hub)."""
        remove = getattr(self.hub, "remove_listener", None)
        if remove is not None:
            remove(self._listener)
        for handle in (self._timer, self._poll):
            if handle is not None:
                handle.cancel()
        self._timer = self._poll = None
        self._executor.shutdown(wait=False, cancel_futures=True)


_streams: dict[int, ViewStream] = {}


def get_stream(hub: Any) -> ViewStream:
    """The live-view stream of ``hub`` (one per hub; created on first use, on the hub's loop)."""
    stream = _streams.get(id(hub))
    if stream is None or stream.hub is not hub:
        if stream is not None:
            stream.close()
        for key, old in list(_streams.items()):
            old.close()
            del _streams[key]
        stream = _streams[id(hub)] = ViewStream(hub, settings_scope())
    return stream
