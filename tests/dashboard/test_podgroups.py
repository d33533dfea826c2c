"""Pods grouped and windowed (dashboard.podgroups): frames proportional to the change."""

from __future__ import annotations

import html
import json
import re
from datetime import UTC, datetime

import pytest

from dashboard import podgroups, podsearch
from dashboard.cache import ClusterCache
from dashboard.objects import SelectorError, parse_selector
from dashboard.presenters import Scope
from dashboard.stream import FrameBuilder, ViewInput, page_sections
from tests.dashboard.canned import pod, present

NOW = datetime(2026, 11, 24, 21, 10, tzinfo=UTC)
SCOPE = Scope(namespace="default", deployment="backend", service="backend-service",
              selector=parse_selector("app=backend"), max_replicas=10)
W = podgroups.WINDOW


def node(name: str, *, ready: bool = True, simulated: bool = False, rv: str = "1") -> dict:
    labels = {podgroups.SIMULATED_LABEL: "true"} if simulated else {}
    return {"metadata": {"name": name, "resourceVersion": rv, "labels": labels},
            "status": {"conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}}


def stamp(i: int) -> str:
    return f"2026-11-24T{20 - i // 3600:02d}:{59 - i // 60 % 60:02d}:{59 - i % 60:02d}Z"


def crowd(n: int, *, others: int = 0) -> ClusterCache:
    """``n`` backend pods on node-1 (backend-00000 the oldest) and ``others`` outside the selector."""
    cache = ClusterCache()
    cache.replace("Node", [node("node-1"), node("sim-1", simulated=True)], observed=1.0)
    cache.replace("Pod", [pod(f"backend-{i:05d}", "1", created=stamp(n - i)) for i in range(n)]
                  + [pod(f"crowd-{i:05d}", "1", labels={"app": "crowd"}, node="sim-1", owner="")
                     for i in range(others)], observed=1.0)
    return cache


def view_of(cache: ClusterCache, *, source: str = "") -> ViewInput:
    seq, objects = cache.snapshot()
    return ViewInput(objects, seq=seq, scope=SCOPE, now=NOW, timeline=[], source=source)


def frame(builder: FrameBuilder, cache: ClusterCache, since: int) -> str:
    return "".join(builder.delta(present(cache.changes_since(since)), view_of(cache)))


def started(n: int, *, others: int = 0) -> tuple[ClusterCache, FrameBuilder, int, str]:
    cache, builder = crowd(n, others=others), FrameBuilder(SCOPE)
    html = "".join(builder.snapshot(view_of(cache)))
    return cache, builder, cache.seq, html


def test_a_snapshot_of_10000_pods_holds_only_the_windows_and_the_counts() -> None:
    html = started(9000, others=1000)[3]
    assert html.count('class="pod-card ') == W + podgroups.OTHER_WINDOW
    assert f"{9000 - W} more" in html and f"{1000 - podgroups.OTHER_WINDOW} more" in html
    assert "9000 pods" in html and "1000 pods" in html and "app=crowd" in html
    assert all(f'data-pod="backend-{i:05d}"' in html for i in range(W))  # the oldest ones
    assert len(html.encode()) < 256 * 1024


def test_page_loads_from_the_same_cluster_reuse_what_they_read_and_still_follow_every_change() -> None:
    def page(view: ViewInput) -> tuple[str, list[int]]:
        """The pods by node, and the topology's tally of its folded pods (ready, starting,
        terminating, failing)."""
        sections, _ = page_sections(view)
        patch = re.search(r'id="topology-patch"[^>]*>(.*?)</div>', sections["topology"], re.S)
        assert patch is not None
        payload = json.loads(html.unescape(patch.group(1)))
        fields = payload["pod_fields"]
        folded = [dict(zip(fields, p, strict=True)) for p in payload["pods"]]
        return sections["nodes"], next(p["tally"] for p in folded if p["tally"])

    cache = crowd(300)
    first, tally = page(view_of(cache, source="epoch-a"))
    assert "300 pods" in first and "300 ready" in first and "failing" not in first and tally == [280, 0, 0, 0]
    cache.apply("Pod", "MODIFIED", pod("backend-00250", "2", created=stamp(50), ready=False,
                                       waiting="CrashLoopBackOff"), observed=2.0)
    cache.apply("Pod", "DELETED", pod("backend-00251", "2", created=stamp(49)), observed=2.0)
    cache.apply("Pod", "ADDED", pod("backend-late", "3", created="2026-11-24T21:05:00Z"), observed=2.0)
    again, tally = page(view_of(cache, source="epoch-a"))
    assert "300 pods" in again and "299 ready" in again and "1 failing" in again
    assert tally == [279, 0, 0, 1]  # the topology draws the changed pod as it is now
    # Another cluster (a new hub) with the same names and resourceVersions is read afresh.
    other = crowd(300)
    other.apply("Pod", "MODIFIED", pod("backend-00250", "2", created=stamp(50)), observed=2.0)
    fresh, tally = page(view_of(other, source="epoch-b"))
    assert "300 ready" in fresh and "failing" not in fresh and tally == [280, 0, 0, 0]


def test_a_second_snapshot_reuses_cards_yet_shows_every_change_and_the_current_ages() -> None:
    def endpoints(state: bool, rv: str) -> dict:
        return {"kind": "EndpointSlice", "apiVersion": "discovery.k8s.io/v1",
                "metadata": {"name": "backend-service-abc", "resourceVersion": rv,
                             "labels": {"kubernetes.io/service-name": "backend-service"}},
                "addressType": "IPv4", "ports": [{"port": 8080}],
                "endpoints": [{"addresses": ["127.244.0.10"], "conditions": {"ready": state},
                               "targetRef": {"kind": "Pod", "name": "backend-00000"}}]}

    def snapshot(at: datetime) -> str:
        seq, objects = cache.snapshot()
        return "".join(builder.snapshot(builder.view(objects, seq=seq, now=at, timeline=[],
                                                     pods_by_name=cache.named("Pod"))))

    cache, builder = crowd(3), FrameBuilder(SCOPE)
    cache.replace("EndpointSlice", [endpoints(True, "1")], observed=1.0)
    first = snapshot(NOW)
    assert first.count("endpoint: ready") == 1 and "CrashLoopBackOff" not in first
    cache.apply("EndpointSlice", "MODIFIED", endpoints(False, "2"), observed=2.0)
    cache.apply("Pod", "MODIFIED", pod("backend-00001", "2", created=stamp(2), ready=False,
                                       waiting="CrashLoopBackOff"), observed=2.0)
    later = snapshot(NOW.replace(hour=23))
    assert "endpoint: ready" not in later and "endpoint: not ready" in later
    assert later.count('data-status="CrashLoopBackOff"') == 1
    ages = re.findall(r'class="age" data-created="[^"]+">([^<]*)<', later)
    assert len(ages) == 3 and all(age == "130m" for age in ages), ages  # as of 23:10, remembered or not


def test_one_pod_change_is_its_card_only_whether_shown_or_not() -> None:
    cache, builder, seq, _ = started(9000)
    cache.apply("Pod", "MODIFIED", pod("backend-04321", "2", created=stamp(9000 - 4321),
                                       labels={"app": "backend", "x": "1"}), observed=2.0)
    html = frame(builder, cache, seq)
    assert html.count('data-pod="') == 1 and 'data-pod="backend-04321"' in html and "x=1" in html
    assert len(html.encode()) < 4096
    seq = cache.seq
    cache.apply("Pod", "MODIFIED", pod("backend-04321", "3", created=stamp(9000 - 4321), ready=False,
                                       phase="Running"), observed=3.0)
    html = frame(builder, cache, seq)
    # Readiness changes the counts: the card, its group's heading and its node's heading; and the
    # card's place: a pod not ready comes before the ready ones, so it enters the window.
    assert 'id="gh-' in html and "8999 ready" in html and 'id="head-pods-node-1' in html
    assert 'id="nodes"' not in html and html.count('data-pod="backend-04321"') == 2  # in place, appended
    assert html.count('data-pod="') == 2 and html.count('hx-swap-oob="delete"') == 2


def test_failing_and_unready_pods_come_first_in_their_group_window() -> None:
    cache, builder, seq, _ = started(4500)
    last_shown = f"pod-uid-backend-{W - 1:05d}"
    cache.apply("Pod", "ADDED", pod("backend-crash", "2", created="2026-11-24T21:05:00Z", ready=False,
                                    waiting="CrashLoopBackOff"), observed=2.0)
    html = frame(builder, cache, seq)
    # The newest pod of 4,501, but failing: it is a card in the window, the last oldest one leaves.
    assert 'data-pod="backend-crash"' in html and 'hx-swap-oob="beforeend"' in html
    assert f'<div id="{last_shown}" hx-swap-oob="delete">' in html and "1 failing" in html
    # A new page load and a snapshot show it first too; "k more" continues after the window.
    for page in (page_sections(view_of(cache))[0]["nodes"], "".join(builder.snapshot(view_of(cache)))):
        assert page.index('data-pod="backend-crash"') < page.index('data-pod="backend-00000"')
        assert f'data-pod="backend-{W - 1:05d}"' not in page
    view = view_of(cache)
    gid = view.card(view.pods_by_name["backend-00000"]).group_id
    cards = podgroups.group_cards(view.list("Pod"), view, gid)
    assert cards[0].name == "backend-crash" and cards[W].name == f"backend-{W - 1:05d}"  # "k more" is next
    seq = cache.seq
    # Healed: it goes back to its place among the newest, and the oldest one beyond comes back.
    cache.apply("Pod", "MODIFIED", pod("backend-crash", "3", created="2026-11-24T21:05:00Z"), observed=3.0)
    html = frame(builder, cache, seq)
    assert '<div id="pod-uid-backend-crash" hx-swap-oob="delete">' in html
    assert f'data-pod="backend-{W - 1:05d}"' in html and "failing" not in html


def test_a_deleted_shown_pod_fades_and_the_next_one_takes_its_place() -> None:
    cache, builder, seq, _ = started(100)
    cache.apply("Pod", "DELETED", pod("backend-00000", "2", created=stamp(100)), observed=2.0)
    html = frame(builder, cache, seq)
    assert 'leaving' in html and 'data-pod="backend-00000"' in html
    promoted = f"backend-{W:05d}"
    assert f'data-pod="{promoted}"' in html and 'hx-swap-oob="beforeend"' in html
    assert f"{99 - W} more" in html and "99 pods" in html


def test_a_new_pod_beyond_the_window_changes_the_count_only() -> None:
    cache, builder, seq, _ = started(100)
    cache.apply("Pod", "ADDED", pod("backend-new", "2", created="2026-11-24T21:05:00Z"), observed=2.0)
    html = frame(builder, cache, seq)
    assert "101 pods" in html and f"{101 - W} more" in html
    assert 'hx-swap-oob="beforeend"' not in html  # not shown: nothing appended


def test_a_node_change_sends_its_heading_only_and_simulated_nodes_say_so() -> None:
    cache, builder, seq, html = started(50, others=20)
    assert "simulated · serves no traffic" in html and "20 on simulated nodes" in html
    cache.apply("Node", "MODIFIED", node("node-1", ready=False, rv="2"), observed=2.0)
    html = frame(builder, cache, seq)
    assert 'id="head-pods-node-1' in html and "not ready" in html
    assert "pod-card" not in html and 'id="gh-' not in html and 'id="nodes"' not in html


def test_a_pod_moving_to_another_node_leaves_one_group_and_joins_another() -> None:
    cache, builder, seq, _ = started(3)
    cache.apply("Pod", "MODIFIED", pod("backend-00001", "2", created=stamp(2), node="sim-1"), observed=2.0)
    html = frame(builder, cache, seq)
    assert 'hx-swap-oob="delete"' in html and 'id="groups-pods-sim-1' in html
    assert "2 pods" in html  # node-1's group


def test_filters_name_and_label_terms() -> None:
    names, selector = podsearch.parse_filter("name~web, app=backend,tier!=db")
    assert names == [("~", "web")] and str(selector) == "app=backend,tier!=db"
    names, selector = podsearch.parse_filter("backend-00042")
    assert names == [("~", "backend-00042")] and str(selector) == ""
    assert podsearch.matches(pod("web-1", "1"), *podsearch.parse_filter("name~web,app=backend"))
    assert not podsearch.matches(pod("web-1", "1"), *podsearch.parse_filter("app=frontend"))
    assert podsearch.matches(pod("web-1", "1"), *podsearch.parse_filter("name=web-1"))
    with pytest.raises(SelectorError):
        podsearch.parse_filter("app in (a")


def test_the_lessons_history_forgets_deleted_pods_without_walking_every_pod() -> None:
    from dashboard.cache import Change
    from dashboard.lessons.history import ClusterHistory

    history = ClusterHistory(SCOPE, keep_seconds=10.0)
    cache = crowd(3)
    history.observe([Change(i + 1, "Pod", "ADDED", f"backend-{i:05d}", pod(f"backend-{i:05d}", "1"), 0.0)
                     for i in range(3)], cache)
    history.observe([Change(9, "Pod", "DELETED", "backend-00001", pod("backend-00001", "2"), 1.0)], cache)
    history.observe([Change(10, "Pod", "MODIFIED", "backend-00000", pod("backend-00000", "3"), 5.0)], cache)
    assert history.by_name("backend-00001") is not None  # deleted 4 s ago: still remembered
    history.observe([Change(11, "Pod", "MODIFIED", "backend-00000", pod("backend-00000", "4"), 12.0)], cache)
    assert history.by_name("backend-00001") is None and history.by_name("backend-00000") is not None
    assert history.by_name("backend-00002") is not None
