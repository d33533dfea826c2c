"""Jobs (batch/v1), the sandbox's `pkg/registry/batch/job/strategy.go` and `pkg/apis/batch/validation`.

Defaults are `SetDefaults_Job` (completions and parallelism 1 when both are unset, backoffLimit 6,
completionMode NonIndexed, suspend false, podReplacementPolicy TerminatingOrFailed, manualSelector
false, the Job's labels copied from its template). Unless `manualSelector` is true, the strategy
generates the selector on create (`generateSelector`): the template gets the labels
`batch.kubernetes.io/controller-uid`, `batch.kubernetes.io/job-name`, `controller-uid` and
`job-name`, and the selector matches the uid. Validation is `ValidateJob` / `ValidateJobUpdate`
(selector, completions, completion mode and the template immutable, except the scheduling
directives of a suspended Job that never started); the Table is printJob's. The job-spec rules
are shared with CronJob's `jobTemplate` (`validate_job_spec`).
"""

from __future__ import annotations

import copy
import re
from datetime import datetime
from typing import Any

from sandbox.apiserver.printing import (
    Row,
    age_col,
    age_of,
    as_int,
    col,
    containers_cells,
    doc,
    format_selector,
    get_path,
    human_duration,
    name_col,
    name_of,
    parse_time,
    template_cols,
)
from sandbox.apiserver.strategy import STATUS, Resource, Strategy
from sandbox.apiserver.validation.apps import selector_matches_labels, validate_nonnegative
from sandbox.apiserver.validation.defaulting import as_list, as_map, dict_at
from sandbox.apiserver.validation.fielderrors import OMIT, Errors
from sandbox.apiserver.validation.labels import validate_label_selector
from sandbox.apiserver.validation.names import dns1123_label_errors, is_int
from sandbox.apiserver.validation.podspec import default_template, validate_pod_template

BATCH = "io.k8s.api.batch.v1."
CONTROLLER_UID = "batch.kubernetes.io/controller-uid"
JOB_NAME = "batch.kubernetes.io/job-name"
LEGACY_CONTROLLER_UID = "controller-uid"
LEGACY_JOB_NAME = "job-name"
COMPLETION_INDEX = "batch.kubernetes.io/job-completion-index"
TRACKING_FINALIZER = "batch.kubernetes.io/job-tracking"
MAX_PARALLELISM_INDEXED = 100_000
SCHEDULING_DIRECTIVES = ("nodeSelector", "tolerations", "schedulingGates", "affinity")


def default_job_spec(obj: dict) -> None:
    """`SetDefaults_Job` (the pod template gets the pod defaults too)."""
    spec = dict_at(obj, "spec")
    if spec.get("completions") is None and spec.get("parallelism") is None:
        spec["completions"] = 1
        spec["parallelism"] = 1
    spec.setdefault("parallelism", 1)
    if spec.get("backoffLimit") is None:
        spec["backoffLimit"] = 2**31 - 1 if spec.get("backoffLimitPerIndex") is not None else 6
    spec.setdefault("completionMode", "NonIndexed")
    spec.setdefault("suspend", False)
    if spec.get("podReplacementPolicy") is None:
        spec["podReplacementPolicy"] = "Failed" if spec.get("podFailurePolicy") else "TerminatingOrFailed"
    spec.setdefault("manualSelector", False)
    policy = spec.get("podFailurePolicy")
    for rule in as_list(as_map(policy).get("rules")):
        for pattern in as_list(as_map(rule).get("onPodConditions")):
            if isinstance(pattern, dict):
                pattern.setdefault("status", "True")
    default_template(spec)


def generate_selector(obj: dict) -> None:
    """`generateSelector`: the template's job labels and a selector on the controller uid."""
    meta, spec = obj.get("metadata") or {}, obj.get("spec")
    uid, name = meta.get("uid"), meta.get("name")
    if not uid or not isinstance(spec, dict) or spec.get("manualSelector") is True:
        return
    template = spec.get("template")
    if not isinstance(template, dict):
        return
    meta_of_template = dict_at(template, "metadata")
    labels = dict_at(meta_of_template, "labels")
    for key in (LEGACY_JOB_NAME, JOB_NAME):
        labels.setdefault(key, name)
    for key in (LEGACY_CONTROLLER_UID, CONTROLLER_UID):
        labels.setdefault(key, uid)
    if isinstance(meta_of_template.get("labels"), dict):
        meta_of_template["labels"] = dict(sorted(labels.items()))  # as Go serialises a map
    selector = spec.get("selector")
    if selector is None:
        selector = spec["selector"] = {}
    if isinstance(selector, dict):
        dict_at(selector, "matchLabels").setdefault(CONTROLLER_UID, uid)


ACTIONS = ("Count", "FailIndex", "FailJob", "Ignore")


def _validate_pod_failure_policy(errs: Errors, spec: dict, path: str) -> None:
    """`validatePodFailurePolicy` (the main rules: actions, one requirement per rule, exit codes)."""
    policy = spec.get("podFailurePolicy")
    rules = policy.get("rules") if isinstance(policy, dict) else None
    if not isinstance(rules, list):
        return
    if len(rules) > 20:
        errs.invalid(f"{path}.rules", len(rules), "must have at most 20 items")
    template_spec = as_map(get_path(spec, "template", "spec"))
    names = {
        c.get("name")
        for group in ("containers", "initContainers")
        for c in template_spec.get(group) or []
        if isinstance(c, dict)
    }
    for i, rule in enumerate(rules):
        rpath = f"{path}.rules[{i}]"
        if not isinstance(rule, dict):
            continue
        action = rule.get("action")
        if action not in ACTIONS:
            errs.not_supported(f"{rpath}.action", action, ACTIONS)
        elif action == "FailIndex" and spec.get("backoffLimitPerIndex") is None:
            errs.invalid(f"{rpath}.action", action, "requires the backoffLimitPerIndex to be set")
        codes, conditions = rule.get("onExitCodes"), rule.get("onPodConditions")
        if codes is not None and conditions is not None:
            errs.invalid(rpath, OMIT, "specifying both OnExitCodes and OnPodConditions is not supported")
        elif codes is None and conditions is None:
            errs.invalid(rpath, OMIT, "specifying one of OnExitCodes and OnPodConditions is required")
        if isinstance(codes, dict):
            cpath = f"{rpath}.onExitCodes"
            name = codes.get("containerName")
            if name is not None and name not in names:
                errs.invalid(
                    f"{cpath}.containerName",
                    name,
                    "must be one of the container or initContainer names in the pod template",
                )
            operator = codes.get("operator")
            if operator not in ("In", "NotIn"):
                errs.not_supported(f"{cpath}.operator", operator, ("In", "NotIn"))
            values = codes.get("values") or []
            if not values:
                errs.invalid(f"{cpath}.values", values, "at least one value is required")
            for j, value in enumerate(values):
                if operator == "In" and value == 0:
                    errs.invalid(f"{cpath}.values[{j}]", value, "must not be 0 for the In operator")
                if j and is_int(value) and is_int(values[j - 1]):
                    if value == values[j - 1]:
                        errs.duplicate(f"{cpath}.values[{j}]", value)
                    elif value < values[j - 1]:
                        errs.invalid(f"{cpath}.values[{j}]", value, "must be ordered")
        for j, pattern in enumerate(conditions if isinstance(conditions, list) else []):
            status = pattern.get("status", "True") if isinstance(pattern, dict) else None
            if status not in ("True", "False", "Unknown"):
                errs.not_supported(
                    f"{rpath}.onPodConditions[{j}].status", status, ("True", "False", "Unknown")
                )


def _validate_success_policy(errs: Errors, spec: dict, path: str) -> None:
    """`validateSuccessPolicy` (the main rules)."""
    rules = spec["successPolicy"].get("rules")
    if not rules:
        errs.required(
            f"{path}.rules", "at least one rules must be specified when the successPolicy is specified"
        )
        return
    if len(rules) > 20:
        errs.invalid(f"{path}.rules", len(rules), "must have at most 20 items")
    completions = spec.get("completions")
    for i, rule in enumerate(rules if isinstance(rules, list) else []):
        rpath = f"{path}.rules[{i}]"
        if not isinstance(rule, dict):
            continue
        indexes, count = rule.get("succeededIndexes"), rule.get("succeededCount")
        if indexes is None and count is None:
            errs.required(rpath, "at least one of succeededCount or succeededIndexes must be specified")
        total = None
        if isinstance(indexes, str):
            parsed = _parse_index_list(indexes, completions)
            if isinstance(parsed, str):
                errs.invalid(
                    f"{rpath}.succeededIndexes", indexes, f"error parsing succeededIndexes: {parsed}"
                )
            else:
                total = parsed
        if count is not None:
            if not is_int(count) or count < 0:
                errs.invalid(f"{rpath}.succeededCount", count, "must be greater than or equal to 0")
            elif is_int(completions) and count > completions:
                errs.invalid(
                    f"{rpath}.succeededCount",
                    count,
                    f"must be less than or equal to {completions} (the number of specified completions)",
                )
            elif total is not None and count > total:
                errs.invalid(
                    f"{rpath}.succeededCount",
                    count,
                    f"must be smaller or equal to {total} (the number of indexes in the specified "
                    "succeededIndexes field)",
                )


def _parse_index_list(text: str, completions: Any) -> int | str:
    """The number of indexes in "0,2-4", or the parse error (`parseIndexesFromString`)."""
    total, last = 0, -1
    for part in text.split(","):
        low, _, high = part.partition("-")
        if not low.isdigit() or (high and not high.isdigit()):
            return f'cannot convert string to integer for index: "{low if not low.isdigit() else high}"'
        start, end = int(low), int(high or low)
        if start > end:
            return f"the fist index must be less than or equal to the last index: {part}"
        if start <= last:
            return f"overlapping or decreasing segments found near: {part}"
        if is_int(completions) and end >= completions:
            return f"too large index: {end}"
        total += end - start + 1
        last = end
    return total


def validate_job_spec(errs: Errors, spec: Any, path: str) -> None:
    """`validateJobSpec`: the rules a Job's spec and a CronJob's job template share."""
    if not isinstance(spec, dict):
        errs.required(f"{path}.template.spec.containers")
        return
    validate_nonnegative(
        errs,
        spec,
        path,
        "parallelism",
        "completions",
        "activeDeadlineSeconds",
        "backoffLimit",
        "ttlSecondsAfterFinished",
        "backoffLimitPerIndex",
        "maxFailedIndexes",
        typed=True,
    )
    if spec.get("maxFailedIndexes") is not None and spec.get("backoffLimitPerIndex") is None:
        errs.required(f"{path}.backoffLimitPerIndex", "when maxFailedIndexes is specified")
    managed_by = spec.get("managedBy")
    if isinstance(managed_by, str):
        if len(managed_by) > 63:
            errs.too_long(f"{path}.managedBy", "may not be more than 63 bytes")
        elif not re.fullmatch(
            r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?(/[-._~%!$&'()*+,;=:@a-zA-Z0-9]+)+", managed_by
        ):
            errs.invalid(
                f"{path}.managedBy", managed_by, 'must be a domain-prefixed path (such as "acme.io/foo")'
            )
    mode = spec.get("completionMode")
    if mode is not None and mode not in ("NonIndexed", "Indexed"):
        errs.not_supported(f"{path}.completionMode", mode, ("NonIndexed", "Indexed"))
    if mode == "Indexed":
        if spec.get("completions") is None:
            errs.required(f"{path}.completions", "when completion mode is Indexed")
        parallelism = spec.get("parallelism")
        if is_int(parallelism) and parallelism > MAX_PARALLELISM_INDEXED:
            errs.invalid(
                f"{path}.parallelism",
                parallelism,
                f"must be less than or equal to {MAX_PARALLELISM_INDEXED} when completion mode is Indexed",
            )
    else:
        for key in ("backoffLimitPerIndex", "maxFailedIndexes"):
            if spec.get(key) is not None:
                errs.invalid(f"{path}.{key}", spec[key], "requires indexed completion mode")
    if spec.get("successPolicy") is not None and mode != "Indexed":
        errs.invalid(f"{path}.successPolicy", spec["successPolicy"], "requires indexed completion mode")
    elif isinstance(spec.get("successPolicy"), dict):
        _validate_success_policy(errs, spec, f"{path}.successPolicy")
    _validate_pod_failure_policy(errs, spec, f"{path}.podFailurePolicy")
    policy = spec.get("podReplacementPolicy")
    if policy is not None:
        if policy not in ("Failed", "TerminatingOrFailed"):
            errs.not_supported(f"{path}.podReplacementPolicy", policy, ("Failed", "TerminatingOrFailed"))
        elif spec.get("podFailurePolicy") is not None and policy != "Failed":
            errs.not_supported(f"{path}.podReplacementPolicy", policy, ("Failed",))
    template = spec.get("template")
    if template is None:
        errs.required(f"{path}.template.spec.containers")
        return
    validate_pod_template(errs, template, f"{path}.template", allow_active_deadline=True)
    restart = get_path(template, "spec", "restartPolicy")
    rpath = f"{path}.template.spec.restartPolicy"
    if restart in ("Always", "", None):
        errs.required(rpath, 'valid values: "OnFailure", "Never"')
    elif restart not in ("OnFailure", "Never"):
        errs.not_supported(rpath, restart, ("OnFailure", "Never"))
    elif spec.get("podFailurePolicy") is not None and restart != "Never":
        errs.invalid(rpath, restart, 'only "Never" is supported when podFailurePolicy is specified')


def _validate_has_label(errs: Errors, labels: dict, key: str, value: str) -> None:
    """`ValidateHasLabel`."""
    path = f"spec.template.metadata.labels[{key}]"
    actual = labels.get(key)
    if actual is None:
        errs.required(path, value)
    elif actual != value:
        errs.invalid(path, labels, f"must be '{value}'")


def _validate_job(errs: Errors, obj: dict) -> None:
    """`ValidateJob`: the generated selector, the spec, the selector against the template."""
    meta, spec = obj.get("metadata") or {}, obj.get("spec")
    if not isinstance(spec, dict):
        errs.required("spec.selector")
        errs.required("spec.template.spec.containers")
        return
    selector = spec.get("selector")
    labels = as_map(get_path(spec, "template", "metadata", "labels"))
    if spec.get("manualSelector") is not True and isinstance(selector, dict):
        uid, name = str(meta.get("uid") or ""), str(meta.get("name") or "")
        if not uid:
            errs.required("metadata.uid")
        for key, value in (
            (LEGACY_CONTROLLER_UID, uid),
            (LEGACY_JOB_NAME, name),
            (CONTROLLER_UID, uid),
            (JOB_NAME, name),
        ):
            _validate_has_label(errs, labels, key, value)
        expected = {CONTROLLER_UID: uid, JOB_NAME: name, LEGACY_CONTROLLER_UID: uid, LEGACY_JOB_NAME: name}
        if not selector_matches_labels(selector, expected):
            errs.invalid("spec.selector", selector, "`selector` not auto-generated")
    validate_job_spec(errs, spec, "spec")
    if selector is None:
        errs.required("spec.selector")
    else:
        validate_label_selector(errs, selector, "spec.selector")
        if isinstance(selector, dict) and not selector_matches_labels(selector, labels):
            errs.invalid(
                "spec.template.metadata.labels",
                get_path(spec, "template", "metadata", "labels"),
                "`selector` does not match template `labels`",
            )
    completions = spec.get("completions")
    if spec.get("completionMode") == "Indexed" and is_int(completions) and completions > 0:
        hostname = f"{meta.get('name') or ''}-{completions - 1}"
        if dns1123_label_errors(hostname):
            errs.invalid(
                "metadata.name",
                meta.get("name"),
                f"will not able to create pod with invalid DNS label: {hostname}",
            )
    validate_nonnegative(
        errs, obj.get("status"), "status", "active", "succeeded", "failed", "ready", "terminating", typed=True
    )


def _scheduling_mutable(old: dict) -> bool:
    """`AllowMutableSchedulingDirectives`: a suspended Job that never started."""
    return get_path(old, "spec", "suspend") is True and not get_path(old, "status", "startTime")


def _validate_job_update(errs: Errors, obj: dict, old: dict) -> None:
    """`ValidateJobSpecUpdate`: what may not change once a Job exists."""
    spec, old_spec = as_map(obj.get("spec")), as_map(old.get("spec"))
    for key in (
        "selector",
        "completionMode",
        "podFailurePolicy",
        "backoffLimitPerIndex",
        "managedBy",
        "successPolicy",
    ):
        if spec.get(key) != old_spec.get(key):
            errs.invalid(f"spec.{key}", spec.get(key), "field is immutable")
    if spec.get("completions") != old_spec.get("completions"):
        elastic = spec.get("completionMode") == "Indexed" and old_spec.get("completionMode") == "Indexed"
        if not elastic:
            errs.invalid("spec.completions", spec.get("completions"), "field is immutable")
        elif spec.get("completions") != spec.get("parallelism"):
            errs.invalid("spec.completions", spec.get("completions"), "must be equal to parallelism")
    template, old_template = spec.get("template"), copy.deepcopy(old_spec.get("template"))
    if _scheduling_mutable(old) and isinstance(template, dict) and isinstance(old_template, dict):
        new_meta, old_meta = as_map(template.get("metadata")), dict_at(old_template, "metadata")
        for key in ("labels", "annotations"):
            _copy_key(new_meta, old_meta, key)
        new_pod, old_pod = as_map(template.get("spec")), dict_at(old_template, "spec")
        for key in SCHEDULING_DIRECTIVES:
            _copy_key(new_pod, old_pod, key)
    if template != old_template:
        errs.invalid("spec.template", template, "field is immutable")


def _copy_key(source: dict, target: dict, key: str) -> None:
    if key in source:
        target[key] = source[key]
    else:
        target.pop(key, None)


def has_condition(obj: dict, type_: str) -> bool:
    """Whether the Job has condition ``type_`` with status True (`hasJobCondition`)."""
    return any(
        isinstance(c, dict) and c.get("type") == type_ and c.get("status") == "True"
        for c in get_path(obj, "status", "conditions") or []
    )


def job_status_cell(obj: dict) -> str:
    """printJob's STATUS column."""
    if has_condition(obj, "Complete"):
        return "Complete"
    if has_condition(obj, "Failed"):
        return "Failed"
    if get_path(obj, "metadata", "deletionTimestamp"):
        return "Terminating"
    if has_condition(obj, "Suspended"):
        return "Suspended"
    if has_condition(obj, "FailureTarget"):
        return "FailureTarget"
    if has_condition(obj, "SuccessCriteriaMet"):
        return "SuccessCriteriaMet"
    return "Running"


def completions_cell(obj: dict) -> str:
    """printJob's COMPLETIONS column: `1/3`, or `0/1 of 2` for a work queue."""
    spec, status = as_map(obj.get("spec")), as_map(obj.get("status"))
    succeeded = as_int(status.get("succeeded"))
    if spec.get("completions") is not None:
        return f"{succeeded}/{as_int(spec.get('completions'))}"
    parallelism = as_int(spec.get("parallelism"))
    return f"{succeeded}/1 of {parallelism}" if parallelism > 1 else f"{succeeded}/1"


def duration_cell(obj: dict, now: datetime) -> str:
    """printJob's DURATION column: start to completion, or start to now."""
    start = parse_time(get_path(obj, "status", "startTime"))
    if start is None:
        return ""
    end = parse_time(get_path(obj, "status", "completionTime")) or now
    return human_duration((end - start).total_seconds())


def _job_row(obj: dict, now: datetime) -> Row:
    spec = as_map(obj.get("spec"))
    names, images = containers_cells(get_path(spec, "template", "spec"))
    return [
        name_of(obj),
        job_status_cell(obj),
        completions_cell(obj),
        duration_cell(obj, now),
        age_of(obj, now),
        names,
        images,
        format_selector(spec.get("selector")) or "<none>",
    ]


RESOURCE = Resource(
    "batch",
    "v1",
    "Job",
    "jobs",
    BATCH + "Job",
    categories=("all",),
    subresources=(STATUS,),
    generation=True,
    field_selectors=("status.successful",),
)


class JobStrategy(Strategy):
    """Jobs: defaults, the generated selector, validation, printJob."""

    resource = RESOURCE
    reset_status_on_create = True

    def default(self, obj: dict) -> None:
        """`SetDefaults_Job`, then `generateSelector` (the registry has set the uid by then),
        then the Job's labels from its template when it has none."""
        default_job_spec(obj)
        generate_selector(obj)
        meta = dict_at(obj, "metadata")
        labels = get_path(obj, "spec", "template", "metadata", "labels")
        if isinstance(labels, dict) and labels and not meta.get("labels"):
            meta["labels"] = dict(labels)

    def validate(self, errs: Errors, obj: dict) -> None:
        """`ValidateJob`."""
        _validate_job(errs, obj)

    def validate_update(self, errs: Errors, obj: dict, old: dict) -> None:
        """`ValidateJobSpecUpdate`."""
        _validate_job_update(errs, obj, old)

    def columns(self) -> list[dict[str, Any]]:
        """printJob's columns."""
        return [
            name_col(),
            col("Status", description="Status of the job."),
            col("Completions", description=doc(BATCH + "JobStatus", "succeeded")),
            col("Duration", description="Time required to complete the job."),
            age_col(),
            *template_cols(doc(BATCH + "JobSpec", "selector")),
        ]

    def row(self, obj: dict, now: datetime) -> Row:
        """printJob's cells."""
        return _job_row(obj, now)

    def field_value(self, obj: dict, path: str) -> str:
        """`JobToSelectableFields`: status.successful is the succeeded count."""
        if path == "status.successful":
            return str(as_int(get_path(obj, "status", "succeeded")))
        return super().field_value(obj, path)


STRATEGY = JobStrategy()
