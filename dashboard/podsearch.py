"""What the page asks for beyond what it holds: a group's "k more" cards, and the pod filter.

The page holds each group's first cards only (dashboard.podgroups); these two views read the
hub's cache (no Kubernetes call) and answer HTML fragments the page's script puts in place:

- ``GET /pods/more?group=<id>&count=N``: the group's cards after its window, at most N
  (N ≤ 1,000); the page keeps them current from the same frames as every card.
- ``GET /pods/find?q=...``: at most :data:`FIND_LIMIT` pods matching a filter, and how many
  match. A filter is comma-separated terms: ``name~web`` (the name contains ``web``),
  ``name=web-1`` (exactly), a bare word (the name contains it), anything else a label selector
  term as kubectl reads it (``app=backend``, ``tier!=db``, ``env in (a,b)``, ``!canary``).
  A malformed selector is a 400 with the selector parser's message.
"""

from __future__ import annotations

import time

from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.template.loader import render_to_string
from django.views.decorators.http import require_GET

from dashboard import objects, podgroups, presenters
from dashboard.auth import login_required_view
from dashboard.hub import get_hub
from dashboard.objects import Selector, SelectorError
from dashboard.stream import ViewInput, settings_scope

FIND_LIMIT = 50
MORE_LIMIT = 1000
QUERY_LIMIT = 512


def _view() -> ViewInput:
    hub = get_hub()
    seq, objs = hub.cache.snapshot()
    return ViewInput(objs, seq=seq, scope=settings_scope(), now=presenters.utcnow(),
                     timeline=[], synced=hub.healthy)


def _no_cache(response: HttpResponse) -> HttpResponse:
    response["Cache-Control"] = "no-store, private"
    return response


@login_required_view
@require_GET
async def more(request: HttpRequest) -> HttpResponse:
    """The cards of a group after its window (see the module docstring)."""
    gid = request.GET.get("group", "")
    try:
        count = max(1, min(MORE_LIMIT, int(request.GET.get("count", str(podgroups.MORE_STEP)))))
    except ValueError:
        return HttpResponseBadRequest("count must be a whole number", content_type="text/plain")
    view = _view()
    cards = podgroups.group_cards(view.list("Pod"), view, gid)
    rest = cards[podgroups.window_size(cards[0]):] if cards else []
    html = render_to_string("dashboard/_pod_more.html", {
        "cards": rest[:count], "shown": min(count, len(rest)), "hidden": len(rest), "gid": gid,
        "step": podgroups.MORE_STEP})
    return _no_cache(HttpResponse(html))


def parse_filter(query: str) -> tuple[list[tuple[str, str]], Selector]:
    """Name terms (``("~", part)`` or ``("=", name)``) and the label selector of a filter."""
    names: list[tuple[str, str]] = []
    labels: list[str] = []
    for term in objects.split_terms(query):
        term = term.strip()
        if not term:
            continue
        if term.startswith("name~"):
            names.append(("~", term[5:].strip()))
        elif term.startswith("name=") and not term.startswith("name=="):
            names.append(("=", term[5:].strip()))
        elif not any(ch in term for ch in "=!() ") and "/" not in term and not term.startswith("-"):
            names.append(("~", term))
        else:
            labels.append(term)
    return names, objects.parse_selector(",".join(labels)) if labels else objects.parse_selector("")


def matches(pod: objects.Obj, names: list[tuple[str, str]], selector: Selector) -> bool:
    """True if a pod passes a parsed filter."""
    name = objects.name(pod)
    for op, value in names:
        if (op == "=" and name != value) or (op == "~" and value not in name):
            return False
    return selector.matches(objects.labels(pod))


@login_required_view
@require_GET
async def find(request: HttpRequest) -> HttpResponse:
    """Pods matching a filter (see the module docstring), as result rows."""
    query = request.GET.get("q", "").strip()[:QUERY_LIMIT]
    if not query:
        return _no_cache(HttpResponse(""))
    try:
        names, selector = parse_filter(query)
    except SelectorError as exc:
        return _no_cache(HttpResponseBadRequest(render_to_string("dashboard/_pod_find.html", {
            "query": query, "error": str(exc)})))
    started = time.perf_counter()
    view = _view()
    found = [p for p in sorted(view.list("Pod"), key=presenters.created_key) if matches(p, names, selector)]
    cards = presenters.pod_cards(found[:FIND_LIMIT], now=view.now, selector=view.selector,
                                 endpoints=view.endpoint_states)
    html = render_to_string("dashboard/_pod_find.html", {
        "query": query, "cards": cards, "total": len(found), "of": len(view.list("Pod")),
        "limit": FIND_LIMIT, "ms": round((time.perf_counter() - started) * 1000)})
    return _no_cache(HttpResponse(html))
