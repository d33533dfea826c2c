"""CronJobs (batch/v1), the sandbox's `pkg/registry/batch/cronjob/strategy.go`.

Defaults are `SetDefaults_CronJob` (concurrencyPolicy Allow, suspend false, history limits 3
successful and 1 failed; the job template's pod spec gets the pod defaults, its job spec none).
Validation is `ValidateCronJobCreate`/`ValidateCronJobUpdate`: the schedule parsed by robfig/cron
(`sandbox.cron`, its messages), no `TZ=` in a new schedule, the time zone known, the name at most
52 characters (the controller appends `-<minutes since epoch>`), and the job template as a Job's
spec without a selector. The Table is printCronJob's.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from sandbox.apiserver.kinds.job import BATCH, validate_job_spec
from sandbox.apiserver.printing import (
    Row,
    age_col,
    age_of,
    col,
    containers_cells,
    doc,
    format_selector,
    get_path,
    name_col,
    name_of,
    since,
    template_cols,
)
from sandbox.apiserver.strategy import STATUS, Resource, Strategy
from sandbox.apiserver.validation.defaulting import as_map, dict_at
from sandbox.apiserver.validation.fielderrors import Errors
from sandbox.apiserver.validation.names import is_int
from sandbox.apiserver.validation.podspec import default_pod_spec
from sandbox.cron import CronError, load_location, parse_standard

POLICIES = ("Allow", "Forbid", "Replace")
_TZ_PART = re.compile(r"[A-Za-z.\-_0-9+]{1,14}")


def _validate_time_zone(errs: Errors, zone: Any) -> None:
    """`validateTimeZone`."""
    path = "spec.timeZone"
    if zone is None:
        return
    if not isinstance(zone, str) or not zone:
        errs.invalid(path, zone, "timeZone must be nil or non-empty string")
        return
    for part in zone.split("/"):
        if part in (".", "..") or part.startswith("-") or not _TZ_PART.fullmatch(part):
            errs.invalid(path, zone, f"unknown time zone {zone}")
            return
    if zone.lower() == "local":
        errs.invalid(
            path, zone, "timeZone must be an explicit time zone as defined in https://www.iana.org/time-zones"
        )
        return
    try:
        load_location(zone)
    except CronError as exc:
        errs.invalid(path, zone, str(exc))


def _validate_cronjob(errs: Errors, obj: dict, old: dict | None) -> None:
    """`validateCronJobSpec` (``old`` set on update)."""
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        errs.required("spec.schedule")
        return
    old_spec = as_map((old or {}).get("spec"))
    schedule = spec.get("schedule")
    if not schedule:
        errs.required("spec.schedule")
    elif isinstance(schedule, str):
        try:
            parse_standard(schedule)
        except CronError as exc:
            errs.invalid("spec.schedule", schedule, str(exc))
        allow_tz = old is not None and "TZ" in str(old_spec.get("schedule") or "")
        if allow_tz and "TZ" in schedule and spec.get("timeZone") is not None:
            errs.invalid(
                "spec.schedule", schedule, "cannot use both timeZone field and TZ or CRON_TZ in schedule"
            )
        elif not allow_tz and "TZ" in schedule:
            errs.invalid(
                "spec.schedule", schedule, "cannot use TZ or CRON_TZ in schedule, use timeZone field instead"
            )
    deadline = spec.get("startingDeadlineSeconds")
    if deadline is not None and (not is_int(deadline) or deadline < 0):
        errs.invalid("spec.startingDeadlineSeconds", deadline, "must be greater than or equal to 0")
    if old is None or old_spec.get("timeZone") != spec.get("timeZone"):
        _validate_time_zone(errs, spec.get("timeZone"))
    policy = spec.get("concurrencyPolicy")
    if not policy:
        errs.required("spec.concurrencyPolicy")
    elif policy not in POLICIES:
        errs.not_supported("spec.concurrencyPolicy", policy, POLICIES)
    template = spec.get("jobTemplate")
    job_spec = as_map(template).get("spec") if isinstance(template, dict) else None
    validate_job_spec(errs, job_spec, "spec.jobTemplate.spec")
    if isinstance(job_spec, dict):
        if job_spec.get("selector") is not None:
            errs.invalid(
                "spec.jobTemplate.spec.selector", job_spec["selector"], "`selector` will be auto-generated"
            )
        if job_spec.get("manualSelector") is True:
            errs.not_supported("spec.jobTemplate.spec.manualSelector", True, ("nil", "false"))
    for key in ("successfulJobsHistoryLimit", "failedJobsHistoryLimit"):
        value = spec.get(key)
        if value is not None and (not is_int(value) or value < 0):
            errs.invalid(f"spec.{key}", value, "must be greater than or equal to 0")
    if old is None:
        name = str(get_path(obj, "metadata", "name") or "")
        if len(name) > 52:
            errs.invalid("metadata.name", name, "must be no more than 52 characters")


def _cronjob_row(obj: dict, now: datetime) -> Row:
    spec, status = as_map(obj.get("spec")), as_map(obj.get("status"))
    job_spec = as_map(get_path(spec, "jobTemplate", "spec"))
    names, images = containers_cells(get_path(job_spec, "template", "spec"))
    suspend = spec.get("suspend")
    last = status.get("lastScheduleTime")
    return [
        name_of(obj),
        spec.get("schedule") or "",
        spec.get("timeZone") or "<none>",
        "<unset>" if suspend is None else ("true" if suspend else "false"),
        len(status.get("active") or []),
        since(last, now) if last else "<none>",
        age_of(obj, now),
        names,
        images,
        format_selector(job_spec.get("selector")) or "<none>",
    ]


RESOURCE = Resource(
    "batch",
    "v1",
    "CronJob",
    "cronjobs",
    BATCH + "CronJob",
    short_names=("cj",),
    categories=("all",),
    subresources=(STATUS,),
    generation=True,
)


class CronJobStrategy(Strategy):
    """CronJobs: defaults, validation, printCronJob."""

    resource = RESOURCE
    reset_status_on_create = True

    def default(self, obj: dict) -> None:
        """`SetDefaults_CronJob` and the pod defaults of the job template's pod spec."""
        spec = dict_at(obj, "spec")
        if not spec.get("concurrencyPolicy"):
            spec["concurrencyPolicy"] = "Allow"
        spec.setdefault("suspend", False)
        spec.setdefault("successfulJobsHistoryLimit", 3)
        spec.setdefault("failedJobsHistoryLimit", 1)
        job_spec = dict_at(dict_at(spec, "jobTemplate"), "spec")
        default_pod_spec(dict_at(dict_at(job_spec, "template"), "spec"))

    _old: dict | None = None

    def validate(self, errs: Errors, obj: dict) -> None:
        """`ValidateCronJobCreate`, or `ValidateCronJobUpdate` when `validate_object` is
        validating an update (the rules differ: TZ in the schedule, the name length)."""
        _validate_cronjob(errs, obj, self._old)

    def validate_object(self, obj: Any, *, old: dict | None = None) -> None:
        """Remember ``old`` for `validate` (validation is synchronous: nothing interleaves)."""
        self._old = old
        try:
            super().validate_object(obj, old=old)
        finally:
            self._old = None

    def columns(self) -> list[dict[str, Any]]:
        """printCronJob's columns."""
        spec, status = BATCH + "CronJobSpec", BATCH + "CronJobStatus"
        return [
            name_col(),
            col("Schedule", description=doc(spec, "schedule")),
            col("Timezone", description=doc(spec, "timeZone")),
            col("Suspend", "boolean", doc(spec, "suspend")),
            col("Active", "integer", doc(status, "active")),
            col("Last Schedule", description=doc(status, "lastScheduleTime")),
            age_col(),
            *template_cols(doc(BATCH + "JobSpec", "selector")),
        ]

    def row(self, obj: dict, now: datetime) -> Row:
        """printCronJob's cells."""
        return _cronjob_row(obj, now)


STRATEGY = CronJobStrategy()
