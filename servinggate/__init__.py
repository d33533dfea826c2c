"""The backend pods' readiness gate ``lb-demo.dev/serving``: the one implementation of its rule.

k8s/backend.yaml declares ``spec.readinessGates: [{conditionType: lb-demo.dev/serving}]``. On
every Kubernetes cluster a pod is then Ready only when its containers are ready AND its status
carries that condition with status True (a missing condition keeps it unready). The learner's
readiness switch is this condition: the dashboard sets it False or True through
``pods/<name>/status``, and the kubelet and the EndpointSlice controller do the rest, exactly
as with any readiness gate (AWS's and GKE's load balancers use the same mechanism).

The rule: a pod that carries the gate and has no such condition yet gets it True ("serving
by default"); after that only the switch changes it. Two hosts apply the rule, with this code:

- the sandbox's controller-manager (`sandbox/controllers/servinggate.py`), so that
  ``python -m sandbox up`` and kubectl alone run the seed's lessons;
- the dashboard process (`dashboard/gatekeeper.py`), so that minikube or any cluster running
  the dashboard does the same.

Both only ever add a missing condition, so running both is harmless. On a cluster where
neither runs, the backend pods stay 0/1 READY with ``ReadinessGatesNotReady`` until someone sets
the condition (the README shows the kubectl command).

Dependency-free on purpose: both the sandbox and the dashboard image import it.
"""

from __future__ import annotations

from typing import Any

CONDITION_TYPE = "lb-demo.dev/serving"
DEFAULT_REASON = "ServingByDefault"
DEFAULT_MESSAGE = "new pod: serving until its readiness switch is turned off"
SWITCH_REASONS = {True: "SwitchedOn", False: "SwitchedOff"}
# A strategic merge patch: conditions merge by type, so no other condition is touched.
PATCH_CONTENT_TYPE = "application/strategic-merge-patch+json"

Obj = dict[str, Any]


def is_gated(pod: Obj) -> bool:
    """The pod declares the serving readiness gate."""
    gates = ((pod or {}).get("spec") or {}).get("readinessGates") or []
    return any(isinstance(g, dict) and g.get("conditionType") == CONDITION_TYPE for g in gates)


def gate_condition(pod: Obj) -> Obj | None:
    """The pod's ``lb-demo.dev/serving`` condition, if it has one."""
    for condition in ((pod or {}).get("status") or {}).get("conditions") or []:
        if isinstance(condition, dict) and condition.get("type") == CONDITION_TYPE:
            return condition
    return None


def _condition(status: bool, reason: str, message: str, now: str) -> Obj:
    return {
        "type": CONDITION_TYPE,
        "status": "True" if status else "False",
        "reason": reason,
        "message": message,
        "lastProbeTime": None,
        "lastTransitionTime": now,
    }


def default_patch(pod: Obj, *, now: str) -> Obj | None:
    """The rule: the ``pods/status`` patch that starts a gated pod serving, or None when there is
    nothing to do (no gate, the condition already set, the pod terminating or finished)."""
    if not is_gated(pod) or gate_condition(pod) is not None:
        return None
    if (pod.get("metadata") or {}).get("deletionTimestamp"):
        return None
    if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
        return None
    return {"status": {"conditions": [_condition(True, DEFAULT_REASON, DEFAULT_MESSAGE, now)]}}


def switch_patch(pod: Obj, serving: bool, *, now: str, by: str = "the lb-demo dashboard") -> Obj:
    """The ``pods/status`` patch of the readiness switch (lastTransitionTime kept when the
    condition already has that status)."""
    message = f"readiness switch turned {'on' if serving else 'off'} from {by}"
    condition = _condition(serving, SWITCH_REASONS[serving], message, now)
    current = gate_condition(pod)
    unchanged = current is not None and current.get("status") == condition["status"]
    if unchanged and current.get("lastTransitionTime"):  # type: ignore[union-attr]
        condition["lastTransitionTime"] = current["lastTransitionTime"]  # type: ignore[index]
    return {"status": {"conditions": [condition]}}
