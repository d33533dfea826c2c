"""The pod status the kubelet reports, as a pure function of what it knows (pkg/kubelet/status).

`generate_pod_status` takes the pod (its spec, and the conditions others own in its status —
PodScheduled from the scheduler, readiness-gate conditions from whoever owns the gate), the
containers' statuses and whether each finished for good, the pod IP, and the conditions the
kubelet reported last time; it returns the status to write. Nothing here does I/O or reads
the clock except through ``now``.

Conditions follow ``generate.go``: ContainersReady is True when every container is ready,
otherwise False with ``ContainersNotReady`` and ``containers with unready status: [a b]``
(``PodCompleted`` / ``PodFailed`` once the phase is terminal). Ready is ContainersReady AND every
``spec.readinessGates`` condition True; a gate whose condition is missing or not True makes it
False with ``ReadinessGatesNotReady`` and the kubelet's messages (``corresponding condition of
pod readiness gate "x" does not exist.`` / ``the status of pod readiness gate "x" is not "True",
but False``). A condition keeps its lastTransitionTime while its status does not change.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sandbox.qos import pod_qos_class

Obj = dict[str, Any]

# The conditions this kubelet owns; every other condition type in a pod's status is someone
# else's and is left alone (the status is written as a strategic merge patch keyed by type).
KUBELET_CONDITIONS = ("PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady")


@dataclass(frozen=True)
class ContainerFacts:
    """One container as the runtime sees it: its status entry and whether it is done for good
    (exited and not to be restarted under the pod's restartPolicy)."""

    status: Obj
    done: bool


def _go_list(names: Sequence[str]) -> str:
    """A list of names as Go's ``%s`` prints a []string: ``[a b]``."""
    return "[" + " ".join(names) + "]"


def pod_phase(pod: Obj, containers: Sequence[ContainerFacts], *, has_ip: bool) -> str:
    """Pending until the sandbox exists and every container ran at least once; Succeeded or
    Failed once every container is done; Running otherwise."""
    if containers and all(c.done for c in containers):
        codes = [((c.status.get("state") or {}).get("terminated") or {}).get("exitCode", 1)
                 for c in containers]
        return "Succeeded" if all(code == 0 for code in codes) else "Failed"
    ever_ran = all(
        "running" in (c.status.get("state") or {})
        or "terminated" in (c.status.get("state") or {})
        or c.status.get("lastState")
        for c in containers
    )
    return "Running" if has_ip and ever_ran else "Pending"


def containers_ready_condition(pod: Obj, statuses: Sequence[Obj], phase: str) -> Obj:
    """``GenerateContainersReadyCondition``."""
    by_name = {s.get("name"): s for s in statuses}
    unknown, unready = [], []
    for container in (pod.get("spec") or {}).get("containers") or []:
        status = by_name.get(container.get("name"))
        if status is None:
            unknown.append(container.get("name", ""))
        elif not status.get("ready"):
            unready.append(container.get("name", ""))
    if phase == "Succeeded" and not unknown:
        return {"type": "ContainersReady", "status": "False", "reason": "PodCompleted"}
    if phase == "Failed":
        return {"type": "ContainersReady", "status": "False", "reason": "PodFailed"}
    messages = []
    if unknown:
        messages.append(f"containers with unknown status: {_go_list(unknown)}")
    if unready:
        messages.append(f"containers with unready status: {_go_list(unready)}")
    if messages:
        return {
            "type": "ContainersReady",
            "status": "False",
            "reason": "ContainersNotReady",
            "message": ", ".join(messages),
        }
    return {"type": "ContainersReady", "status": "True"}


def readiness_gate_messages(pod: Obj, conditions: Sequence[Obj]) -> list[str]:
    """Why the pod's readiness gates hold it back (empty when every gate's condition is True)."""
    by_type = {c.get("type"): c for c in conditions}
    messages = []
    for gate in (pod.get("spec") or {}).get("readinessGates") or []:
        kind = gate.get("conditionType", "")
        condition = by_type.get(kind)
        if condition is None:
            messages.append(f'corresponding condition of pod readiness gate "{kind}" does not exist.')
        elif condition.get("status") != "True":
            messages.append(
                f'the status of pod readiness gate "{kind}" is not "True", but {condition.get("status")}'
            )
    return messages


def pod_ready_condition(pod: Obj, conditions: Sequence[Obj], statuses: Sequence[Obj], phase: str) -> Obj:
    """``GeneratePodReadyCondition``: ContainersReady, then the readiness gates."""
    containers_ready = containers_ready_condition(pod, statuses, phase)
    if containers_ready["status"] != "True":
        return {**containers_ready, "type": "Ready"}
    messages = readiness_gate_messages(pod, conditions)
    if messages:
        return {
            "type": "Ready",
            "status": "False",
            "reason": "ReadinessGatesNotReady",
            "message": ", ".join(messages),
        }
    return {"type": "Ready", "status": "True"}


def _stamped(condition: Obj, previous: dict[str, Obj], now: str) -> Obj:
    """The condition with lastProbeTime null and a lastTransitionTime kept while its status holds."""
    before = previous.get(condition["type"])
    changed = before is None or before.get("status") != condition["status"]
    stamp = now if changed or before is None else before.get("lastTransitionTime") or now
    return {"type": condition["type"], "status": condition["status"], "lastProbeTime": None,
            "lastTransitionTime": stamp,
            **{k: condition[k] for k in ("reason", "message") if condition.get(k)}}


def generate_pod_status(
    pod: Obj,
    containers: Sequence[ContainerFacts],
    *,
    pod_ip: str,
    host_ip: str,
    start_time: str | None,
    previous: Sequence[Obj],
    now: str,
) -> Obj:
    """The status the kubelet writes for ``pod`` (conditions: only the kubelet's own)."""
    statuses = [c.status for c in containers]
    phase = pod_phase(pod, containers, has_ip=bool(pod_ip))
    previous_by_type: dict[str, Obj] = {str(c.get("type")): c for c in previous if isinstance(c, dict)}
    others = [
        c for c in (pod.get("status") or {}).get("conditions") or []
        if isinstance(c, dict) and c.get("type") not in KUBELET_CONDITIONS
    ]
    computed = [
        {"type": "PodReadyToStartContainers", "status": "True" if pod_ip else "False"},
        {"type": "Initialized", "status": "True"},
        pod_ready_condition(pod, others, statuses, phase),
        containers_ready_condition(pod, statuses, phase),
    ]
    status: Obj = {
        "phase": phase,
        "conditions": [_stamped(c, previous_by_type, now) for c in computed],
        "hostIP": host_ip,
        "hostIPs": [{"ip": host_ip}],
        "startTime": start_time,
        "containerStatuses": statuses,
        "qosClass": pod_qos_class(pod),
    }
    if pod_ip:
        status["podIP"] = pod_ip
        status["podIPs"] = [{"ip": pod_ip}]
    return status
