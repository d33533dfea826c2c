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

autoscaling/v1 is served beside v2 from the same stored (v2) objects, converted as
`pkg/apis/autoscaling/v1/conversion.go` converts them: `targetCPUUtilizationPercentage` is the
CPU Utilization metric, `currentCPUUtilizationPercentage` its current value, and what v1 cannot
hold travels in the `autoscaling.alpha.kubernetes.io/*` annotations (the other metrics and all
current metrics in v1's older MetricSpec/MetricStatus shape, the conditions, and the behavior,
which Kubernetes marshals from its internal type, hence Go field names). A v1 write turns the
annotations back into fields; they are never stored, and v2 never shows them.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sandbox.apiserver import errors
from sandbox.apiserver.printing import Row, age_col, age_of, col, doc, name_col, name_of
from sandbox.apiserver.store import copy_object
from sandbox.apiserver.strategy import STATUS, Resource, Strategy, Version
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


# --- autoscaling/v1 conversion ------------------------------------------------------------------

METRIC_SPECS_ANNOTATION = "autoscaling.alpha.kubernetes.io/metrics"
METRIC_STATUSES_ANNOTATION = "autoscaling.alpha.kubernetes.io/current-metrics"
CONDITIONS_ANNOTATION = "autoscaling.alpha.kubernetes.io/conditions"
BEHAVIOR_ANNOTATION = "autoscaling.alpha.kubernetes.io/behavior"
ROUND_TRIP_ANNOTATIONS = (
    METRIC_SPECS_ANNOTATION,
    METRIC_STATUSES_ANNOTATION,
    CONDITIONS_ANNOTATION,
    BEHAVIOR_ANNOTATION,
)
_SOURCE_FIELDS = {
    "Resource": "resource",
    "ContainerResource": "containerResource",
    "Pods": "pods",
    "Object": "object",
    "External": "external",
}


def _drop_none(obj: dict) -> dict:
    return {k: v for k, v in obj.items() if v is not None}


def _is_cpu_utilization(metric: dict) -> bool:
    resource = metric.get("resource") or {}
    return (
        metric.get("type") == "Resource"
        and resource.get("name") == "cpu"
        and (resource.get("target") or {}).get("averageUtilization") is not None
    )


# How each v2 metric source field maps to v1's (v2beta1-shaped) field, with Go's zero value for
# the fields v1 declares without omitempty: (v2 path in the source, v1 name, default).
_SPEC_FIELDS: dict[str, tuple[tuple[str, str, str | None], ...]] = {
    "Resource": (("name", "name", None), ("target.averageUtilization", "targetAverageUtilization", None),
                 ("target.averageValue", "targetAverageValue", None), ("container", "container", None)),
    "Pods": (("metric.name", "metricName", None), ("target.averageValue", "targetAverageValue", "0"),
             ("metric.selector", "selector", None)),
    "Object": (("describedObject", "target", None), ("metric.name", "metricName", None),
               ("target.value", "targetValue", "0"), ("metric.selector", "selector", None),
               ("target.averageValue", "averageValue", None)),
    "External": (("metric.name", "metricName", None), ("metric.selector", "metricSelector", None),
                 ("target.value", "targetValue", None), ("target.averageValue", "targetAverageValue", None)),
}
_STATUS_FIELDS: dict[str, tuple[tuple[str, str, str | None], ...]] = {
    "Resource": (("name", "name", None), ("current.averageUtilization", "currentAverageUtilization", None),
                 ("current.averageValue", "currentAverageValue", "0"), ("container", "container", None)),
    "Pods": (("metric.name", "metricName", None), ("current.averageValue", "currentAverageValue", "0"),
             ("metric.selector", "selector", None)),
    "Object": (("describedObject", "target", None), ("metric.name", "metricName", None),
               ("current.value", "currentValue", "0"), ("metric.selector", "selector", None),
               ("current.averageValue", "averageValue", None)),
    "External": (("metric.name", "metricName", None), ("metric.selector", "metricSelector", None),
                 ("current.value", "currentValue", "0"),
                 ("current.averageValue", "currentAverageValue", None)),
}
_SPEC_FIELDS["ContainerResource"] = _SPEC_FIELDS["Resource"]
_STATUS_FIELDS["ContainerResource"] = _STATUS_FIELDS["Resource"]


def _target_type(kind: str, target: dict) -> str:
    """The v2 target type a v1 metric implies (the `Convert_v1_*MetricSource_*` functions)."""
    if kind in ("Resource", "ContainerResource"):
        return "Utilization" if target.get("averageUtilization") is not None else "AverageValue"
    if kind == "Pods":
        return "AverageValue"
    if kind == "Object":
        return "Value" if target.get("averageValue") is None else "AverageValue"
    return "AverageValue" if target.get("value") is None else "Value"


def _at(source: dict, path: str) -> Any:
    value: Any = source
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _source(metric: dict) -> tuple[str, str, dict, dict[str, Any]]:
    """A metric's type, the field of its source, the source, and the converted metric's start."""
    kind = str(metric.get("type"))
    field = _SOURCE_FIELDS.get(kind, "")
    source = (metric.get(field) if field else None) or {}
    return kind, field, source, {"type": metric.get("type")}


def _metric_to_v1(metric: dict, fields: dict[str, tuple[tuple[str, str, str | None], ...]]) -> dict:
    """A v2 MetricSpec or MetricStatus in v1's shape, as the annotations hold them."""
    kind, field, source, out = _source(metric)
    if kind in fields:
        converted: dict[str, Any] = {}
        for path, v1, default in fields[kind]:
            value = _at(source, path)
            value = default if value is None else value
            if value is not None:
                converted[v1] = value
        out[field] = converted
    return out


def _metric_from_v1(metric: dict, fields: dict[str, tuple[tuple[str, str, str | None], ...]], *,
                    spec: bool) -> dict:
    """A v1-shaped MetricSpec (``spec``) or MetricStatus of an annotation back in v2's shape."""
    kind, field, source, out = _source(metric)
    if kind in fields:
        converted: dict[str, Any] = {}
        for path, v1, _ in fields[kind]:
            if source.get(v1) is not None:
                *parents, last = path.split(".")
                node = converted
                for part in parents:
                    node = node.setdefault(part, {})
                node[last] = source[v1]
        if spec:
            target = converted.setdefault("target", {})
            target["type"] = _target_type(kind, target)
        out[field] = converted
    return out


_RULE_FIELDS = ("stabilizationWindowSeconds", "selectPolicy", "policies", "tolerance")
_POLICY_FIELDS = ("type", "value", "periodSeconds")


def _go_name(name: str) -> str:
    return name[0].upper() + name[1:]


def _behavior_to_annotation(behavior: dict) -> str:
    """The behavior as Kubernetes writes it: json.Marshal of its internal type (Go field names)."""

    def rules(value: Any) -> Any:
        if not isinstance(value, dict):
            return None
        out = {_go_name(k): value.get(k) for k in _RULE_FIELDS}
        out["Policies"] = [
            {_go_name(k): p.get(k) for k in _POLICY_FIELDS}
            for p in as_list(value.get("policies"))
            if isinstance(p, dict)
        ] or None
        return out

    return json.dumps(
        {"ScaleUp": rules(behavior.get("scaleUp")), "ScaleDown": rules(behavior.get("scaleDown"))},
        separators=(",", ":"),
    )


def _lower_keys(value: Any) -> Any:
    """Keys with a lower-case first letter: Go's json.Unmarshal matches field names case-insensitively."""
    if isinstance(value, dict):
        return {k[:1].lower() + k[1:]: _lower_keys(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_lower_keys(v) for v in value]
    return value


def _annotation(annotations: dict, key: str) -> Any:
    try:
        return json.loads(annotations.pop(key))
    except (TypeError, ValueError) as exc:
        raise errors.bad_request(f"annotation {key}: {exc}") from None


def v1_to_v2(obj: dict) -> dict:
    """Convert_v1_HorizontalPodAutoscaler_To_autoscaling_HorizontalPodAutoscaler."""
    out = copy_object(obj)
    out["apiVersion"] = "autoscaling/v2"
    meta: dict = out["metadata"] if isinstance(out.get("metadata"), dict) else {}
    annotations = dict(meta.get("annotations") or {}) if isinstance(meta.get("annotations"), dict) else {}
    spec_in: dict = out["spec"] if isinstance(out.get("spec"), dict) else {}
    spec = {k: spec_in[k] for k in ("scaleTargetRef", "minReplicas", "maxReplicas") if k in spec_in}
    metrics: list[Any] = []
    if METRIC_SPECS_ANNOTATION in annotations:
        metrics = [
            _metric_from_v1(m, _SPEC_FIELDS, spec=True)
            for m in as_list(_annotation(annotations, METRIC_SPECS_ANNOTATION))
            if isinstance(m, dict)
        ]
    cpu = spec_in.get("targetCPUUtilizationPercentage")
    if cpu is not None:
        metrics.append(
            {
                "type": "Resource",
                "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": cpu}},
            }
        )
    if not metrics:
        metrics = [
            {
                "type": "Resource",
                "resource": {
                    "name": "cpu",
                    "target": {"type": "Utilization", "averageUtilization": DEFAULT_CPU_UTILIZATION},
                },
            }
        ]
    spec["metrics"] = metrics
    if BEHAVIOR_ANNOTATION in annotations:
        behavior = _lower_keys(_annotation(annotations, BEHAVIOR_ANNOTATION))
        if isinstance(behavior, dict) and behavior:
            spec["behavior"] = behavior
    out["spec"] = spec
    status_in = out.get("status") if isinstance(out.get("status"), dict) else None
    status: dict[str, Any] = (
        {
            k: status_in[k]
            for k in ("observedGeneration", "lastScaleTime", "currentReplicas", "desiredReplicas")
            if k in status_in
        }
        if status_in
        else {}
    )
    current = (status_in or {}).get("currentCPUUtilizationPercentage")
    if current is not None:
        status["currentMetrics"] = [
            {"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": current}}}
        ]
    if METRIC_STATUSES_ANNOTATION in annotations:
        status["currentMetrics"] = [
            _metric_from_v1(m, _STATUS_FIELDS, spec=False)
            for m in as_list(_annotation(annotations, METRIC_STATUSES_ANNOTATION))
            if isinstance(m, dict)
        ]
    if CONDITIONS_ANNOTATION in annotations:
        status["conditions"] = as_list(_annotation(annotations, CONDITIONS_ANNOTATION))
    if status_in is not None or status:
        out["status"] = status
    if isinstance(out.get("metadata"), dict):
        if annotations:
            out["metadata"]["annotations"] = annotations
        else:
            out["metadata"].pop("annotations", None)
    return out


def v2_to_v1(obj: dict) -> dict:
    """Convert_autoscaling_HorizontalPodAutoscaler_To_v1_HorizontalPodAutoscaler."""
    out = copy_object(obj)
    out["apiVersion"] = "autoscaling/v1"
    spec_in, status_in = out.get("spec") or {}, out.get("status") or {}
    metrics = [m for m in as_list(spec_in.get("metrics")) if isinstance(m, dict)]
    spec = {k: spec_in[k] for k in ("scaleTargetRef", "minReplicas", "maxReplicas") if k in spec_in}
    for metric in metrics:
        if metric.get("type") == "Resource" and (metric.get("resource") or {}).get("name") == "cpu":
            utilization = (metric["resource"].get("target") or {}).get("averageUtilization")
            if utilization is not None:
                spec["targetCPUUtilizationPercentage"] = utilization
            break
    status: dict[str, Any] = {
        k: status_in[k] for k in ("observedGeneration", "lastScaleTime") if k in status_in
    }
    status["currentReplicas"] = status_in.get("currentReplicas") or 0
    status["desiredReplicas"] = status_in.get("desiredReplicas") or 0
    current_metrics = [m for m in as_list(status_in.get("currentMetrics")) if isinstance(m, dict)]
    for metric in current_metrics:
        resource = metric.get("resource") or {}
        if (
            metric.get("type") == "Resource"
            and resource.get("name") == "cpu"
            and (resource.get("current") or {}).get("averageUtilization") is not None
        ):
            status["currentCPUUtilizationPercentage"] = resource["current"]["averageUtilization"]
    annotations = {
        k: v
        for k, v in ((out.get("metadata") or {}).get("annotations") or {}).items()
        if k not in ROUND_TRIP_ANNOTATIONS
    }
    others = [_metric_to_v1(m, _SPEC_FIELDS) for m in metrics if not _is_cpu_utilization(m)]
    if others:
        annotations[METRIC_SPECS_ANNOTATION] = json.dumps(others, separators=(",", ":"))
    if current_metrics:
        annotations[METRIC_STATUSES_ANNOTATION] = json.dumps(
            [_metric_to_v1(m, _STATUS_FIELDS) for m in current_metrics], separators=(",", ":")
        )
    conditions = as_list(status_in.get("conditions"))
    if conditions:
        annotations[CONDITIONS_ANNOTATION] = json.dumps(conditions, separators=(",", ":"))
    if isinstance(spec_in.get("behavior"), dict):
        annotations[BEHAVIOR_ANNOTATION] = _behavior_to_annotation(spec_in["behavior"])
    meta = out.setdefault("metadata", {})
    if annotations:
        meta["annotations"] = annotations
    out["spec"], out["status"] = spec, status
    return out


V1 = Version(
    "v1", "io.k8s.api.autoscaling.v1.HorizontalPodAutoscaler", to_stored=v1_to_v2, from_stored=v2_to_v1
)


RESOURCE = Resource("autoscaling", "v2", "HorizontalPodAutoscaler", "horizontalpodautoscalers",
                    V2 + "HorizontalPodAutoscaler", short_names=("hpa",), categories=("all",),
                    subresources=(STATUS,))


class HorizontalPodAutoscalerStrategy(Strategy):
    """HorizontalPodAutoscalers: defaults, validation, printHorizontalPodAutoscaler."""

    resource = RESOURCE
    versions = (V1,)
    reset_status_on_create = True

    def default(self, obj: dict) -> None:
        """`SetDefaults_HorizontalPodAutoscaler`; the v1 round-trip annotations are never stored
        (`DropRoundTripHorizontalPodAutoscalerAnnotations`)."""
        annotations = (obj.get("metadata") or {}).get("annotations")
        if isinstance(annotations, dict):
            for key in ROUND_TRIP_ANNOTATIONS:
                annotations.pop(key, None)
        _default(obj)
        status = obj.get("status")
        if isinstance(status, dict):
            # v2's desiredReplicas has no omitempty: Go always writes it (the official Python
            # client's model requires it), even in a status that so far holds only conditions.
            status.setdefault("desiredReplicas", 0)

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
