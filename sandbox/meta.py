"""Small helpers over Kubernetes objects shared by the sandbox's components (apimachinery's job).

Label selectors, owner references, pod conditions, int-or-percent values and timestamps,
written once so every controller reads objects the same way.
"""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime
from typing import Any

Obj = dict[str, Any]


def selector_matches(selector: Obj | None, labels: dict[str, str] | None) -> bool:
    """Whether ``labels`` satisfy a LabelSelector (matchLabels and matchExpressions).

    An empty or missing selector matches nothing, as for ReplicaSets and Deployments.
    """
    if not selector or (not selector.get("matchLabels") and not selector.get("matchExpressions")):
        return False
    labels = labels or {}
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and key in labels and labels[key] in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def map_selector_matches(selector: dict[str, str] | None, labels: dict[str, str] | None) -> bool:
    """A Service's plain map selector; empty matches nothing (such Services are unmanaged)."""
    if not selector:
        return False
    labels = labels or {}
    return all(labels.get(k) == v for k, v in selector.items())


def controller_ref(obj: Obj) -> Obj | None:
    """The ownerReference with ``controller: true``, if any."""
    for ref in obj.get("metadata", {}).get("ownerReferences") or []:
        if ref.get("controller"):
            return ref
    return None


def owner_reference(owner: Obj, *, controller: bool = True) -> Obj:
    """An ownerReference pointing at ``owner`` (blockOwnerDeletion like the real controllers)."""
    return {
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": owner["metadata"]["name"],
        "uid": owner["metadata"]["uid"],
        "controller": controller,
        "blockOwnerDeletion": True,
    }


def condition(obj: Obj, type_: str) -> Obj | None:
    """The status condition of ``type_``."""
    for cond in obj.get("status", {}).get("conditions") or []:
        if cond.get("type") == type_:
            return cond
    return None


def is_pod_ready(pod: Obj) -> bool:
    """The pod's Ready condition is True."""
    cond = condition(pod, "Ready")
    return bool(cond and cond.get("status") == "True")


def is_terminating(obj: Obj) -> bool:
    """The object has a deletionTimestamp."""
    return bool(obj.get("metadata", {}).get("deletionTimestamp"))


def is_pod_active(pod: Obj) -> bool:
    """Not terminating and not finished (what ReplicaSets count)."""
    return not is_terminating(pod) and pod.get("status", {}).get("phase") not in ("Succeeded", "Failed")


def parse_time(stamp: str | None) -> float | None:
    """Seconds since the epoch of an RFC 3339 timestamp."""
    if not stamp:
        return None
    try:
        return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def now_iso() -> str:
    """The current time as Kubernetes writes it."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def is_pod_available(pod: Obj, min_ready_seconds: int, *, now: float | None = None) -> bool:
    """Ready for at least ``min_ready_seconds`` (what `availableReplicas` counts)."""
    if not is_pod_ready(pod) or is_terminating(pod):
        return False
    if min_ready_seconds <= 0:
        return True
    since = parse_time((condition(pod, "Ready") or {}).get("lastTransitionTime"))
    return since is not None and since + min_ready_seconds <= (now or time.time())


def int_or_percent(value: Any, total: int, *, round_up: bool) -> int:
    """Resolve an IntOrString such as ``25%`` against ``total``."""
    if value is None:
        return 0
    if isinstance(value, int):
        return value
    text = str(value).strip()
    if text.endswith("%"):
        fraction = int(text[:-1]) * total / 100
        return math.ceil(fraction) if round_up else math.floor(fraction)
    return int(text)
