"""The Ingress and HorizontalPodAutoscaler panels: what the page shows beyond the Service.

Pure functions of watched objects (like dashboard.presenters), kept apart because these two
kinds are optional: a cluster without an ingress controller or metrics, or a Role without read
access to them, simply shows the panels empty with a hint.

- :func:`ingress_views`: each Ingress of the namespace like ``kubectl get ingress`` / ``describe``
  — class, address (the controller's published ip or hostname, and port), and each rule as
  host, path and pathType → Service:port.
- :func:`hpa_views`: each HPA like ``kubectl get hpa`` / ``describe`` — target, current vs target
  utilisation, min/max, current and desired replicas, its conditions, and the last rescale with
  the reason from its ``SuccessfulRescale`` Event ("New size: 4; reason: cpu resource
  utilization (percentage of request) above target").
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from dashboard.objects import age, dicts, human_age, parse_time

Obj = dict[str, Any]


@dataclass(frozen=True)
class IngressPath:
    """One path of a rule: where its requests go."""

    host: str
    path: str
    path_type: str
    backend: str


@dataclass(frozen=True)
class IngressView:
    """One Ingress."""

    name: str
    ingress_class: str
    address: str
    paths: tuple[IngressPath, ...]
    default_backend: str
    age: str


@dataclass(frozen=True)
class HpaView:
    """One HorizontalPodAutoscaler."""

    name: str
    reference: str
    current: str
    target: str
    min_replicas: int
    max_replicas: int
    current_replicas: int
    desired_replicas: int
    conditions: tuple[tuple[str, str, str, str], ...]
    last_scale: str
    last_reason: str
    age: str


def _backend(spec: Any) -> str:
    service = (spec or {}).get("service") or {}
    port = service.get("port") or {}
    shown = port.get("number") or port.get("name") or "?"
    return f"{service.get('name', '?')}:{shown}" if service else "(resource backend)"


def ingress_address(ingress: Obj) -> str:
    """``ip:port`` (or hostname) where the Ingress's controller listens, "" while it has none."""
    for entry in dicts(((ingress.get("status") or {}).get("loadBalancer") or {}).get("ingress")):
        host = entry.get("ip") or entry.get("hostname")
        if host:
            ports = [p.get("port") for p in dicts(entry.get("ports")) if p.get("port")]
            return f"{host}:{ports[0]}" if ports else str(host)
    return ""


def ingress_views(ingresses: list[Obj], *, now: datetime) -> list[IngressView]:
    """Every Ingress, by name."""
    views = []
    for ing in sorted(ingresses, key=lambda i: str((i.get("metadata") or {}).get("name"))):
        spec = ing.get("spec") or {}
        paths = tuple(
            IngressPath(host=str(rule.get("host") or "*"), path=str(p.get("path") or "/"),
                        path_type=str(p.get("pathType") or ""), backend=_backend(p.get("backend")))
            for rule in dicts(spec.get("rules")) for p in dicts((rule.get("http") or {}).get("paths"))
        )
        views.append(IngressView(
            name=str((ing.get("metadata") or {}).get("name")),
            ingress_class=str(spec.get("ingressClassName") or "<none>"),
            address=ingress_address(ing), paths=paths,
            default_backend=_backend(spec["defaultBackend"]) if spec.get("defaultBackend") else "",
            age=age(ing, now)))
    return views


def _metric_texts(spec: Obj, status: Obj) -> tuple[str, str]:
    """(current, target) of the first metric, as kubectl get hpa's TARGETS shows them."""
    metrics = dicts(spec.get("metrics"))
    if not metrics:
        return "<unknown>", "<none>"
    source = metrics[0].get("resource") or {}
    target = source.get("target") or {}
    current_metrics = dicts(status.get("currentMetrics"))
    current = ((current_metrics[0].get("resource") or {}).get("current") or {}) if current_metrics else {}
    if target.get("averageValue") is not None:
        wanted = f"{source.get('name')} {target['averageValue']}"
        return str(current.get("averageValue") or "<unknown>"), wanted
    utilization = current.get("averageUtilization")
    shown = f"{utilization}%" if utilization is not None else "<unknown>"
    return shown, f"{target.get('averageUtilization', '?')}% of the {source.get('name', 'cpu')} request"


def hpa_views(hpas: list[Obj], events: list[Obj], *, now: datetime) -> list[HpaView]:
    """Every HPA, with its last rescale from the Events."""
    views = []
    for hpa in sorted(hpas, key=lambda h: str((h.get("metadata") or {}).get("name"))):
        meta, spec, status = hpa.get("metadata") or {}, hpa.get("spec") or {}, hpa.get("status") or {}
        ref = spec.get("scaleTargetRef") or {}
        current, target = _metric_texts(spec, status)
        rescales = sorted(
            (e for e in events if e.get("reason") == "SuccessfulRescale"
             and (e.get("involvedObject") or {}).get("name") == meta.get("name")
             and (e.get("involvedObject") or {}).get("kind") == "HorizontalPodAutoscaler"),
            key=lambda e: str(e.get("lastTimestamp") or e.get("eventTime") or ""))
        last = rescales[-1] if rescales else None
        last_time = parse_time(status.get("lastScaleTime"))
        views.append(HpaView(
            name=str(meta.get("name")), reference=f"{ref.get('kind', '')}/{ref.get('name', '')}",
            current=current, target=target, min_replicas=int(spec.get("minReplicas") or 1),
            max_replicas=int(spec.get("maxReplicas") or 0),
            current_replicas=int(status.get("currentReplicas") or 0),
            desired_replicas=int(status.get("desiredReplicas") or 0),
            conditions=tuple((str(c.get("type")), str(c.get("status")), str(c.get("reason") or ""),
                              str(c.get("message") or "")) for c in dicts(status.get("conditions"))),
            last_scale=f"{human_age(last_time, now)} ago" if last_time else "never",
            last_reason=str(last.get("message") or "") if last else "",
            age=age(hpa, now)))
    return views
