"""HorizontalPodAutoscalers (autoscaling/v2): what the HPA controller (`sandbox/controllers/hpa.py`) reads.

Defaults are `SetDefaults_HorizontalPodAutoscaler` (minReplicas 1, a CPU utilization target of
80% when no metric is given, a given ``behavior`` completed with the default scaling rules);
validation is `ValidateHorizontalPodAutoscaler` for the fields the sandbox serves (the scale
target reference, min/max replicas, Resource metric sources and their targets, behavior
policies and windows), with kube-apiserver's messages; the Table is printHorizontalPodAutoscaler's
NAME REFERENCE TARGETS MINPODS MAXPODS REPLICAS AGE (TARGETS like ``cpu: 45%/50%``). The
controller writes ``status`` (currentReplicas, desiredReplicas, currentMetrics, conditions,
lastScaleTime) through the status subresource. The default scaling rules are Kubernetes'
HPA knowledge shared with the controller, so they live in the pure `hpa_algorithm` module.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sandbox.apiserver.printing import Row, age_col, age_of, col, doc, name_col, name_of
from sandbox.apiserver.strategy import STATUS, Resource, Strategy
from sandbox.apiserver.validation.defaulting import as_list, dict_at
from sandbox.apiserver.validation.fielderrors import Errors
from sandbox.apiserver.validation.names import is_int
from sandbox.controllers.hpa_algorithm import default_behavior

V2 = "io.k8s.api.autoscaling.v2."
DEFAULT_CPU_UTILIZATION = 80
METRIC_TYPES = ("ContainerResource", "External", "Object", "Pods", "Resource")
TARGET_TYPES = ("AverageValue", "Utilization", "Value")
SELECT_POLICIES = ("Disabled", "Max", "Min")
POLICY_TYPES = ("Percent", "Pods")
MAX_PERIOD_SECONDS = 1800
MAX_STABILIZATION_WINDOW_SECONDS = 3600


def _default(obj: dict) -> None:
    spec = dict_at(obj, "spec")
    if spec.get("minReplicas") is None:
        spec["minReplicas"] = 1
    if not spec.get("metrics"):
        spec["metrics"] = [{"type": "Resource", "resource": {
            "name": "cpu", "target": {"type": "Utilization", "averageUtilization": DEFAULT_CPU_UTILIZATION}}}]
    if isinstance(spec.get("behavior"), dict):
        spec["behavior"] = default_behavior(spec["behavior"])


def _validate_target(errs: Errors, path: str, target: Any) -> None:
    target = target if isinstance(target, dict) else {}
    kind = target.get("type")
    if not kind:
        errs.required(f"{path}.type", "must specify a metric target type")
    elif kind not in TARGET_TYPES:
        errs.not_supported(f"{path}.type", kind, TARGET_TYPES)
    utilization = target.get("averageUtilization")
    if utilization is not None and (not is_int(utilization) or utilization < 1):
        errs.invalid(f"{path}.averageUtilization", utilization, "must be greater than 0")
    if kind == "Utilization" and utilization is None:
        errs.required(f"{path}.averageUtilization", "must set averageUtilization when type is Utilization")
    if kind == "AverageValue" and target.get("averageValue") is None:
        errs.required(f"{path}.averageValue", "must set averageValue when type is AverageValue")
    if kind == "Value" and target.get("value") is None:
        errs.required(f"{path}.value", "must set value when type is Value")


def _validate_metric(errs: Errors, path: str, metric: Any) -> None:
    metric = metric if isinstance(metric, dict) else {}
    kind = metric.get("type")
    if not kind:
        errs.required(f"{path}.type", "must specify a metric source type")
        return
    if kind not in METRIC_TYPES:
        errs.not_supported(f"{path}.type", kind, METRIC_TYPES)
        return
    field = {"Resource": "resource", "ContainerResource": "containerResource", "Pods": "pods",
             "Object": "object", "External": "external"}[kind]
    source = metric.get(field)
    if not isinstance(source, dict):
        errs.required(f"{path}.{field}",
                      f"must populate information for the given metric source (type {kind})")
        return
    if kind in ("Resource", "ContainerResource"):
        if not source.get("name"):
            errs.required(f"{path}.{field}.name", "must specify a resource name")
        if kind == "ContainerResource" and not source.get("container"):
            errs.required(f"{path}.{field}.container", "must specify a container")
    elif not (source.get("metric") or {}).get("name"):
        errs.required(f"{path}.{field}.metric.name", "must specify a metric name")
    _validate_target(errs, f"{path}.{field}.target", source.get("target"))


def _validate_rules(errs: Errors, path: str, rules: Any) -> None:
    if not isinstance(rules, dict):
        return
    window = rules.get("stabilizationWindowSeconds")
    if window is not None:
        if not is_int(window) or window < 0:
            errs.invalid(f"{path}.stabilizationWindowSeconds", window,
                         "must be greater than or equal to zero")
        elif window > MAX_STABILIZATION_WINDOW_SECONDS:
            errs.invalid(f"{path}.stabilizationWindowSeconds", window,
                         f"must be less than or equal to {MAX_STABILIZATION_WINDOW_SECONDS}")
    select = rules.get("selectPolicy")
    if select is not None and select not in SELECT_POLICIES:
        errs.not_supported(f"{path}.selectPolicy", select, SELECT_POLICIES)
    policies = as_list(rules.get("policies"))
    if not policies:
        errs.required(f"{path}.policies", "must specify at least one Policy")
    for i, policy in enumerate(policies):
        policy = policy if isinstance(policy, dict) else {}
        ppath = f"{path}.policies[{i}]"
        if policy.get("type") not in POLICY_TYPES:
            errs.not_supported(f"{ppath}.type", policy.get("type"), POLICY_TYPES)
        value = policy.get("value")
        if not is_int(value) or value <= 0:
            errs.invalid(f"{ppath}.value", value, "must be greater than zero")
        period = policy.get("periodSeconds")
        if not is_int(period) or period <= 0:
            errs.invalid(f"{ppath}.periodSeconds", period, "must be greater than zero")
        elif period > MAX_PERIOD_SECONDS:
            errs.invalid(f"{ppath}.periodSeconds", period,
                         f"must be less than or equal to {MAX_PERIOD_SECONDS}")


def _validate(errs: Errors, obj: dict) -> None:
    spec: dict = obj["spec"] if isinstance(obj.get("spec"), dict) else {}
    ref: dict = spec["scaleTargetRef"] if isinstance(spec.get("scaleTargetRef"), dict) else {}
    for key in ("kind", "name"):
        value = ref.get(key)
        if not value:
            errs.required(f"spec.scaleTargetRef.{key}", "")
        elif value in (".", "..") or "/" in str(value) or "%" in str(value):
            errs.invalid(f"spec.scaleTargetRef.{key}", value, "may not contain '/' or '%'" if value not in (
                ".", "..") else f"may not be '{value}'")
    minimum, maximum = spec.get("minReplicas"), spec.get("maxReplicas")
    if minimum is not None and (not is_int(minimum) or minimum < 1):
        errs.invalid("spec.minReplicas", minimum, "must be greater than or equal to 1")
    if not is_int(maximum) or maximum < 1:
        errs.invalid("spec.maxReplicas", maximum, "must be greater than 0")
    elif is_int(minimum) and minimum > maximum:
        errs.invalid("spec.minReplicas", minimum, "must be less than or equal to maxReplicas")
    for i, metric in enumerate(as_list(spec.get("metrics"))):
        _validate_metric(errs, f"spec.metrics[{i}]", metric)
    behavior = spec.get("behavior")
    if isinstance(behavior, dict):
        _validate_rules(errs, "spec.behavior.scaleUp", behavior.get("scaleUp"))
        _validate_rules(errs, "spec.behavior.scaleDown", behavior.get("scaleDown"))


def format_metrics(specs: list, statuses: list) -> str:
    """printHorizontalPodAutoscaler's TARGETS (formatHPAMetrics), for Resource metrics and the rest."""
    if not specs:
        return "<none>"
    items = []
    for i, spec in enumerate(specs):
        spec = spec if isinstance(spec, dict) else {}
        status = statuses[i] if i < len(statuses) and isinstance(statuses[i], dict) else {}
        kind = spec.get("type")
        if kind in ("Resource", "ContainerResource"):
            field = "resource" if kind == "Resource" else "containerResource"
            source, current_status = spec.get(field) or {}, (status.get(field) or {}).get("current") or {}
            target = source.get("target") or {}
            if target.get("averageValue") is not None:
                current = current_status.get("averageValue") or "<unknown>"
                items.append(f"{source.get('name')}: {current}/{target['averageValue']}")
            else:
                utilization = current_status.get("averageUtilization")
                current = f"{utilization}%" if utilization is not None else "<unknown>"
                wanted = f"{target['averageUtilization']}%" if target.get("averageUtilization") is not None \
                    else "<auto>"
                items.append(f"{source.get('name')}: {current}/{wanted}")
        elif kind in ("Pods", "Object", "External"):
            field = kind.lower()
            target = (spec.get(field) or {}).get("target") or {}
            current_status = (status.get(field) or {}).get("current") or {}
            if kind != "Pods" and target.get("averageValue") is None:
                items.append(f"{current_status.get('value') or '<unknown>'}/{target.get('value')}")
            else:
                suffix = " (avg)" if kind != "Pods" else ""
                current = current_status.get("averageValue") or "<unknown>"
                items.append(f"{current}/{target.get('averageValue')}{suffix}")
        else:
            items.append("<unknown type>")
    if len(items) > 2:
        return ", ".join(items[:2]) + f" + {len(items) - 2} more..."
    return ", ".join(items)


RESOURCE = Resource("autoscaling", "v2", "HorizontalPodAutoscaler", "horizontalpodautoscalers",
                    V2 + "HorizontalPodAutoscaler", short_names=("hpa",), categories=("all",),
                    subresources=(STATUS,))


class HorizontalPodAutoscalerStrategy(Strategy):
    """HorizontalPodAutoscalers: defaults, validation, printHorizontalPodAutoscaler."""

    resource = RESOURCE
    reset_status_on_create = True

    def default(self, obj: dict) -> None:
        """`SetDefaults_HorizontalPodAutoscaler`."""
        _default(obj)

    def validate(self, errs: Errors, obj: dict) -> None:
        """`ValidateHorizontalPodAutoscaler`."""
        _validate(errs, obj)

    def columns(self) -> list[dict[str, Any]]:
        """printHorizontalPodAutoscaler's columns."""
        spec = V2 + "HorizontalPodAutoscalerSpec"
        return [name_col(),
                col("Reference", description=doc(spec, "scaleTargetRef")),
                col("Targets", description=doc(spec, "metrics")),
                col("MinPods", description=doc(spec, "minReplicas")),
                col("MaxPods", "integer", doc(spec, "maxReplicas")),
                col("Replicas", "integer", doc(V2 + "HorizontalPodAutoscalerStatus", "currentReplicas")),
                age_col()]

    def row(self, obj: dict, now: datetime) -> Row:
        """printHorizontalPodAutoscaler's cells."""
        spec, status = obj.get("spec") or {}, obj.get("status") or {}
        ref = spec.get("scaleTargetRef") or {}
        minimum = spec.get("minReplicas")
        return [name_of(obj), f"{ref.get('kind', '')}/{ref.get('name', '')}",
                format_metrics(as_list(spec.get("metrics")), as_list(status.get("currentMetrics"))),
                str(minimum) if minimum is not None else "<unset>", spec.get("maxReplicas") or 0,
                status.get("currentReplicas") or 0, age_of(obj, now)]


STRATEGY = HorizontalPodAutoscalerStrategy()
