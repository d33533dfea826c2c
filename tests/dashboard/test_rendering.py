"""The page's partials as rendered HTML: the Service card reads like `kubectl get svc`, endpoint
addresses never break inside ``ip:port``, repeated events show kubectl's ``(xN over ...)``, and
the favicon is a static file the page links (so browsers stop asking for /favicon.ico)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

from django.conf import settings
from django.template.loader import render_to_string
from django.test import Client

from dashboard.presenters import endpoints_view, event_views, service_view

NOW = datetime(2026, 11, 24, 21, 10, tzinfo=UTC)
CSS = Path(settings.BASE_DIR) / "dashboard" / "static" / "dashboard" / "dashboard.css"

SERVICE = {
    "metadata": {"name": "backend-service"},
    "spec": {"type": "NodePort", "clusterIP": "127.96.0.2", "selector": {"app": "backend"},
             "ports": [{"name": "http", "port": 80, "targetPort": "http", "nodePort": 30080,
                        "protocol": "TCP"}]},
}
SLICE = {
    "metadata": {"name": "backend-service-x1", "labels": {"kubernetes.io/service-name": "backend-service"}},
    "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
    "endpoints": [{"addresses": ["127.235.1.11"], "conditions": {"ready": True},
                   "targetRef": {"kind": "Pod", "name": "backend-7d9-abcde"}}],
}


def text_of(html: str) -> str:
    """The visible text of an HTML fragment, whitespace collapsed."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).strip()


def test_service_card_labels_type_cluster_ip_and_ports_like_kubectl() -> None:
    view = service_view([SERVICE], name="backend-service", slices=[SLICE], endpoints=[])
    html = render_to_string("dashboard/_service.html", {"service": view, "oob": ""})
    text = text_of(html)
    assert "TYPE CLUSTER-IP PORT(S) NodePort 127.96.0.2 80:30080/TCP" in text
    assert "port 80/TCP (http) → targetPort http (8080) · NodePort 30080" in text
    assert '<td class="service-type">NodePort</td><td><code class="cluster-ip">127.96.0.2</code></td>' in html
    assert "ClusterIP 127.96.0.2 is stable" in text


def test_endpoint_addresses_are_one_unbreakable_code_element() -> None:
    view = endpoints_view([SLICE], [], service="backend-service")
    html = render_to_string("dashboard/_endpoints.html", {"endpoints": view, "oob": ""})
    assert "<code>127.235.1.11:8080</code>" in html
    css = CSS.read_text()
    rule = re.search(r"\.endpoint-column li code \{([^}]*)\}", css)
    assert rule is not None and "white-space: nowrap" in rule.group(1)
    column = re.search(r"\.endpoint-column li \{([^}]*)\}", css)
    assert column is not None and "break-all" not in column.group(1)


def test_repeated_events_render_with_kubectl_count() -> None:
    event = {"metadata": {"name": "e1", "resourceVersion": "5"}, "type": "Warning", "reason": "Unhealthy",
             "involvedObject": {"kind": "Pod", "name": "backend-a"},
             "message": "Readiness probe failed: HTTP probe failed with statuscode: 503",
             "firstTimestamp": "2026-11-24T21:09:30Z", "lastTimestamp": "2026-11-24T21:09:50Z", "count": 3}
    html = render_to_string("dashboard/_events.html", {"events": event_views([event], now=NOW), "oob": ""})
    assert 'class="event event-warning"' in html
    assert "(x3 over 20s)" in text_of(html)


def test_login_page_links_a_static_svg_favicon_that_is_served() -> None:
    web = Client()
    page = web.get("/login/")
    assert page.status_code == 200
    match = re.search(r'<link rel="icon" href="([^"]+)" type="image/svg\+xml">', page.content.decode())
    assert match is not None and match.group(1).endswith("dashboard/favicon.svg")
    icon = web.get(match.group(1))
    assert icon.status_code == 200 and icon["Content-Type"].startswith("image/svg+xml")
    body = b"".join(icon.streaming_content) if icon.streaming else icon.content
    assert body.startswith(b"<svg")
