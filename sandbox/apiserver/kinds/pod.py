"""Pods (core/v1), the sandbox's `pkg/registry/core/pod/strategy.go`.

Defaults (`SetDefaults_Pod` plus the admission plugins every cluster runs: ServiceAccount,
Priority, DefaultTolerationSeconds; at create, the ServiceAccount plugin's lookup and its
`kube-api-access-*` token volume, `sandbox/apiserver/admission.py`) and the QoS class
(`sandbox.qos`, shared with the kubelet);
the pod-update rule (only images, activeDeadlineSeconds and added tolerations may change);
printPod's columns and its READY, STATUS and RESTARTS cells (`pod_status_cells`, which the
dashboard's golden STATUS table also checks); graceful deletion; the `log`, `binding` and
`eviction` (`sandbox/apiserver/eviction.py`) subresources.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from aiohttp import web

from sandbox.apiserver import admission, errors, eviction, portforward, proxy, streaming
from sandbox.apiserver import logs as podlogs
from sandbox.apiserver.errors import ApiError
from sandbox.apiserver.kinds import node as nodes
from sandbox.apiserver.printing import (
    CORE,
    Row,
    age_col,
    age_of,
    as_int,
    col,
    doc,
    get_path,
    human_duration,
    name_col,
    name_of,
    or_none,
    parse_time,
)
from sandbox.apiserver.store import copy_object, encode
from sandbox.apiserver.strategy import PROXY_VERBS, STATUS, Resource, Strategy, Subresource, now
from sandbox.apiserver.validation.defaulting import as_list, as_map, dict_at
from sandbox.apiserver.validation.fielderrors import Errors
from sandbox.apiserver.validation.podspec import default_pod_spec, validate_pod_spec
from sandbox.qos import qos_class

if TYPE_CHECKING:
    from sandbox.apiserver.registry import Registry
    from sandbox.apiserver.server import ApiServer, Target
    from sandbox.apiserver.store import Store

DEFAULT_TOLERATIONS = (
    {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute",
     "tolerationSeconds": 300},
    {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute",
     "tolerationSeconds": 300},
)


def _default_pod(obj: dict) -> None:
    spec = dict_at(obj, "spec")
    for group in ("initContainers", "containers"):
        for ctr in as_list(spec.get(group)):
            # SetDefaults_Pod: a limit without a request makes the request equal to the limit.
            resources = as_map(as_map(ctr).get("resources"))
            limits = as_map(resources.get("limits"))
            if limits:
                requests = dict_at(resources, "requests")
                for name, value in limits.items():
                    requests.setdefault(name, value)
    default_pod_spec(spec)
    spec.setdefault("enableServiceLinks", True)
    # Admission plugins every cluster runs: ServiceAccount, Priority, DefaultTolerationSeconds.
    spec.setdefault("serviceAccountName", spec.get("serviceAccount") or "default")
    spec.setdefault("serviceAccount", spec["serviceAccountName"])
    spec.setdefault("preemptionPolicy", "PreemptLowerPriority")
    spec.setdefault("priority", 0)
    tolerations = spec.get("tolerations")
    if tolerations is None:
        tolerations = spec["tolerations"] = []
    if isinstance(tolerations, list):
        for default in DEFAULT_TOLERATIONS:
            if not any(isinstance(t, dict) and t.get("key") == default["key"]
                       and t.get("effect") in (None, "", "NoExecute") for t in tolerations):
                tolerations.append(dict(default))
    status = dict_at(obj, "status")
    status.setdefault("phase", "Pending")
    status.setdefault("qosClass", qos_class(spec))


POD_MUTABLE = ("`spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,"
               "`spec.tolerations` (only additions to existing tolerations),"
               "`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)")


def _validate_only_deleted_scheduling_gates(errs: Errors, new: Any, old: Any) -> None:
    """`validateOnlyDeletedSchedulingGates`: a gate may be removed (the pod may then be
    scheduled), never added."""
    old_names = {g.get("name") for g in old or [] if isinstance(g, dict)}
    for i, gate in enumerate(new if isinstance(new, list) else []):
        if isinstance(gate, dict) and gate.get("name") not in old_names:
            errs.forbidden(f"spec.schedulingGates[{i}].name",
                           f"only deletion is allowed, but found new scheduling gate '{gate.get('name')}'")


def _validate_pod_update(errs: Errors, obj: dict, old: dict) -> None:
    new_spec, old_spec = obj.get("spec") or {}, old.get("spec") or {}
    if not isinstance(new_spec, dict) or not isinstance(old_spec, dict):
        return
    new_cmp, old_cmp = json.loads(json.dumps(new_spec)), json.loads(json.dumps(old_spec))
    for spec_cmp in (new_cmp, old_cmp):
        for group in ("containers", "initContainers"):
            for ctr in spec_cmp.get(group) or []:
                if isinstance(ctr, dict):
                    ctr.pop("image", None)
        spec_cmp.pop("activeDeadlineSeconds", None)
        spec_cmp.pop("tolerations", None)
        spec_cmp.pop("schedulingGates", None)  # only removals, checked below
    # The scheduler binds a pod once: nodeName may go from unset to set.
    if not old_cmp.get("nodeName"):
        new_cmp.pop("nodeName", None)
        old_cmp.pop("nodeName", None)
    if new_cmp != old_cmp:
        errs.forbidden("spec", f"pod updates may not change fields other than {POD_MUTABLE}")
    old_tolerations = old_spec.get("tolerations") or []
    new_tolerations = new_spec.get("tolerations") or []
    if isinstance(new_tolerations, list) and any(t not in new_tolerations for t in old_tolerations):
        errs.forbidden("spec.tolerations",
                       "existing toleration can not be modified except its tolerationSeconds")
    _validate_only_deleted_scheduling_gates(errs, new_spec.get("schedulingGates"),
                                            old_spec.get("schedulingGates"))
    pairs = zip(new_spec.get("containers") or [], old_spec.get("containers") or [], strict=False)
    for i, (ctr, old_ctr) in enumerate(pairs):
        if isinstance(ctr, dict) and isinstance(old_ctr, dict) and not ctr.get("image"):
            errs.required(f"spec.containers[{i}].image")


# --- printPod ------------------------------------------------------------------------------------

RESTARTS_DOC = ("The number of times the containers in this pod have been restarted and when the last "
                "container in this pod has restarted.")


def _is_restartable_init(container: Mapping[str, Any] | None) -> bool:
    return isinstance(container, dict) and container.get("restartPolicy") == "Always"


def _later(current: datetime | None, candidate: Any) -> datetime | None:
    when = parse_time(candidate)
    if when is None:
        return current
    return when if current is None or when > current else current


def _condition_true(status: Mapping[str, Any], kind: str) -> bool:
    return any(isinstance(c, dict) and c.get("type") == kind and c.get("status") == "True"
               for c in status.get("conditions") or [])


def pod_status_cells(pod: Mapping[str, Any], now: datetime) -> tuple[str, str, str]:
    """printPod's READY, STATUS and RESTARTS cells."""
    spec = pod.get("spec") or {}
    status = pod.get("status") or {}
    containers = spec.get("containers") or []
    init_specs = {c.get("name"): c for c in spec.get("initContainers") or [] if isinstance(c, dict)}
    total = len(containers) + sum(1 for c in init_specs.values() if _is_restartable_init(c))
    ready = 0
    restarts = 0
    restartable_restarts = 0
    last_restart: datetime | None = None
    last_restartable_restart: datetime | None = None
    phase = status.get("phase") or ""
    reason = status.get("reason") or phase
    for condition in status.get("conditions") or []:
        if isinstance(condition, dict) and condition.get("type") == "PodScheduled" \
                and condition.get("reason") == "SchedulingGated":
            reason = "SchedulingGated"

    initializing = False
    init_statuses = [s for s in status.get("initContainerStatuses") or [] if isinstance(s, dict)]
    for i, cstatus in enumerate(init_statuses):
        restarts += as_int(cstatus.get("restartCount"))
        finished = get_path(cstatus, "lastState", "terminated", "finishedAt")
        last_restart = _later(last_restart, finished)
        restartable = _is_restartable_init(init_specs.get(cstatus.get("name")))
        if restartable:
            restartable_restarts += as_int(cstatus.get("restartCount"))
            last_restartable_restart = _later(last_restartable_restart, finished)
        state = cstatus.get("state") or {}
        terminated = state.get("terminated")
        waiting = state.get("waiting")
        if isinstance(terminated, dict) and as_int(terminated.get("exitCode")) == 0:
            continue
        if restartable and cstatus.get("started"):
            if cstatus.get("ready"):
                ready += 1
            continue
        if isinstance(terminated, dict):
            if not terminated.get("reason"):
                if as_int(terminated.get("signal")):
                    reason = f"Init:Signal:{as_int(terminated.get('signal'))}"
                else:
                    reason = f"Init:ExitCode:{as_int(terminated.get('exitCode'))}"
            else:
                reason = f"Init:{terminated['reason']}"
        elif isinstance(waiting, dict) and waiting.get("reason") not in (None, "", "PodInitializing"):
            reason = f"Init:{waiting['reason']}"
        else:
            reason = f"Init:{i}/{len(init_specs)}"
        initializing = True
        break

    if not initializing or _condition_true(status, "Initialized"):
        restarts = restartable_restarts
        last_restart = last_restartable_restart
        has_running = False
        for cstatus in reversed([s for s in status.get("containerStatuses") or [] if isinstance(s, dict)]):
            restarts += as_int(cstatus.get("restartCount"))
            last_restart = _later(last_restart, get_path(cstatus, "lastState", "terminated", "finishedAt"))
            state = cstatus.get("state") or {}
            waiting, terminated = state.get("waiting"), state.get("terminated")
            if isinstance(waiting, dict) and waiting.get("reason"):
                reason = waiting["reason"]
            elif isinstance(terminated, dict) and terminated.get("reason"):
                reason = terminated["reason"]
            elif isinstance(terminated, dict):
                if as_int(terminated.get("signal")):
                    reason = f"Signal:{as_int(terminated.get('signal'))}"
                else:
                    reason = f"ExitCode:{as_int(terminated.get('exitCode'))}"
            elif cstatus.get("ready") and state.get("running") is not None:
                has_running = True
                ready += 1
        if reason == "Completed" and has_running:
            reason = "Running" if _condition_true(status, "Ready") else "NotReady"

    deleting = bool(get_path(pod, "metadata", "deletionTimestamp"))
    if deleting and status.get("reason") == "NodeLost":
        reason = "Unknown"
    elif deleting and phase not in ("Succeeded", "Failed"):
        reason = "Terminating"
    restarts_cell = str(restarts)
    if restarts and last_restart is not None:
        restarts_cell = f"{restarts} ({human_duration((now - last_restart).total_seconds())} ago)"
    return f"{ready}/{total}", str(reason), restarts_cell


def _pod_row(pod: dict, now: datetime) -> Row:
    spec, status = pod.get("spec") or {}, pod.get("status") or {}
    ready, reason, restarts = pod_status_cells(pod, now)
    ips = status.get("podIPs") or []
    ip = (ips[0].get("ip") if ips and isinstance(ips[0], dict) else None) or status.get("podIP")
    gates = spec.get("readinessGates") or []
    gates_cell = "<none>"
    if gates:
        conditions = {c.get("type"): c.get("status") for c in status.get("conditions") or []
                      if isinstance(c, dict)}
        true = sum(1 for g in gates
                   if isinstance(g, dict) and conditions.get(g.get("conditionType")) == "True")
        gates_cell = f"{true}/{len(gates)}"
    return [name_of(pod), ready, reason, restarts, age_of(pod, now), or_none(ip),
            or_none(spec.get("nodeName")), or_none(status.get("nominatedNodeName")), gates_cell]


POD_ROW_CONDITIONS = {
    "Succeeded": [{"type": "Completed", "status": "True", "reason": "Succeeded",
                   "message": "The pod has completed successfully."}],
    "Failed": [{"type": "Completed", "status": "True", "reason": "Failed", "message": "The pod failed."}],
}


# --- subresources ---------------------------------------------------------------------------------


async def bind(registry: Registry, namespace: str, name: str, binding: dict) -> dict:
    """pods/binding: assign a pending pod to a node (the scheduler's one write)."""
    target = binding.get("target") if isinstance(binding, dict) else None
    node = target.get("name") if isinstance(target, dict) else None
    if not isinstance(node, str) or not node:
        raise ApiError(422, "Invalid", f'Binding "{name}" is invalid: target.name: Required value',
                       details={"name": name, "kind": "Binding", "causes": [
                           {"reason": "FieldValueRequired", "message": "Required value",
                            "field": "target.name"}]})
    pod = copy_object(registry.get(RESOURCE, namespace, name).obj)
    if pod["metadata"].get("deletionTimestamp"):
        raise errors.conflict(RESOURCE, name, "the pod is being deleted")
    current = pod.setdefault("spec", {}).get("nodeName")
    if current:
        raise errors.conflict(RESOURCE, name, f"pod {name} is already assigned to node \"{current}\"")
    pod["spec"]["nodeName"] = node
    conditions = [c for c in pod.setdefault("status", {}).get("conditions") or []
                  if c.get("type") != "PodScheduled"]
    conditions.append({"type": "PodScheduled", "status": "True", "lastProbeTime": None,
                       "lastTransitionTime": now()})
    pod["status"]["conditions"] = conditions
    _, durable = registry.store.put(RESOURCE.key, pod)
    await durable
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}


async def serve_binding(api: ApiServer, request: web.Request, target: Target) -> web.StreamResponse:
    """POST pods/NAME/binding."""
    body = await api.object_body(request)
    status = await bind(api.registry, target.namespace, target.name or "", body)
    return web.Response(status=201, body=encode(status), content_type="application/json")


RESOURCE = Resource(
    "", "v1", "Pod", "pods", "io.k8s.api.core.v1.Pod", short_names=("po",), categories=("all",),
    generation=True,
    subresources=(STATUS,
                  Subresource("log", verbs=("get",), kind=("", "", "Pod"), openapi="log",
                              handler=podlogs.serve_log),
                  Subresource("binding", verbs=("create",), kind=("", "", "Binding"), openapi="create",
                              definition="io.k8s.api.core.v1.Binding", handler=serve_binding),
                  Subresource("eviction", verbs=("create",), kind=("policy", "v1", "Eviction"),
                              openapi="create", definition="io.k8s.api.policy.v1.Eviction",
                              handler=eviction.serve_eviction),
                  Subresource("proxy", verbs=PROXY_VERBS, kind=("", "", "PodProxyOptions"), openapi="",
                              handler=proxy.serve_pod_proxy),
                  Subresource("exec", verbs=("create", "get"), kind=("", "", "PodExecOptions"), openapi="",
                              handler=streaming.serve_exec),
                  Subresource("attach", verbs=("create", "get"), kind=("", "", "PodAttachOptions"),
                              openapi="", handler=streaming.serve_attach),
                  Subresource("portforward", verbs=("create", "get"), kind=("", "", "PodPortForwardOptions"),
                              openapi="", handler=portforward.serve_portforward)),
    field_selectors=("spec.nodeName", "spec.restartPolicy", "spec.schedulerName", "spec.serviceAccountName",
                     "spec.hostNetwork", "status.phase", "status.podIP", "status.nominatedNodeName"))


class PodStrategy(Strategy):
    """Pods: defaults and admission, the update rule, printPod, graceful deletion."""

    resource = RESOURCE
    reset_status_on_create = True
    return_deleted_object = True
    graceful_deletion = True

    def default(self, obj: dict) -> None:
        """`SetDefaults_Pod`, the admission defaults and status.qosClass."""
        _default_pod(obj)

    def validate(self, errs: Errors, obj: dict) -> None:
        """`ValidatePod`: the pod spec."""
        validate_pod_spec(errs, obj.get("spec"), "spec")

    def validate_update(self, errs: Errors, obj: dict, old: dict) -> None:
        """`ValidatePodUpdate`: only images, activeDeadlineSeconds and tolerations may change."""
        _validate_pod_update(errs, obj, old)

    def allocate(self, registry: Registry, obj: dict, old: dict | None) -> None:
        """On create, the ServiceAccount admission plugin (`admission.admit_pod`)."""
        if old is None:
            admission.admit_pod(registry, self.resource, obj)

    def columns(self) -> list[dict[str, Any]]:
        """printPod's columns."""
        return [name_col(),
                col("Ready", description="The aggregate readiness state of this pod for accepting traffic."),
                col("Status", description="The aggregate status of the containers in this pod."),
                col("Restarts", description=RESTARTS_DOC),
                age_col(),
                col("IP", description=doc(CORE + "PodStatus", "podIP"), priority=1),
                col("Node", description=doc(CORE + "PodSpec", "nodeName"), priority=1),
                col("Nominated Node", description=doc(CORE + "PodStatus", "nominatedNodeName"), priority=1),
                col("Readiness Gates", description=doc(CORE + "PodSpec", "readinessGates"), priority=1)]

    def row(self, obj: dict, now: datetime) -> Row:
        """printPod's cells."""
        return _pod_row(obj, now)

    def row_conditions(self, obj: dict) -> list[dict[str, Any]] | None:
        """Finished pods are marked Completed (what `kubectl get` hides without -a)."""
        return POD_ROW_CONDITIONS.get(str(get_path(obj, "status", "phase")))

    def grace_period(self, store: Store, obj: dict, options: dict) -> int:
        """How long a pod may take to terminate: 0 (delete now) when it is not bound to an
        existing node or has finished, else the DeleteOptions' or the pod's grace period."""
        spec, status = obj.get("spec", {}), obj.get("status", {})
        node_name = spec.get("nodeName")
        if not node_name or store.get(nodes.RESOURCE.key, "", node_name) is None:
            return 0
        if status.get("phase") in ("Succeeded", "Failed"):
            return 0
        grace = options.get("gracePeriodSeconds")
        if grace is None:
            grace = spec.get("terminationGracePeriodSeconds", 30)
        return max(int(grace), 0)


STRATEGY = PodStrategy()
