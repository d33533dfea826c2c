"""Pods as the page groups them, so that 10,000 pods cost the page what a few hundred do.

Selected pods (the Service's selector) are grouped by node, then by owner (the ReplicaSet);
the pods outside the selector are grouped by their ``app`` label. Every group shows a
heading with its counts (pods, ready, by status) and only its first :data:`WINDOW` cards:
failing pods first, then not-ready ones, then the rest (``presenters.attention``), oldest first
within each (the order `kubectl get pods --sort-by=.metadata.creationTimestamp` shows);
the rest are "k more", fetched on demand (dashboard.podsearch) into the group's ``extra-<id>``
container. The browser therefore holds what is visible, not every pod.

:class:`PodPanes` is the stream's memory of what the pages show of the pod sections, and
turns a batch of changes into swaps proportional to the change: one pod's change is its card
(sent whether or not it is in a window: a page that expanded the group shows it too) plus its
group's heading when a count changed; a card enters or leaves a window when membership
changes; a Node change re-sends that node's heading only. Pure functions (:func:`node_panes`,
:func:`app_groups`) build the same structure for the first page load and snapshots.

Nodes labelled ``lb-demo.dev/simulated=true`` (sandbox/kubelet/simulated.py) run no
processes: their heading and the groups of pods on them say the pods serve no traffic.
"""

from __future__ import annotations

import heapq
import threading
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from django.template.loader import render_to_string

from dashboard import objects, presenters
from dashboard.objects import Selector
from dashboard.presenters import UNSCHEDULED, PodCard

if TYPE_CHECKING:
    from dashboard.cache import Change, Obj
    from dashboard.stream import ViewInput

# Cards a group shows before "k more" (selected pods are full cards; others are chips). Ten:
# the scale slider's whole range (LBDEMO_MAX_REPLICAS) still shows every pod on a one-node cluster.
WINDOW = 10
OTHER_WINDOW = 8
# Cards one click on "k more" adds.
MORE_STEP = 50
SIMULATED_LABEL = "lb-demo.dev/simulated"
SIMULATED_PREFIX = "sandbox-sim-"
OTHERS_CONTAINER = presenters.OTHER_GROUP_ID
TALLY_LABELS = {"ok": "running", "pending": "pending", "terminating": "terminating", "bad": "failing",
                "other": "other"}


def is_simulated_node(node: Obj) -> bool:
    """True for a node whose "kubelet" runs no processes (sandbox simulated nodes)."""
    return objects.labels(node).get(SIMULATED_LABEL) == "true"


def node_facts(nodes: Iterable[Obj]) -> dict[str, tuple[bool, bool]]:
    """Node name -> (Ready, simulated)."""
    return {objects.name(n): (objects.condition_true(n, "Ready"), is_simulated_node(n))
            for n in nodes if objects.name(n)}


def simulated_name(node: str, facts: dict[str, tuple[bool, bool]]) -> bool:
    """True if pods on ``node`` serve no traffic (a simulated node, known or by its name)."""
    known = facts.get(node)
    return known[1] if known is not None else node.startswith(SIMULATED_PREFIX)


def window_size(card: PodCard) -> int:
    """How many cards the group of ``card`` shows."""
    return WINDOW if card.selected else OTHER_WINDOW


@dataclass(frozen=True)
class PodGroup:
    """A group of pods (node and owner, or an app label outside the selector) as its heading shows it."""

    gid: str
    title: str
    selected: bool
    count: int
    ready: int
    simulated: int
    tallies: tuple[tuple[str, str, int], ...]  # (status class, label, count), non-zero only
    shown: tuple[PodCard, ...] = ()

    @property
    def hidden(self) -> int:
        """Pods of the group that are not shown as cards."""
        return self.count - len(self.shown)

    @property
    def container(self) -> str:
        """DOM id of the element the group's own element sits in."""
        return OTHERS_CONTAINER if not self.selected else ""


def group_title(card: PodCard) -> str:
    """The heading of a card's group: its ReplicaSet (or owner), or its app label."""
    if card.selected:
        return f"ReplicaSet {card.owner}" if card.owner else "no owner"
    return f"app={card.app}" if card.app else presenters.NO_APP


def summarise(cards: list[PodCard], *, shown: Iterable[PodCard],
              facts: dict[str, tuple[bool, bool]]) -> PodGroup:
    """The heading facts of a non-empty group and the cards it shows."""
    first = cards[0]
    tally = Counter(c.status_class for c in cards)
    return PodGroup(
        gid=first.group_id, title=group_title(first), selected=first.selected, count=len(cards),
        ready=sum(1 for c in cards if c.is_ready),
        simulated=sum(1 for c in cards if simulated_name(c.node, facts)),
        tallies=tuple((cls, TALLY_LABELS[cls], tally[cls]) for cls in TALLY_LABELS if tally.get(cls)),
        shown=tuple(shown))


def windowed(cards: list[PodCard]) -> list[PodCard]:
    """The cards a group shows: the first by ``sort_key`` (failing, not ready, then oldest)."""
    return heapq.nsmallest(window_size(cards[0]), cards, key=lambda c: c.sort_key) if cards else []


@dataclass(frozen=True)
class NodePane:
    """A node, its heading's counts and its groups of selected pods."""

    name: str
    group_id: str
    ready: bool
    simulated: bool
    count: int
    ready_pods: int
    groups: tuple[PodGroup, ...] = ()


def by_group(cards: Iterable[PodCard]) -> dict[str, list[PodCard]]:
    """Cards by group id, each list oldest first when ``cards`` is."""
    out: dict[str, list[PodCard]] = {}
    for card in cards:
        out.setdefault(card.group_id, []).append(card)
    return out


def node_names(facts: dict[str, tuple[bool, bool]], used: Iterable[str]) -> list[str]:
    """Every known node, plus nodes only pods mention (``used``), sorted, then "not scheduled"."""
    names = sorted(set(facts) | (set(used) - {UNSCHEDULED}))
    return [*names, UNSCHEDULED]


def node_pane(name: str, facts: dict[str, tuple[bool, bool]], groups: list[PodGroup]) -> NodePane:
    """One node's pane from its groups."""
    ready, _ = facts.get(name, (True, False))
    return NodePane(name=name, group_id=presenters.node_group_id(name), ready=ready,
                    simulated=simulated_name(name, facts), count=sum(g.count for g in groups),
                    ready_pods=sum(g.ready for g in groups), groups=tuple(groups))


def node_panes(nodes: list[Obj], cards: list[PodCard]) -> list[NodePane]:
    """Selected pod cards by node and owner, windowed (the page load and snapshots)."""
    facts = node_facts(nodes)
    grouped = by_group(c for c in cards if c.selected)
    per_node: dict[str, list[PodGroup]] = {}
    for members in grouped.values():
        group = summarise(members, shown=windowed(members), facts=facts)
        per_node.setdefault(members[0].node, []).append(group)
    return [node_pane(n, facts, sorted(per_node.get(n, []), key=lambda g: g.title))
            for n in node_names(facts, {c.node for c in cards if c.selected})]


def app_groups(nodes: list[Obj], cards: list[PodCard]) -> list[PodGroup]:
    """Pods outside the selector by app label, windowed, biggest group last (small ones stay visible)."""
    facts = node_facts(nodes)
    grouped = by_group(c for c in cards if not c.selected)
    groups = [summarise(m, shown=windowed(m), facts=facts) for m in grouped.values()]
    return sorted(groups, key=lambda g: g.title)


@dataclass(frozen=True)
class Layout:
    """Both pod sections for the first page load: groups, counts and the windows' cards."""

    nodes: list[NodePane]
    others: list[PodGroup]


@dataclass(frozen=True, slots=True)
class PodFact:
    """What the grouping reads of one pod: its group, node, STATUS class, readiness, age order."""

    gid: str
    node: str
    status: str
    ready: bool
    created: tuple[str, str]

    @property
    def key(self) -> tuple[int, str, str]:
        """The pod's place in its group (as ``PodCard.sort_key``)."""
        return presenters.attention(self.status, self.ready), *self.created


def pod_fact(pod: Obj, selector: Selector) -> PodFact:
    """One pod's :class:`PodFact` (kubectl's STATUS and Ready, as its card shows them)."""
    labels = objects.labels(pod)
    node = objects.text(objects.spec(pod).get("nodeName")) or UNSCHEDULED
    gid = presenters.pod_group_id(selected=selector.matches(labels), node=node,
                                  owner=presenters.pod_owner(pod), app=labels.get("app", ""))
    return PodFact(gid=gid, node=node, status=presenters.status_class(objects.print_pod(pod).status),
                   ready=objects.pod_ready(pod), created=presenters.created_key(pod))


class FactMemo:
    """Pod facts by name, reused while the pod's resourceVersion, the selector and the cluster
    (the hub's epoch) are the same.

    The first page load reads every pod for its group and counts: at 10,000 pods that was most
    of the server's time, and nearly all of it the same answer as for the last load. Page loads
    (request threads) and the stream's snapshots (its render thread) share one memo, hence the
    lock; pods that are gone are dropped once they number more than PRUNE_AT. A view without a
    source (a state built by hand, as tests do) is read afresh."""

    PRUNE_AT = 256

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._key: tuple[str, Selector] | None = None
        self._facts: dict[str, tuple[str, PodFact]] = {}

    def facts(self, pods: list[Obj], selector: Selector, *, source: str) -> list[tuple[PodFact, Obj]]:
        """``(fact, pod)`` for every pod that can be read (one that cannot is left to the card
        path, which logs it when it is shown)."""
        if not source:
            return self._read(pods, selector, {})
        with self._lock:
            if self._key != (source, selector):
                self._key, self._facts = (source, selector), {}
            out = self._read(pods, selector, self._facts)
            if len(self._facts) > len(out) + self.PRUNE_AT:
                live = {objects.name(p) for _, p in out}
                self._facts = {k: v for k, v in self._facts.items() if k in live}
        return out

    @staticmethod
    def _read(pods: list[Obj], selector: Selector, memo: dict[str, tuple[str, PodFact]]
              ) -> list[tuple[PodFact, Obj]]:
        out: list[tuple[PodFact, Obj]] = []
        for pod in pods:
            meta = pod.get("metadata") if isinstance(pod, dict) else None
            if not isinstance(meta, dict):
                meta = {}
            name, rv = meta.get("name"), meta.get("resourceVersion")
            known = memo.get(name) if isinstance(name, str) and rv else None
            if known is not None and known[0] == rv:
                out.append((known[1], pod))
                continue
            try:
                fact = pod_fact(pod, selector)
            except Exception:
                continue
            if isinstance(name, str) and isinstance(rv, str) and rv:
                memo[name] = (rv, fact)
            out.append((fact, pod))
        return out


FACTS = FactMemo()


def page_layout(view: ViewInput) -> Layout:
    """The pod sections without a card per pod: every pod is read for its group, counts and
    place (kubectl's STATUS, Ready; from :data:`FACTS` when unchanged), and cards are built for
    the windows only — the page load at 10,000 pods builds 20-odd cards, not 10,000."""
    facts = node_facts(view.list("Node"))
    groups: dict[str, list[tuple[tuple[int, str, str], Obj]]] = {}
    stats: dict[str, GroupStats] = {}
    for fact, pod in FACTS.facts(view.list("Pod"), view.selector, source=view.source):
        gid = fact.gid
        counts = stats.get(gid)
        if counts is None:
            counts = stats[gid] = GroupStats()
            groups[gid] = []
        groups[gid].append((fact.key, pod))
        counts.count += 1
        counts.ready += fact.ready
        counts.simulated += simulated_name(fact.node, facts)
        counts.tally[fact.status] += 1
    built: dict[str, PodGroup] = {}
    for gid, members in groups.items():
        size = OTHER_WINDOW if gid.startswith(OTHERS_CONTAINER + "-") else WINDOW
        first = [pod for _, pod in heapq.nsmallest(size, members, key=lambda m: m[0])]
        shown = presenters.each(view.card, first, "pod")
        if not shown:
            continue
        st = stats[gid]
        built[gid] = PodGroup(gid=gid, title=group_title(shown[0]), selected=shown[0].selected,
                              count=st.count, ready=st.ready, simulated=st.simulated,
                              tallies=tuple((c, TALLY_LABELS[c], st.tally[c]) for c in TALLY_LABELS
                                            if st.tally.get(c)),
                              shown=tuple(shown))
    per_node: dict[str, list[PodGroup]] = {}
    for group in built.values():
        if group.selected:
            per_node.setdefault(group.shown[0].node, []).append(group)
    nodes = [node_pane(n, facts, sorted(per_node.get(n, []), key=lambda g: g.title))
             for n in node_names(facts, per_node)]
    others = sorted((g for g in built.values() if not g.selected), key=lambda g: g.title)
    return Layout(nodes=nodes, others=others)


def render_group(group: PodGroup) -> str:
    """A group's element with its shown cards."""
    return render_to_string("dashboard/_pod_group.html", {"group": group, "oob": ""})


def render_group_head(group: PodGroup, *, oob: bool) -> str:
    """A group's heading (title, counts, "k more")."""
    return render_to_string("dashboard/_group_head.html", {"group": group, "oob": "true" if oob else ""})


def render_node_head(node: NodePane, *, oob: bool) -> str:
    """A node's heading (name, state, counts, simulated badge)."""
    return render_to_string("dashboard/_node_head.html", {"node": node, "oob": "true" if oob else ""})


def render_card(card: PodCard) -> str:
    """A card replacing the one with its id."""
    return render_to_string("dashboard/_pod_card.html", {"card": card, "oob": "true"})


def append(container: str, inner: str) -> str:
    """HTML appended to the element ``container`` (an htmx out-of-band swap)."""
    return f'<div id="{container}" hx-swap-oob="beforeend">{inner}</div>'


def delete(dom_id: str) -> str:
    """An out-of-band removal of the element ``dom_id`` (nothing if the page does not have it)."""
    return f'<div id="{dom_id}" hx-swap-oob="delete"></div>'


def group_container(card: PodCard) -> str:
    """DOM id of the element a card's group element is appended to."""
    return f"groups-{presenters.node_group_id(card.node)}" if card.selected else OTHERS_CONTAINER


@dataclass
class GroupStats:
    """A group's counts, kept as cards come and go (a frame never recounts a group)."""

    count: int = 0
    ready: int = 0
    simulated: int = 0
    tally: Counter[str] = field(default_factory=Counter)

    def add(self, card: PodCard, sign: int, facts: dict[str, tuple[bool, bool]]) -> None:
        """Count ``card`` in (sign 1) or out (sign -1)."""
        self.count += sign
        self.ready += sign * card.is_ready
        self.simulated += sign * simulated_name(card.node, facts)
        self.tally[card.status_class] += sign


@dataclass
class PodPanes:
    """What the pages show of the pod sections (see the module docstring). One thread at a time."""

    selector: Selector | None = None
    cards: dict[str, PodCard] = field(default_factory=dict)
    members: dict[str, dict[str, None]] = field(default_factory=dict)
    stats: dict[str, GroupStats] = field(default_factory=dict)
    shown: dict[str, set[str]] = field(default_factory=dict)
    group_heads: dict[str, str] = field(default_factory=dict)
    node_heads: dict[str, str] = field(default_factory=dict)
    nodes: list[str] = field(default_factory=list)
    on_node: Counter[str] = field(default_factory=Counter)  # selected pods per node
    facts: dict[str, tuple[bool, bool]] = field(default_factory=dict)
    now: datetime = field(default_factory=presenters.utcnow)  # the time of the render under way

    def reset(self, section: str | None = None) -> None:
        """Forget what a section shows (both when ``section`` is None)."""
        keep_selected = section == "other_pods"
        keep_others = section == "nodes"
        for uid, card in list(self.cards.items()):
            if (card.selected and keep_selected) or (not card.selected and keep_others):
                continue
            del self.cards[uid]
        for gid in list(self.members):
            selected = not gid.startswith(OTHERS_CONTAINER + "-")
            if (selected and keep_selected) or (not selected and keep_others):
                continue
            for store in (self.members, self.stats, self.shown, self.group_heads):
                store.pop(gid, None)
        if section in (None, "nodes"):
            self.node_heads, self.nodes, self.on_node = {}, [], Counter()

    # --- snapshots -----------------------------------------------------------------------------
    def section_pieces(self, section: str, skeleton: str, view: ViewInput) -> list[str]:
        """A pod section as its skeleton plus its groups appended one by one (each a piece)."""
        self.reset(section)
        self.selector, self.now = view.selector, view.now
        self.facts = node_facts(view.list("Node"))
        selected = section == "nodes"
        for gid, members in by_group(c for c in view.cards if c.selected == selected).items():
            self.members[gid] = dict.fromkeys(c.uid for c in members)
            stats = self.stats[gid] = GroupStats()
            for card in members:
                self.cards[card.uid] = card
                stats.add(card, 1, self.facts)
                if selected:
                    self.on_node[card.node] += 1
        pieces = [skeleton]
        if selected:
            panes = node_panes(view.list("Node"), view.cards)
            self.nodes = [p.name for p in panes]
            for pane in panes:
                self.node_heads[pane.group_id] = render_node_head(pane, oob=True)
                for group in pane.groups:
                    pieces.append(append(f"groups-{pane.group_id}", self._remember(group)))
        else:
            for group in app_groups(view.list("Node"), view.cards):
                pieces.append(append(OTHERS_CONTAINER, self._remember(group)))
        return pieces

    def _remember(self, group: PodGroup) -> str:
        """Note what a group shows; its element's HTML (its cards' ages as of now)."""
        self.shown[group.gid] = {c.uid for c in group.shown}
        group = replace(group, shown=tuple(presenters.aged(c, self.now) for c in group.shown))
        self.group_heads[group.gid] = render_group_head(group, oob=True)
        return render_group(group)

    # --- deltas --------------------------------------------------------------------------------
    def delta(self, changes: list[Change], view: ViewInput, kinds: set[str]) -> list[str] | None:
        """Swaps for a batch of changes; None when both sections must be rebuilt (another
        selector, another set of node panes, a node becoming simulated or not)."""
        if view.selector != self.selector:
            return None
        self.now = view.now
        facts = node_facts(view.list("Node")) if "Node" in kinds else self.facts
        if any(facts.get(n, (True, False))[1] != self.facts.get(n, (True, False))[1]
               for n in set(facts) | set(self.facts)):
            return None
        changed_nodes = {n for n in set(facts) | set(self.facts) if facts.get(n) != self.facts.get(n)}
        self.facts = facts
        out: list[str] = []
        fresh, gone = self._changed_cards(changes, view, kinds)
        joined: dict[str, set[str]] = {}
        moved: dict[str, set[str]] = {}  # members whose place in their group changed
        touched: set[str] = set()
        nodes_touched: set[str] = set()
        for uid in gone - fresh.keys():
            last = self.cards.pop(uid, None)
            if last is None:
                continue
            self._leave(last)
            touched.add(last.group_id)
            nodes_touched.add(last.node if last.selected else "")
            out.append(render_card(PodCard(**{**last.__dict__, "leaving": True})))
        for uid, card in fresh.items():
            before = self.cards.get(uid)
            self.cards[uid] = card
            nodes_touched.update(c.node for c in (before, card) if c is not None and c.selected)
            touched.add(card.group_id)
            if before is not None and before.group_id == card.group_id:
                self.stats[card.group_id].add(before, -1, facts)
                self.stats[card.group_id].add(card, 1, facts)
                out.append(render_card(card))
                if before.sort_key != card.sort_key:
                    moved.setdefault(card.group_id, set()).add(uid)
                continue
            if before is not None:
                self._leave(before)
                touched.add(before.group_id)
                out.append(delete(card.dom_id))
            self.members.setdefault(card.group_id, {})[uid] = None
            self.stats.setdefault(card.group_id, GroupStats()).add(card, 1, facts)
            if card.selected:
                self.on_node[card.node] += 1
            joined.setdefault(card.group_id, set()).add(uid)
        if node_names(facts, (n for n, count in self.on_node.items() if count > 0)) != self.nodes:
            return None  # the set of node panes changed: the caller rebuilds the pod sections
        for gid in sorted(touched):
            out.extend(self._regroup(gid, joined.get(gid, set()), moved.get(gid, set())))
        for name in sorted((nodes_touched - {""}) | (changed_nodes & set(self.nodes))):
            out.extend(self._node_head(name))
        return out

    def _leave(self, card: PodCard) -> None:
        """Take a card out of its group (its window, its counts)."""
        self.members.get(card.group_id, {}).pop(card.uid, None)
        self.shown.get(card.group_id, set()).discard(card.uid)
        stats = self.stats.get(card.group_id)
        if stats is not None:
            stats.add(card, -1, self.facts)
        if card.selected:
            self.on_node[card.node] -= 1

    def _changed_cards(self, changes: list[Change], view: ViewInput,
                       kinds: set[str]) -> tuple[dict[str, PodCard], set[str]]:
        """Fresh cards of the pods that changed (and of those whose endpoint state changed), and
        the uids of pods that are gone."""
        current: dict[str, Obj] = {}
        gone: set[str] = set()
        for change in changes:
            if change.kind != "Pod":
                continue
            uid = str((change.obj.get("metadata") or {}).get("uid") or change.name)
            pod = view.pods_by_name.get(change.name)
            if pod is None or str((pod.get("metadata") or {}).get("uid") or change.name) != uid:
                gone.add(uid)
            if pod is not None:
                current[change.name] = pod
        fresh = {card.uid: card for card in map(view.card, current.values())}
        if kinds & {"EndpointSlice", "Endpoints"}:
            states = view.endpoint_states
            for uid, card in self.cards.items():
                if uid not in fresh and card.endpoint != states.get(card.name, "none"):
                    pod = view.pods_by_name.get(card.name)
                    if pod is not None:
                        fresh[uid] = view.card(pod)
        return fresh, gone

    def _group(self, gid: str) -> PodGroup:
        """A group's heading facts from its counts and window (no walk over its members)."""
        stats = self.stats[gid]
        shown = sorted((self.cards[u] for u in self.shown.get(gid, ())), key=lambda c: c.sort_key)
        first = self.cards[next(iter(self.members[gid]))]
        return PodGroup(gid=gid, title=group_title(first), selected=first.selected, count=stats.count,
                        ready=stats.ready, simulated=stats.simulated,
                        tallies=tuple((cls, TALLY_LABELS[cls], stats.tally[cls]) for cls in TALLY_LABELS
                                      if stats.tally.get(cls)),
                        shown=tuple(shown))

    def _regroup(self, gid: str, joined: set[str], moved: set[str]) -> list[str]:
        """Swaps for one group whose membership or cards changed: the window (the group's first
        cards by ``sort_key``: a joining card, or one whose place changed, may push the last shown
        one out; when a shown card leaves or loses its place, the window is the group's first
        again), the heading, the group element itself when it appears or empties."""
        members = self.members.get(gid) or {}
        if not members:
            existed = self.shown.pop(gid, None) is not None
            for store in (self.members, self.stats, self.group_heads):
                store.pop(gid, None)
            return [delete(f"grp-{gid}")] if existed else []
        size = window_size(self.cards[next(iter(members))])
        if gid not in self.shown:  # a new group: its element with its window
            self.shown[gid] = {c.uid for c in windowed([self.cards[u] for u in members])}
            container = group_container(self.cards[next(iter(members))])
            return [append(container, self._remember(self._group(gid)))]
        shown = self.shown[gid]
        before = set(shown)
        shown -= moved  # they compete for their place again
        if len(shown) < size and len(members) > len(shown):
            # A card left the window: the window is the group's first cards again (one walk).
            shown.clear()
            shown.update(c.uid for c in heapq.nsmallest(size, (self.cards[u] for u in members),
                                                         key=lambda c: c.sort_key))
        else:
            for uid in sorted(joined | (moved - before), key=lambda u: self.cards[u].sort_key):
                if len(shown) < size:
                    shown.add(uid)
                    continue
                last = max(shown, key=lambda u: self.cards[u].sort_key)
                if self.cards[uid].sort_key < self.cards[last].sort_key:
                    shown.discard(last)
                    shown.add(uid)
        out: list[str] = []
        for uid in before - shown:
            if uid in self.cards and self.cards[uid].group_id == gid:
                out.append(delete(self.cards[uid].dom_id))  # pushed out of the window
        entering = sorted((self.cards[u] for u in shown - before), key=lambda c: c.sort_key)
        for card in entering:
            if card.uid not in joined:
                out.append(delete(card.dom_id))  # it may sit in an expanded list already
        if entering:
            cards = (presenters.aged(c, self.now) for c in entering)
            out.append(append(gid, "".join(
                render_to_string("dashboard/_pod_card.html", {"card": c, "oob": ""}) for c in cards)))
        head = render_group_head(self._group(gid), oob=True)
        if head != self.group_heads.get(gid):
            self.group_heads[gid] = head
            out.append(head)
        return out

    def _node_head(self, name: str) -> list[str]:
        prefix = presenters.node_group_id(name) + "-"
        stats = [s for gid, s in self.stats.items() if gid.startswith(prefix) and s.count > 0]
        ready, _ = self.facts.get(name, (True, False))
        pane = NodePane(name=name, group_id=presenters.node_group_id(name), ready=ready,
                        simulated=simulated_name(name, self.facts), count=sum(s.count for s in stats),
                        ready_pods=sum(s.ready for s in stats))
        head = render_node_head(pane, oob=True)
        if head == self.node_heads.get(pane.group_id):
            return []
        self.node_heads[pane.group_id] = head
        return [head]


def group_cards(pods: Iterable[Obj], view: ViewInput, gid: str) -> list[PodCard]:
    """Every card of one group in its window's order (for "k more": what follows the window):
    cards are built only for its pods."""
    selector = view.selector
    mine = [p for p in pods if presenters.pod_group_of(p, selector) == gid]
    cards = presenters.pod_cards(mine, now=view.now, selector=selector, endpoints=view.endpoint_states)
    return sorted(cards, key=lambda c: c.sort_key)


def simulated_endpoint_lines(view: ViewInput) -> list[dict[str, Any]]:
    """Per Service with endpoints on simulated nodes: how many of its endpoints serve no traffic."""
    facts = node_facts(view.list("Node"))
    lines = []
    for service in view.list("Service"):
        name = objects.name(service)
        _, addresses = objects.service_endpoints(view.list("EndpointSlice"), view.list("Endpoints"), name)
        simulated = sum(1 for e in addresses if e.node and simulated_name(e.node, facts))
        if simulated:
            lines.append({"service": name, "simulated": simulated, "total": len(addresses)})
    return sorted(lines, key=lambda line: line["service"])
