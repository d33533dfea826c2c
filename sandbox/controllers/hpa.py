"""The HorizontalPodAutoscaler controller: kube-controller-manager's `podautoscaler`, for Resource metrics.

Every `SYNC_PERIOD` (and at once when an HPA appears or changes) each HPA is reconciled the
way `HorizontalController.reconcileAutoscaler` does it:

1. read the target's ``/scale`` (Deployment or ReplicaSet): current replicas and selector;
2. outside [minReplicas, maxReplicas] -> move inside; ``spec.replicas: 0`` -> scaling disabled;
3. otherwise, per metric: list the selected pods and their PodMetrics (through the API, from
   metrics.k8s.io like the real controller) and let `hpa_algorithm.resource_replicas` propose
   a count (CPU or memory, ``Utilization`` of the requests or an ``AverageValue``); the highest
   proposal wins;
4. `hpa_algorithm.normalize`: stabilization window, rate limits (``behavior``), min/max;
5. a different count -> PATCH ``/scale`` and a Normal ``SuccessfulRescale`` Event "New size: N;
   reason: cpu resource utilization (percentage of request) above target" (or "All metrics
   below target"); then ``status`` (currentReplicas, desiredReplicas, currentMetrics,
   lastScaleTime and the AbleToScale / ScalingActive / ScalingLimited conditions with
   Kubernetes' reasons and messages).

Metric failures are Warning Events (``FailedGetResourceMetric``, ``FailedComputeMetricsReplicas``)
and ``ScalingActive=False``, with Kubernetes' messages.

Sandbox defaults are shorter than kube-controller-manager's so a lesson takes about a minute
(flags of the real component in brackets): sync every 5 s [--horizontal-pod-autoscaler-sync-period
15s], downscale stabilization 30 s [..-downscale-stabilization 5m], CPU initialization period
30 s [..-cpu-initialization-period 5m], initial readiness delay 10 s [..-initial-readiness-delay
30s]; the tolerance is Kubernetes' 0.1. Kubelet metrics are sampled every 5 s (metrics-server's
default resolution is 15 s).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from typing import Any

from sandbox.apiserver.quantity import parse_quantity
from sandbox.client import (
    DEPLOYMENTS,
    PODS,
    REPLICASETS,
    ApiClient,
    ApiError,
    Informer,
    InformerFactory,
    Obj,
    Resource,
    key_of,
)
from sandbox.controllers.hpa_algorithm import (
    TOLERANCE,
    History,
    MetricsError,
    PodInfo,
    PodMetric,
    normalize,
    record_scale_event,
    resource_replicas,
)
from sandbox.meta import condition, now_iso, parse_time
from sandbox.record import NORMAL, WARNING, EventRecorder

log = logging.getLogger("sandbox.controllers.hpa")

HPAS = Resource("autoscaling/v2", "horizontalpodautoscalers", "HorizontalPodAutoscaler")
POD_METRICS = Resource("metrics.k8s.io/v1beta1", "pods", "PodMetrics")
SCALE_TARGETS = {("apps", "Deployment"): DEPLOYMENTS, ("apps", "ReplicaSet"): REPLICASETS}

SYNC_PERIOD = 5.0
DOWNSCALE_STABILIZATION = 30.0
CPU_INITIALIZATION_PERIOD = 30.0
INITIAL_READINESS_DELAY = 10.0


def milli(quantity: Any) -> float:
    """A quantity in thousandths (millicores for CPU, millibytes for memory)."""
    return float(parse_quantity(quantity) * 1000)


def pod_request_milli(pod: Obj, resource: str) -> tuple[int | None, str]:
    """The pod's summed container requests of ``resource`` (None and the container lacking one)."""
    total = 0.0
    for container in (pod.get("spec") or {}).get("containers") or []:
        value = ((container.get("resources") or {}).get("requests") or {}).get(resource)
        if value is None:
            return None, container.get("name", "")
        total += milli(value)
    return int(total), ""


def pod_info(pod: Obj, resource: str) -> PodInfo:
    """What the replica calculator needs of a pod."""
    status = pod.get("status") or {}
    ready = condition(pod, "Ready")
    request, lacking = pod_request_milli(pod, resource)
    return PodInfo(
        name=pod["metadata"]["name"],
        phase=status.get("phase") or "Pending",
        deleting=bool(pod["metadata"].get("deletionTimestamp")),
        ready=None if ready is None else ready.get("status") == "True",
        ready_since=parse_time((ready or {}).get("lastTransitionTime")),
        start_time=parse_time(status.get("startTime")),
        request_milli=request,
        missing_request_container=lacking,
    )


def pod_metric(item: Obj, resource: str) -> PodMetric:
    """A PodMetrics object as the calculator's sample (containers summed)."""
    usage = sum(milli((c.get("usage") or {}).get(resource, "0")) for c in item.get("containers") or [])
    window = str(item.get("window") or "0s").rstrip("s") or "0"
    return PodMetric(usage, parse_time(item.get("timestamp")) or time.time(), float(window))


def set_condition(conditions: list[Obj], type_: str, status: str, reason: str, message: str) -> None:
    """`setConditionInList`: add or update one condition (transition time only on a status change)."""
    for cond in conditions:
        if cond["type"] == type_:
            if cond["status"] != status:
                cond["lastTransitionTime"] = now_iso()
            cond.update(status=status, reason=reason, message=message)
            return
    conditions.append({"type": type_, "status": status, "lastTransitionTime": now_iso(), "reason": reason,
                       "message": message})


class HorizontalPodAutoscalerController:
    """Reconciles every HPA every sync period."""

    def __init__(
        self,
        client: ApiClient,
        informers: InformerFactory,
        *,
        sync_period: float = SYNC_PERIOD,
        downscale_stabilization: float = DOWNSCALE_STABILIZATION,
        cpu_initialization_period: float = CPU_INITIALIZATION_PERIOD,
        initial_readiness_delay: float = INITIAL_READINESS_DELAY,
        tolerance: float = TOLERANCE,
    ) -> None:
        self.client = client
        self.sync_period = sync_period
        self.downscale_stabilization = downscale_stabilization
        self.cpu_initialization_period = cpu_initialization_period
        self.initial_readiness_delay = initial_readiness_delay
        self.tolerance = tolerance
        self.hpa_informer: Informer = informers.informer(HPAS)
        self.recorder = EventRecorder(client, component="horizontal-pod-autoscaler")
        self.histories: dict[str, History] = {}
        self._wake = asyncio.Event()
        self.hpa_informer.add_handler(self._changed)

    def _changed(self, kind: str, old: Obj | None, new: Obj | None) -> None:
        if new is None:
            if old is not None:
                self.histories.pop(key_of(old), None)
        elif old is None or old.get("spec") != new.get("spec"):
            self._wake.set()

    async def run(self) -> None:
        """Reconcile all HPAs every sync period, and early when one is added or its spec changes."""
        while True:
            self._wake.clear()
            for hpa in list(self.hpa_informer.items()):
                try:
                    await self.reconcile(hpa)
                except Exception:
                    log.exception("reconciling HPA %s failed", key_of(hpa))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.sync_period)

    def event(self, hpa: Obj, type_: str, reason: str, message: str) -> None:
        """An Event on the HPA."""
        self.recorder.event({**hpa, "kind": "HorizontalPodAutoscaler", "apiVersion": "autoscaling/v2"}, type_,
                            reason, message)

    async def reconcile(self, hpa: Obj) -> None:
        """`reconcileAutoscaler` for one HPA."""
        key = key_of(hpa)
        meta, spec = hpa["metadata"], hpa.get("spec") or {}
        namespace = meta["namespace"]
        old_status = hpa.get("status") or {}
        conditions: list[Obj] = [dict(c) for c in old_status.get("conditions") or []]
        status: Obj = {k: v for k, v in old_status.items() if k != "conditions"}
        ref = spec.get("scaleTargetRef") or {}
        group = str(ref.get("apiVersion") or "").rpartition("/")[0]
        target = SCALE_TARGETS.get((group, ref.get("kind", "")))
        try:
            if target is None:
                kind = ref.get("kind")
                raise ApiError(404, {"message": f'no matches for kind "{kind}" in group "{group}"'})
            path = target.path(namespace=namespace, name=str(ref.get("name") or ""), subresource="scale")
            scale = await self.client.request("GET", path)
        except ApiError as exc:
            message = exc.body.get("message", str(exc)) if isinstance(exc.body, dict) else str(exc)
            self.event(hpa, WARNING, "FailedGetScale", message)
            set_condition(conditions, "AbleToScale", "False", "FailedGetScale",
                          f"the HPA controller was unable to get the target's current scale: {message}")
            await self.write_status(hpa, {**status, "conditions": conditions})
            return
        set_condition(conditions, "AbleToScale", "True", "SucceededGetScale",
                      "the HPA controller was able to get the target's current scale")
        current = int((scale.get("spec") or {}).get("replicas") or 0)
        history = self.histories.setdefault(key, History())
        if not history.recommendations:
            history.recommendations.append((time.time(), current))
        min_replicas = int(spec.get("minReplicas") or 1)
        max_replicas = int(spec.get("maxReplicas") or 1)
        desired, reason, metric_statuses = 0, "", status.get("currentMetrics")
        rescale = True
        if current == 0 and min_replicas != 0:
            rescale = False
            set_condition(conditions, "ScalingActive", "False", "ScalingDisabled",
                          "scaling is disabled since the replica count of the target is zero")
        elif current > max_replicas:
            desired, reason = max_replicas, "Current number of replicas above Spec.MaxReplicas"
        elif current < min_replicas:
            desired, reason = min_replicas, "Current number of replicas below Spec.MinReplicas"
        else:
            try:
                proposal, metric_name, metric_statuses = await self.replicas_for_metrics(
                    hpa, scale, conditions, current)
            except MetricsError as exc:
                self.event(hpa, WARNING, "FailedComputeMetricsReplicas", str(exc))
                status["currentReplicas"] = current
                await self.write_status(hpa, {**status, "conditions": conditions})
                return
            if proposal > current:
                reason = f"{metric_name} above target"
            elif proposal < current:
                reason = "All metrics below target"
            desired, limits = normalize(
                history, now=time.time(), current=current, desired=proposal, min_replicas=min_replicas,
                max_replicas=max_replicas, behavior=spec.get("behavior"),
                downscale_window=self.downscale_stabilization)
            for type_, cond_status, cond_reason, message in limits:
                set_condition(conditions, type_, cond_status, cond_reason, message)
            rescale = desired != current
        if rescale:
            try:
                await self.client.patch(target, f"{ref.get('name')}", {"spec": {"replicas": desired}},
                                        namespace=namespace, subresource="scale")
            except ApiError as exc:
                self.event(hpa, WARNING, "FailedRescale",
                           f"New size: {desired}; reason: {reason}; error: {exc}")
                set_condition(conditions, "AbleToScale", "False", "FailedUpdateScale",
                              f"the HPA controller was unable to update the target scale: {exc}")
                await self.write_status(hpa, {**status, "currentReplicas": current, "conditions": conditions})
                return
            set_condition(conditions, "AbleToScale", "True", "SucceededRescale",
                          f"the HPA controller was able to update the target scale to {desired}")
            self.event(hpa, NORMAL, "SuccessfulRescale", f"New size: {desired}; reason: {reason}")
            record_scale_event(history, spec.get("behavior"), now=time.time(), before=current, after=desired)
            log.info("successful rescale of %s, old size: %d, new size: %d, reason: %s",
                     key, current, desired, reason)
            status["lastScaleTime"] = now_iso()
        else:
            desired = current
        status.update(currentReplicas=current, desiredReplicas=desired)
        if metric_statuses:
            status["currentMetrics"] = metric_statuses
        await self.write_status(hpa, {**status, "conditions": conditions})

    async def replicas_for_metrics(self, hpa: Obj, scale: Obj, conditions: list[Obj],
                                   current: int) -> tuple[int, str, list[Obj]]:
        """`computeReplicasForMetrics`: the highest proposal over the metrics, and their statuses."""
        selector = (scale.get("status") or {}).get("selector") or ""
        if not selector:
            self.event(hpa, WARNING, "SelectorRequired", "selector is required")
            set_condition(conditions, "ScalingActive", "False", "InvalidSelector",
                          "the HPA target's scale is missing a selector")
            raise MetricsError("selector is required")
        namespace = hpa["metadata"]["namespace"]
        specs = (hpa.get("spec") or {}).get("metrics") or []
        pods = (await self.client.list(PODS, namespace=namespace, label_selector=selector)).get("items") or []
        try:
            listed = await self.client.list(POD_METRICS, namespace=namespace, label_selector=selector)
            metric_items = listed.get("items") or []
        except ApiError:
            metric_items = []
        best, best_name = 0, ""
        statuses: list[Obj] = []
        failures: list[str] = []
        first_failure: tuple[str, str] | None = None
        for spec in specs:
            try:
                replicas, name, status = self.resource_metric(spec, pods, metric_items, current)
            except MetricsError as exc:
                resource = ((spec or {}).get("resource") or {}).get("name", "cpu")
                kind = (spec or {}).get("type", "")
                if kind == "Resource":
                    reason = "FailedGetResourceMetric"
                    message = f"failed to get {resource} utilization: {exc}"
                else:
                    reason, message = f"FailedGet{kind}Metric", str(exc)
                self.event(hpa, WARNING, reason, message)
                failures.append(f"failed to get {resource} resource metric value: {message}")
                if first_failure is None:
                    first_failure = (reason, f"the HPA was unable to compute the replica count: {message}")
                statuses.append({})
                continue
            statuses.append(status)
            if best == 0 or replicas > best:
                best, best_name = replicas, name
        if failures and len(failures) >= len(specs):
            assert first_failure is not None
            set_condition(conditions, "ScalingActive", "False", *first_failure)
            raise MetricsError(f"invalid metrics ({len(failures)} invalid out of {len(specs)}), "
                               f"first error is: {failures[0]}")
        set_condition(conditions, "ScalingActive", "True", "ValidMetricFound",
                      f"the HPA was able to successfully calculate a replica count from {best_name}")
        return best, best_name, [s for s in statuses if s]

    def resource_metric(self, spec: Obj, pods: list[Obj], metric_items: list[Obj],
                        current: int) -> tuple[int, str, Obj]:
        """One Resource metric: (proposed replicas, its name in messages, its MetricStatus)."""
        if spec.get("type") != "Resource":
            kind = spec.get("type")
            raise MetricsError(f"the sandbox's HPA controller supports Resource metrics only, not {kind}")
        source = spec.get("resource") or {}
        resource = source.get("name", "cpu")
        target = source.get("target") or {}
        infos = [pod_info(p, resource) for p in pods]
        samples = {m["metadata"]["name"]: pod_metric(m, resource) for m in metric_items}
        now = time.time()
        if target.get("type") == "AverageValue" or target.get("averageValue") is not None:
            wanted = milli(target.get("averageValue") or "0")
            usable = {n: s for n, s in samples.items() if n in {i.name for i in infos if not i.deleting}}
            if not infos:
                raise MetricsError("no pods returned by selector while calculating replica count")
            if not usable:
                raise MetricsError(f"unable to get metrics for resource {resource}: no metrics returned from "
                                   "resource metrics API")
            average = sum(s.usage_milli for s in usable.values()) / len(usable)
            ratio = average / wanted if wanted else 0.0
            replicas = current if abs(1.0 - ratio) <= self.tolerance else math.ceil(ratio * len(usable))
            quantity = f"{int(average)}m" if resource == "cpu" else str(int(average / 1000))
            return replicas, f"{resource} resource", {
                "type": "Resource", "resource": {"name": resource, "current": {"averageValue": quantity}}}
        proposal = resource_replicas(
            current, int(target.get("averageUtilization") or 80), infos, samples, now=now,
            tolerance=self.tolerance, cpu_initialization_period=self.cpu_initialization_period,
            initial_readiness_delay=self.initial_readiness_delay, resource=resource)
        value = f"{proposal.average_milli}m" if resource == "cpu" else str(proposal.average_milli // 1000)
        return proposal.replicas, f"{resource} resource utilization (percentage of request)", {
            "type": "Resource",
            "resource": {"name": resource, "current": {"averageUtilization": proposal.utilization,
                                                       "averageValue": value}},
        }

    async def write_status(self, hpa: Obj, status: Obj) -> None:
        """Write the status when it changed (`updateStatusIfNeeded`)."""
        if status == (hpa.get("status") or {}):
            return
        meta = hpa["metadata"]
        body = {"status": {**{k: None for k in hpa.get("status") or {}}, **status}}
        try:
            await self.client.patch(HPAS, meta["name"], body, namespace=meta["namespace"],
                                    subresource="status")
        except ApiError as exc:
            if not exc.not_found:
                self.event(hpa, WARNING, "FailedUpdateStatus", str(exc))
