"""A pod's QoS class — the one implementation (the API server's defaulting and the kubelet use it).

This is Kubernetes' ``ComputePodQOS`` (``pkg/apis/core/helper/qos``): only cpu and memory count,
quantities are compared as quantities (requests ``cpu: 1`` equals limits ``cpu: 1000m``), zero
quantities are ignored, init containers count like containers, and pod-level ``spec.resources``
(PodLevelResources) decides alone when it is set.

- BestEffort: no cpu/memory request or limit anywhere;
- Guaranteed: every container (or the pod level) limits both cpu and memory, and the summed
  requests equal the summed limits for each;
- Burstable: everything else.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

from sandbox.apiserver.quantity import parse_quantity

SUPPORTED = ("cpu", "memory")


def _positive(values: Any) -> dict[str, Fraction]:
    """The cpu/memory entries of a requests or limits map with a value above zero."""
    out: dict[str, Fraction] = {}
    if not isinstance(values, dict):
        return out
    for name, raw in values.items():
        if name not in SUPPORTED:
            continue
        try:
            value = parse_quantity(raw)
        except ValueError:
            continue
        if value > 0:
            out[name] = value
    return out


def _add(total: dict[str, Fraction], more: dict[str, Fraction]) -> None:
    for name, value in more.items():
        total[name] = total.get(name, Fraction(0)) + value


def qos_class(spec: Any) -> str:
    """Guaranteed, Burstable or BestEffort for a pod spec."""
    spec = spec if isinstance(spec, dict) else {}
    requests: dict[str, Fraction] = {}
    limits: dict[str, Fraction] = {}
    guaranteed = True
    pod_level = spec.get("resources")
    if isinstance(pod_level, dict) and (pod_level.get("requests") or pod_level.get("limits")):
        _add(requests, _positive(pod_level.get("requests")))
        pod_limits = _positive(pod_level.get("limits"))
        _add(limits, pod_limits)
        guaranteed = set(SUPPORTED) <= set(pod_limits)
    else:
        containers = [
            c
            for key in ("containers", "initContainers")
            for c in (spec.get(key) if isinstance(spec.get(key), list) else [])
            if isinstance(c, dict)
        ]
        for container in containers:
            found = container.get("resources")
            resources = found if isinstance(found, dict) else {}
            _add(requests, _positive(resources.get("requests")))
            container_limits = _positive(resources.get("limits"))
            _add(limits, container_limits)
            if not set(SUPPORTED) <= set(container_limits):
                guaranteed = False
    if not requests and not limits:
        return "BestEffort"
    matched = all(limits.get(name) == value for name, value in requests.items())
    return "Guaranteed" if guaranteed and matched and len(requests) == len(limits) else "Burstable"


def pod_qos_class(pod: Any) -> str:
    """``qos_class`` of a whole pod object."""
    return qos_class((pod or {}).get("spec") if isinstance(pod, dict) else None)
