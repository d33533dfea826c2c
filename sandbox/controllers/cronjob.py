"""The CronJob controller (kube-controller-manager's `pkg/controller/cronjob`, the v2 controller).

For each CronJob it reconciles `status.active` with the Jobs it owns (events SawCompletedJob,
MissingJob, UnexpectedJob; `lastSuccessfulTime`), then, unless suspended, finds the most recent
unmet schedule time (`mostRecentScheduleTime`, robfig/cron semantics from `sandbox.cron`, in
`spec.timeZone` or UTC), skips it when it is older than `startingDeadlineSeconds`
(MissSchedule), honours `concurrencyPolicy` (Forbid: JobAlreadyActive; Replace: the running
Jobs are deleted, SuccessfulDelete), and creates the Job `<cronjob>-<scheduled minutes since the
epoch>` from `jobTemplate` with the annotation `batch.kubernetes.io/cronjob-scheduled-timestamp`
(SuccessfulCreate "Created job …"). Finished Jobs beyond `successfulJobsHistoryLimit` /
`failedJobsHistoryLimit` are deleted, oldest first. It then sleeps until the next schedule time
plus 100 ms. The scheduling arithmetic takes `now` as an argument, so it is tested with a fake
clock (`tests/batch/test_cron_units.py`).
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sandbox.client import CRONJOBS, JOBS, ApiClient, ApiError, InformerFactory, Obj, key_of
from sandbox.controllers.job import condition_of
from sandbox.controllers.workload import WorkloadController
from sandbox.cron import CronError, Schedule, load_location, parse_standard
from sandbox.meta import controller_ref, owner_reference
from sandbox.record import NORMAL, WARNING

log = logging.getLogger(__name__)

SCHEDULED_TIMESTAMP = "batch.kubernetes.io/cronjob-scheduled-timestamp"
NEXT_SCHEDULE_DELTA = timedelta(milliseconds=100)
NONE_MISSED, FEW_MISSED, MANY_MISSED = 0, 1, 2


def _time(stamp: str | None) -> datetime | None:
    if not stamp:
        return None
    try:
        parsed = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def rfc3339(when: datetime) -> str:
    """Go's `time.RFC3339` in the time's own zone (`Z` for UTC)."""
    text = when.replace(microsecond=0).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def schedule_of(cronjob: Obj) -> Schedule:
    """`formatSchedule` + `cron.ParseStandard`: the schedule in `spec.timeZone` if set."""
    spec = cronjob.get("spec") or {}
    text = str(spec.get("schedule") or "")
    zone = spec.get("timeZone")
    if zone and "TZ" not in text:
        text = f"TZ={zone} {text}"
    return parse_standard(text)


def most_recent_schedule_time(
    cronjob: Obj, now: datetime, sched: Schedule, *, with_deadline: bool
) -> tuple[datetime, datetime | None, int]:
    """`mostRecentScheduleTime`: (earliest time considered, the most recent unmet schedule time
    at or before ``now`` or None, how many were missed); raises CronError for a schedule whose
    two consecutive times are less than a second apart or that never fires."""
    meta, spec, status = cronjob.get("metadata") or {}, cronjob.get("spec") or {}, cronjob.get("status") or {}
    earliest = _time(status.get("lastScheduleTime")) or _time(meta.get("creationTimestamp")) or now
    deadline = spec.get("startingDeadlineSeconds")
    if with_deadline and deadline is not None:
        cutoff = now - timedelta(seconds=int(deadline))
        earliest = max(earliest, cutoff)
    t1 = sched.next(earliest)
    if t1 is None or now < t1:
        return earliest, None, NONE_MISSED
    t2 = sched.next(t1)
    if t2 is None or now < t2:
        return earliest, t1, NONE_MISSED
    between = round((t2 - t1).total_seconds())
    if between < 1:
        raise CronError("time difference between two schedules is less than 1 second")
    missed = int((now - t1).total_seconds()) // between + 1
    most_recent: datetime | None = None
    candidate = sched.next(t1 + timedelta(seconds=(missed - 2) * between))
    while candidate is not None and candidate <= now:
        most_recent = candidate
        candidate = sched.next(candidate)
    kind = MANY_MISSED if missed > 100 else FEW_MISSED
    return earliest, most_recent, kind


def next_schedule_time(cronjob: Obj, now: datetime, sched: Schedule) -> tuple[datetime | None, int]:
    """`nextScheduleTime`: the schedule time to start now (or None) and the missed kind."""
    _, most_recent, missed = most_recent_schedule_time(cronjob, now, sched, with_deadline=True)
    if most_recent is None or most_recent > now:
        return None, missed
    return most_recent, missed


def requeue_after(cronjob: Obj, now: datetime, sched: Schedule) -> float:
    """`nextScheduleTimeDuration`: seconds until the next schedule time, plus 100 ms."""
    try:
        earliest, most_recent, missed = most_recent_schedule_time(cronjob, now, sched, with_deadline=False)
    except CronError:
        most_recent, earliest, missed = now, now, NONE_MISSED
    if most_recent is None:
        most_recent = earliest if missed == NONE_MISSED else now
    following = sched.next(most_recent)
    if following is None:
        return 24 * 3600.0
    return (following + NEXT_SCHEDULE_DELTA - now).total_seconds()


def job_name(cronjob: Obj, scheduled: datetime) -> str:
    """`getJobName`: the CronJob's name and the scheduled time in minutes since the epoch."""
    return f"{cronjob['metadata']['name']}-{int(scheduled.timestamp()) // 60}"


def job_from_template(cronjob: Obj, scheduled: datetime) -> Obj:
    """`getJobFromTemplate2`: the Job to create for ``scheduled``."""
    template = cronjob["spec"].get("jobTemplate") or {}
    meta = template.get("metadata") or {}
    zone = load_location(str(cronjob["spec"].get("timeZone") or ""))
    annotations = dict(meta.get("annotations") or {})
    annotations[SCHEDULED_TIMESTAMP] = rfc3339(scheduled.astimezone(zone))
    job: Obj = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": job_name(cronjob, scheduled),
            "namespace": cronjob["metadata"]["namespace"],
            "annotations": annotations,
            "ownerReferences": [owner_reference(cronjob)],
        },
        "spec": copy.deepcopy(template.get("spec") or {}),
    }
    if meta.get("labels"):
        job["metadata"]["labels"] = dict(meta["labels"])
    return job


def finished_type(job: Obj) -> str | None:
    """ "Complete" or "Failed" for a finished Job, else None."""
    status = job.get("status") or {}
    for type_ in ("Complete", "Failed"):
        if condition_of(status, type_) is not None:
            return type_
    return None


def jobs_to_prune(jobs: list[Obj], limit: int) -> list[Obj]:
    """`removeOldestJobs`: the oldest finished Jobs beyond ``limit`` (by start time, then name)."""
    if len(jobs) <= limit:
        return []

    def started(job: Obj) -> tuple[int, float, str]:
        start = _time((job.get("status") or {}).get("startTime"))
        return (start is None, start.timestamp() if start else 0.0, job["metadata"]["name"])

    return sorted(jobs, key=started)[: len(jobs) - limit]


class CronJobController(WorkloadController):
    """Reconciles CronJobs: creates their Jobs on schedule and prunes the finished ones."""

    resource = CRONJOBS
    child = JOBS
    component = "cronjob-controller"

    def __init__(
        self, client: ApiClient, informers: InformerFactory, *, clock: Callable[[], float] = time.time
    ) -> None:
        super().__init__(client, informers)
        self.clock = clock
        self.cronjobs, self.jobs = self.owners, self.children

    def observe_orphan(self, kind: str, child: Obj, ref: Obj | None) -> None:
        """A CronJob adopts no Job: it has no selector."""

    async def sync(self, key: str) -> None:
        """Reconcile one CronJob and requeue it for its next schedule time."""
        cached = self.cronjobs.get(key)
        if cached is None:
            return
        cronjob = copy.deepcopy(cached)
        uid = cronjob["metadata"]["uid"]
        jobs = [
            j
            for j in self.jobs.items(cronjob["metadata"]["namespace"])
            if (controller_ref(j) or {}).get("uid") == uid
        ]
        before = copy.deepcopy(cronjob.get("status") or {})
        delay = await self._sync(cronjob, jobs)
        await self._prune(cronjob, jobs)
        if (cronjob.get("status") or {}) != before:
            await self._write_status(cronjob)
        if delay is not None:
            self.queue.add_after(key, max(delay, 0.0))

    async def _sync(self, cronjob: Obj, jobs: list[Obj]) -> float | None:
        """`syncCronJob`: returns seconds until the next look, or None."""
        now = datetime.fromtimestamp(self.clock(), UTC)
        status = cronjob.setdefault("status", {})
        active = status.setdefault("active", [])
        children = {j["metadata"]["uid"] for j in jobs}
        for job in jobs:
            job_uid = job["metadata"]["uid"]
            listed = any(ref.get("uid") == job_uid for ref in active)
            finished = finished_type(job)
            if not listed and finished is None:
                self.recorder.event(
                    cronjob,
                    WARNING,
                    "UnexpectedJob",
                    f"Saw a job that the controller did not create or forgot: {job['metadata']['name']}",
                )
            elif listed and finished is not None:
                active[:] = [ref for ref in active if ref.get("uid") != job_uid]
                self.recorder.event(
                    cronjob,
                    NORMAL,
                    "SawCompletedJob",
                    f"Saw completed job: {job['metadata']['name']}, condition: {finished}",
                )
            if finished == "Complete":
                done = (job.get("status") or {}).get("completionTime")
                last = _time(status.get("lastSuccessfulTime"))
                if done and (last is None or (_time(done) or now) > last):
                    status["lastSuccessfulTime"] = done
        for ref in list(active):
            if ref.get("uid") in children:
                continue
            try:
                await self.client.get(JOBS, ref.get("name", ""), namespace=ref.get("namespace"))
            except ApiError as exc:
                if not exc.not_found:
                    raise
                self.recorder.event(
                    cronjob, NORMAL, "MissingJob", f"Active job went missing: {ref.get('name')}"
                )
                active.remove(ref)
        if not active:
            status.pop("active")
        spec = cronjob["spec"]
        if cronjob["metadata"].get("deletionTimestamp") or spec.get("suspend") is True:
            return None
        zone = spec.get("timeZone")
        if zone is not None:
            try:
                load_location(str(zone))
            except CronError as exc:
                self.recorder.event(cronjob, WARNING, "UnknownTimeZone", f'invalid timeZone: "{zone}": {exc}')
                return None
        try:
            sched = schedule_of(cronjob)
        except CronError as exc:
            self.recorder.event(
                cronjob,
                WARNING,
                "UnparseableSchedule",
                f'unparseable schedule: "{spec.get("schedule")}" : {exc}',
            )
            return None
        try:
            scheduled, missed = next_schedule_time(cronjob, now, sched)
        except CronError as exc:
            self.recorder.event(
                cronjob, WARNING, "InvalidSchedule", f"invalid schedule: {spec.get('schedule')} : {exc}"
            )
            return None
        if missed == MANY_MISSED:
            self.recorder.event(
                cronjob,
                WARNING,
                "TooManyMissedTimes",
                "too many missed start times. Set or decrease .spec.startingDeadlineSeconds "
                "or check clock skew",
            )
        if scheduled is None:
            return requeue_after(cronjob, now, sched)
        deadline = spec.get("startingDeadlineSeconds")
        if deadline is not None and scheduled + timedelta(seconds=int(deadline)) < now:
            self.recorder.event(
                cronjob,
                WARNING,
                "MissSchedule",
                f"Missed scheduled time to start a job: {scheduled.strftime('%a, %d %b %Y %H:%M:%S +0000')}",
            )
            return requeue_after(cronjob, now, sched)
        name = job_name(cronjob, scheduled)
        if (
            any(ref.get("name") == name for ref in status.get("active") or [])
            or _time(status.get("lastScheduleTime")) == scheduled
        ):
            return requeue_after(cronjob, now, sched)
        policy = spec.get("concurrencyPolicy") or "Allow"
        if policy == "Forbid" and status.get("active"):
            self.recorder.event(
                cronjob,
                NORMAL,
                "JobAlreadyActive",
                "Not starting job because prior execution is running and concurrency policy is Forbid",
            )
            return requeue_after(cronjob, now, sched)
        if policy == "Replace":
            for ref in list(status.get("active") or []):
                await self._delete_job(cronjob, ref.get("name", ""), ref.get("uid", ""))
        created = await self._create_job(cronjob, scheduled)
        if created is None:
            return None
        status.setdefault("active", []).append(
            {
                "kind": "Job",
                "namespace": created["metadata"]["namespace"],
                "name": created["metadata"]["name"],
                "uid": created["metadata"]["uid"],
                "apiVersion": "batch/v1",
                "resourceVersion": created["metadata"].get("resourceVersion", ""),
            }
        )
        status["lastScheduleTime"] = scheduled.strftime("%Y-%m-%dT%H:%M:%SZ")
        return requeue_after(cronjob, now, sched)

    async def _create_job(self, cronjob: Obj, scheduled: datetime) -> Obj | None:
        """Create the Job for ``scheduled``; an existing one of ours counts as created."""
        body = job_from_template(cronjob, scheduled)
        try:
            created = await self.client.create(JOBS, body)
        except ApiError as exc:
            if exc.status == 409:
                existing = await self.client.get(
                    JOBS, body["metadata"]["name"], namespace=body["metadata"]["namespace"]
                )
                ours = (controller_ref(existing) or {}).get("uid") == cronjob["metadata"]["uid"]
                listed = any(
                    ref.get("uid") == existing["metadata"]["uid"]
                    for ref in (cronjob.get("status") or {}).get("active") or []
                )
                return existing if ours and not listed else None
            message = exc.body.get("message") if isinstance(exc.body, dict) else str(exc)
            self.recorder.event(cronjob, WARNING, "FailedCreate", f"Error creating job: {message}")
            raise
        self.recorder.event(cronjob, NORMAL, "SuccessfulCreate", f"Created job {created['metadata']['name']}")
        return created

    async def _delete_job(self, cronjob: Obj, name: str, uid: str) -> None:
        """`deleteJob`: background deletion, off the active list, SuccessfulDelete."""
        try:
            await self.client.delete(
                JOBS, name, namespace=cronjob["metadata"]["namespace"], propagation="Background"
            )
        except ApiError as exc:
            if not exc.not_found:
                self.recorder.event(cronjob, WARNING, "FailedDelete", f"Deleted job: {exc}")
                raise
        status = cronjob.get("status") or {}
        status["active"] = [ref for ref in status.get("active") or [] if ref.get("uid") != uid]
        if not status["active"]:
            status.pop("active")
        self.recorder.event(cronjob, NORMAL, "SuccessfulDelete", f"Deleted job {name}")

    async def _prune(self, cronjob: Obj, jobs: list[Obj]) -> None:
        """`cleanupFinishedJobs`: keep the newest finished Jobs within the history limits."""
        spec = cronjob["spec"]
        for type_, key in (("Complete", "successfulJobsHistoryLimit"), ("Failed", "failedJobsHistoryLimit")):
            limit = spec.get(key)
            if limit is None:
                continue
            finished = [
                j for j in jobs if finished_type(j) == type_ and not j["metadata"].get("deletionTimestamp")
            ]
            for job in jobs_to_prune(finished, int(limit)):
                await self._delete_job(cronjob, job["metadata"]["name"], job["metadata"]["uid"])

    async def _write_status(self, cronjob: Obj) -> None:
        try:
            await self.client.replace(CRONJOBS, cronjob, subresource="status")
        except ApiError as exc:
            if exc.not_found:
                return
            if exc.conflict:
                self.queue.add_after(key_of(cronjob), 0.05)
                return
            raise
