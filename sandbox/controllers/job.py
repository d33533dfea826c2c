"""The Job controller (kube-controller-manager's `pkg/controller/job`), and the TTL-after-finished one.

Like the real controller it:

- creates up to `parallelism` pods (never more than the completions left), each with the
  `batch.kubernetes.io/job-tracking` finalizer, the Job as controller owner, and for Indexed
  Jobs the completion index (annotation and label `batch.kubernetes.io/job-completion-index`,
  env `JOB_COMPLETION_INDEX`, hostname `<job>-<index>`);
- tracks finished pods in three steps so that no pod is counted twice or lost: their uids go
  to `status.uncountedTerminatedPods`, then their finalizers are removed, then they move to
  the `succeeded`/`failed` counters (and `completedIndexes`); a pod deleted before it finished
  counts as failed at its deletion with podReplacementPolicy TerminatingOrFailed, only once it is
  in the Failed phase with Failed (`isPodFailed`), and pods the controller removes itself
  (suspend, lowered parallelism) lose the finalizer first and are not counted (`deleteJobPods`);
- applies `podFailurePolicy` to failed pods (`matchPodFailurePolicy`: FailJob fails the Job with
  reason PodFailurePolicy, Ignore does not count the failure, Count does, FailIndex fails the
  pod's index), and an Indexed Job's `successPolicy` (SuccessCriteriaMet with reason SuccessPolicy
  once a rule's indexes or count have succeeded);
- with `backoffLimitPerIndex`, counts failures per index (the pod annotation
  `batch.kubernetes.io/job-index-failure-count`, a per-index back-off), lists exhausted indexes in
  `status.failedIndexes` and fails the Job with FailedIndexes once every index succeeded or failed
  (MaxFailedIndexesExceeded beyond `maxFailedIndexes`);
- replaces failed pods after the pod-failure back-off (10 s doubling, at most 10 min, since the
  last failure), and fails the Job once failures exceed `backoffLimit` (or, with restartPolicy
  OnFailure, the container restarts reach it), or when it has been active longer than
  `activeDeadlineSeconds`;
- finishes as the 1.3x controller does: first the interim condition (`SuccessCriteriaMet` /
  `FailureTarget`), then active pods are deleted, and once no pod is left running or
  uncounted the terminal `Complete` (with completionTime) or `Failed` condition, with the
  events `Completed` / `BackoffLimitExceeded` / `DeadlineExceeded`;
- deletes active pods of a suspended Job (condition Suspended, events Suspended/Resumed, the
  start time reset on resume);
- removes the tracking finalizer from pods whose Job is gone, finished or being deleted.

`TTLAfterFinishedController` deletes finished Jobs `ttlSecondsAfterFinished` after they
finished, with foreground propagation (the garbage collector removes their pods first).
"""

from __future__ import annotations

import asyncio
import copy
import logging
import time
from dataclasses import dataclass

from sandbox.apiserver.kinds.job import COMPLETION_INDEX, TRACKING_FINALIZER
from sandbox.client import JOBS, JSON_PATCH, PODS, ApiClient, ApiError, Informer, InformerFactory, Obj, key_of
from sandbox.controllers.workload import (
    BURST,
    WorkloadController,
    pod_delete_rank,
    pod_from_template,
    slow_start,
)
from sandbox.controllers.workqueue import WorkQueue
from sandbox.meta import controller_ref, is_pod_ready, now_iso, parse_time
from sandbox.record import NORMAL, WARNING

log = logging.getLogger(__name__)

MANAGED_BY = "kubernetes.io/job-controller"
DEFAULT_BACKOFF = 10.0
MAX_BACKOFF = 600.0
COMPLETIONS_REACHED = ("CompletionsReached", "Reached expected number of succeeded pods")
BACKOFF_EXCEEDED = ("BackoffLimitExceeded", "Job has reached the specified backoff limit")
DEADLINE_EXCEEDED = ("DeadlineExceeded", "Job was active longer than specified deadline")
MAX_FAILED_INDEXES = (
    "MaxFailedIndexesExceeded",
    "Job has exceeded the specified maximal number of failed indexes",
)
FAILED_INDEXES = ("FailedIndexes", "Job has failed indexes")
INDEX_FAILURE_COUNT = "batch.kubernetes.io/job-index-failure-count"


# ----- pure helpers (unit-tested) ------------------------------------------------------------


def backoff_delay(failures: int) -> float:
    """Seconds to wait before replacing a failed pod after ``failures`` consecutive failures
    (`getRemainingTime`'s back-off: 10 s doubling, capped at 10 min; none before a failure)."""
    if failures <= 0:
        return 0.0
    return min(DEFAULT_BACKOFF * 2 ** min(failures - 1, 32), MAX_BACKOFF)


def parse_indexes(text: str | None) -> set[int]:
    """`completedIndexes` ("1,3-5,7") as a set."""
    out: set[int] = set()
    for part in (text or "").split(","):
        if not part:
            continue
        low, _, high = part.partition("-")
        try:
            out.update(range(int(low), int(high or low) + 1))
        except ValueError:
            continue
    return out


def format_indexes(indexes: set[int]) -> str:
    """A set of indexes as `completedIndexes` writes it: sorted, runs of 3+ as ranges
    ("1,3-5,7"; a run of two is "1,2")."""
    parts: list[str] = []
    ordered = sorted(indexes)
    i = 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and ordered[j + 1] == ordered[j] + 1:
            j += 1
        if j == i:
            parts.append(str(ordered[i]))
        elif j == i + 1:
            parts.extend((str(ordered[i]), str(ordered[j])))
        else:
            parts.append(f"{ordered[i]}-{ordered[j]}")
        i = j + 1
    return ",".join(parts)


def want_active(spec: Obj, succeeded: int, active: int) -> int:
    """How many pods should run (`wantActive` in manageJob)."""
    parallelism = int(spec.get("parallelism") or 0)
    completions = spec.get("completions")
    if completions is None:
        return active if succeeded > 0 else parallelism
    return max(0, min(int(completions) - succeeded, parallelism))


def pod_index(pod: Obj) -> int | None:
    """The completion index of an Indexed Job's pod, or None."""
    value = (pod["metadata"].get("annotations") or {}).get(COMPLETION_INDEX)
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _exit_code_matches(requirement: Obj, pod: Obj) -> Obj | None:
    """`matchOnExitCodes`: the first terminated container (non-zero exit) the requirement matches."""
    status = pod.get("status") or {}
    values = set(requirement.get("values") or [])
    name = requirement.get("containerName")
    for group in ("initContainerStatuses", "containerStatuses"):
        for ctr in status.get(group) or []:
            code = ((ctr.get("state") or {}).get("terminated") or {}).get("exitCode")
            if code in (None, 0) or (name and ctr.get("name") != name):
                continue
            if (code in values) == (requirement.get("operator") == "In"):
                return ctr
    return None


def match_pod_failure_policy(policy: Obj | None, pod: Obj) -> tuple[str, str]:
    """`matchPodFailurePolicy` for a failed pod: the action ("Count" when no rule matches, or
    there is no policy) and, for FailJob, the Job's failure message."""
    meta = pod["metadata"]
    for index, rule in enumerate((policy or {}).get("rules") or []):
        action = rule.get("action")
        matched = ""
        if rule.get("onExitCodes") is not None:
            ctr = _exit_code_matches(rule["onExitCodes"], pod)
            if ctr is not None:
                code = ctr["state"]["terminated"]["exitCode"]
                matched = (
                    f"Container {ctr.get('name')} for pod {meta.get('namespace')}/{meta.get('name')} "
                    f"failed with exit code {code} matching {action} rule at index {index}"
                )
        elif rule.get("onPodConditions") is not None:
            for pattern in rule["onPodConditions"]:
                for cond in (pod.get("status") or {}).get("conditions") or []:
                    if cond.get("type") == pattern.get("type") and cond.get("status") == pattern.get(
                        "status", "True"
                    ):
                        matched = (
                            f"Pod {meta.get('namespace')}/{meta.get('name')} has condition "
                            f"{cond.get('type')} matching {action} rule at index {index}"
                        )
                        break
                if matched:
                    break
        if matched and action in ("Ignore", "Count", "FailJob", "FailIndex"):
            return action, matched if action == "FailJob" else ""
    return "Count", ""


def match_success_policy(policy: Obj | None, succeeded: set[int]) -> str | None:
    """`matchSuccessPolicy`: "Matched rules at index N" for the first rule the succeeded indexes
    satisfy (all of `succeededIndexes`, or `succeededCount` of them / of all), else None."""
    for index, rule in enumerate((policy or {}).get("rules") or []):
        wanted = rule.get("succeededIndexes")
        count = rule.get("succeededCount")
        pool = succeeded & parse_indexes(wanted) if wanted is not None else succeeded
        if wanted is not None and count is None:
            ok = parse_indexes(wanted) <= succeeded
        else:
            ok = count is not None and len(pool) >= int(count)
        if ok:
            return f"Matched rules at index {index}"
    return None


def index_failures(pod: Obj) -> int:
    """How many times this pod's index had failed before it (`job-index-failure-count`)."""
    value = (pod["metadata"].get("annotations") or {}).get(INDEX_FAILURE_COUNT, "0")
    try:
        return max(0, int(value))
    except ValueError:
        return 0


def per_index(spec: Obj) -> bool:
    """An Indexed Job with `backoffLimitPerIndex`: failures are counted per index."""
    return spec.get("completionMode") == "Indexed" and spec.get("backoffLimitPerIndex") is not None


def new_condition(type_: str, status: str, reason: str, message: str, now: str) -> Obj:
    """A JobCondition as the controller writes it."""
    return {
        "type": type_,
        "status": status,
        "lastProbeTime": now,
        "lastTransitionTime": now,
        "reason": reason,
        "message": message,
    }


def condition_of(status: Obj, type_: str) -> Obj | None:
    """The condition of ``type_`` in a Job status that is True, or None."""
    for cond in status.get("conditions") or []:
        if cond.get("type") == type_ and cond.get("status") == "True":
            return cond
    return None


def is_finished(job: Obj) -> bool:
    """Complete=True or Failed=True (`IsJobFinished`)."""
    status = job.get("status") or {}
    return condition_of(status, "Complete") is not None or condition_of(status, "Failed") is not None


def has_finalizer(pod: Obj) -> bool:
    return TRACKING_FINALIZER in (pod["metadata"].get("finalizers") or [])


def is_terminal(pod: Obj) -> bool:
    return (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")


def is_deleting(pod: Obj) -> bool:
    return bool(pod["metadata"].get("deletionTimestamp"))


def only_replace_failed(spec: Obj) -> bool:
    """podReplacementPolicy Failed (implied by a podFailurePolicy): a terminating pod is neither
    counted nor replaced until it reaches the Failed phase (`onlyReplaceFailedPods`)."""
    return spec.get("podReplacementPolicy") == "Failed" or spec.get("podFailurePolicy") is not None


def considered_failed(pod: Obj, spec: Obj) -> bool:
    """`isPodFailed`: the Failed phase; with TerminatingOrFailed also a pod deleted before it
    succeeded (an orphan may never reach a phase), counted at its deletion."""
    phase = (pod.get("status") or {}).get("phase")
    if phase == "Failed":
        return True
    if only_replace_failed(spec):
        return False
    return is_deleting(pod) and phase != "Succeeded"


@dataclass
class BackoffRecord:
    """Failures since the last success and when the last one happened (`backoffRecord`)."""

    failures: int = 0
    last_failure: float = 0.0

    def remaining(self, now: float) -> float:
        """Seconds left before a replacement pod may be created."""
        if self.failures == 0:
            return 0.0
        return max(0.0, backoff_delay(self.failures) - (now - self.last_failure))


class JobController(WorkloadController):
    """Reconciles Jobs with their pods."""

    resource = JOBS
    component = "job-controller"

    def __init__(self, client: ApiClient, informers: InformerFactory) -> None:
        super().__init__(client, informers)
        self.jobs = self.owners
        self.orphans = WorkQueue("job-orphan-pods")
        self.backoff: dict[str, BackoffRecord] = {}
        self.fail_job: dict[str, str] = {}

    def forget(self, key: str, owner: Obj) -> None:
        """A deleted Job: its pods' finalizers go (`cleanupPodFinalizers`)."""
        super().forget(key, owner)
        self.backoff.pop(key, None)
        self.fail_job.pop(key, None)
        meta = owner.get("metadata") or {}
        for pod in self.pods.items(meta.get("namespace")):
            if (controller_ref(pod) or {}).get("uid") == meta.get("uid") and has_finalizer(pod):
                self.orphans.add(key_of(pod))

    def observe(self, kind: str, key: str, child: Obj, is_new: bool) -> None:
        """Expectations, and a pod still holding our finalizer whose Job is gone or another one."""
        super().observe(kind, key, child, is_new)
        job = self.jobs.get(key)
        ref = controller_ref(child) or {}
        if is_new and has_finalizer(child) and (job is None or job["metadata"]["uid"] != ref.get("uid")):
            self.orphans.add(key_of(child))

    def observe_orphan(self, kind: str, child: Obj, ref: Obj | None) -> None:
        """Orphaned (`delete --cascade=orphan`): the finalizer is not ours to hold. (Jobs with a
        manual selector do not adopt orphans here.)"""
        if kind != "DELETED" and has_finalizer(child):
            self.orphans.add(key_of(child))

    async def run(self) -> None:
        """Process both queues forever."""
        await asyncio.gather(self.queue.run(self.sync, workers=self.workers),
                             self.orphans.run(self._sync_orphan))

    # ----- orphan pods --------------------------------------------------------------------
    async def _sync_orphan(self, key: str) -> None:
        """Remove the tracking finalizer of a pod whose Job is gone (or is another Job now)."""
        pod = self.pods.get(key)
        if pod is None or not has_finalizer(pod):
            return
        ref = controller_ref(pod) or {}
        job = self.jobs.get(f"{pod['metadata']['namespace']}/{ref.get('name')}")
        if job is not None and job["metadata"]["uid"] == ref.get("uid") and not is_finished(job):
            return
        await self._strip_finalizer(pod)

    async def _strip_finalizer(self, pod: Obj) -> bool:
        """Remove our finalizer with a JSON patch tested against the current list."""
        finalizers = pod["metadata"].get("finalizers") or []
        if TRACKING_FINALIZER not in finalizers:
            return True
        at = finalizers.index(TRACKING_FINALIZER)
        ops = [
            {"op": "test", "path": f"/metadata/finalizers/{at}", "value": TRACKING_FINALIZER},
            {"op": "remove", "path": f"/metadata/finalizers/{at}"},
        ]
        try:
            await self.client.patch(
                PODS,
                pod["metadata"]["name"],
                ops,
                namespace=pod["metadata"]["namespace"],
                content_type=JSON_PATCH,
            )
        except ApiError as exc:
            if exc.not_found:
                return True
            log.info("could not remove the finalizer of %s: %s", pod["metadata"]["name"], exc)
            return False
        return True

    # ----- the sync loop --------------------------------------------------------------------
    async def sync(self, key: str) -> None:
        """Reconcile one Job."""
        cached = self.jobs.get(key)
        if cached is None:
            return
        if cached["spec"].get("managedBy") not in (None, MANAGED_BY):
            return  # another controller (Kueue, JobSet ...) owns this Job's pods and status
        job = copy.deepcopy(cached)
        uid = job["metadata"]["uid"]
        pods = [
            p
            for p in self.pods.items(job["metadata"]["namespace"])
            if (controller_ref(p) or {}).get("uid") == uid
        ]
        if job["metadata"].get("deletionTimestamp") or is_finished(job):
            await asyncio.gather(
                *(
                    self._strip_finalizer(p)
                    for p in pods
                    if has_finalizer(p) and (is_terminal(p) or is_deleting(p) or is_finished(job))
                )
            )
            return
        if not self.expectations.satisfied(key):
            return
        status = copy.deepcopy(job.get("status") or {})
        now = time.time()
        stamp = now_iso()
        spec = job["spec"]
        indexed = spec.get("completionMode") == "Indexed"
        record = self.backoff.setdefault(key, BackoffRecord())
        await self._track(job, key, pods, status, indexed, record, now)

        if per_index(spec):
            status.setdefault("failedIndexes", "")
        active = [p for p in pods if not is_terminal(p) and not is_deleting(p)]
        terminating = [p for p in pods if is_deleting(p) and not is_terminal(p)]
        succeeded = int(status.get("succeeded") or 0)
        failed = int(status.get("failed") or 0)
        completed = parse_indexes(status.get("completedIndexes"))
        suspended = spec.get("suspend") is True
        conditions = status.setdefault("conditions", [])
        events: list[tuple[str, str, str]] = []

        target = condition_of(status, "FailureTarget") or condition_of(status, "SuccessCriteriaMet")
        if target is None and not suspended:
            target = self._finish_reason(job, status, active, succeeded, failed, completed, now, stamp)
            if target is not None:
                conditions.append(target)
        if target is not None:
            await self.delete_pods(job, key, active)  # `deleteActivePods`: finalizers kept
            uncounted = status.get("uncountedTerminatedPods") or {}
            left = [p for p in pods if has_finalizer(p) or not is_terminal(p)]
            if not left and not uncounted.get("succeeded") and not uncounted.get("failed"):
                if target["type"] == "SuccessCriteriaMet":
                    conditions.append(
                        new_condition("Complete", "True", target["reason"], target["message"], stamp)
                    )
                    status["completionTime"] = stamp
                    events.append((NORMAL, "Completed", "Job completed"))
                else:
                    conditions.append(
                        new_condition("Failed", "True", target["reason"], target["message"], stamp)
                    )
                    events.append((WARNING, target["reason"], target["message"]))
            active, terminating = [], [p for p in pods if not is_terminal(p)]
        elif suspended:
            await self._remove_pods(job, key, active)
            if self._ensure_suspended(conditions, "True", stamp):
                events.append((NORMAL, "Suspended", "Job suspended"))
            terminating += active
            active = []
        else:
            if self._ensure_suspended(conditions, "False", stamp):
                events.append((NORMAL, "Resumed", "Job resumed"))
                status["startTime"] = stamp
            status.setdefault("startTime", stamp)
            active = await self._manage(
                job, key, pods, active, terminating, succeeded, completed, record, now
            )
            self._requeue_deadline(job, key, status, now)

        status["active"] = len(active)
        status["ready"] = sum(1 for p in active if is_pod_ready(p))
        status["terminating"] = len(terminating)
        status.setdefault("uncountedTerminatedPods", {})
        if not conditions:
            status.pop("conditions")
        await self._write_status(job, status)
        for type_, reason, message in events:
            self.recorder.event(job, type_, reason, message)

    def _finish_reason(
        self,
        job: Obj,
        status: Obj,
        active: list[Obj],
        succeeded: int,
        failed: int,
        completed: set[int],
        now: float,
        stamp: str,
    ) -> Obj | None:
        """The interim condition a Job that is not finishing yet has earned, or None."""
        spec = job["spec"]
        message = self.fail_job.pop(key_of(job), None)
        if message:
            return new_condition("FailureTarget", "True", "PodFailurePolicy", message, stamp)
        limit = int(spec.get("backoffLimit") if spec.get("backoffLimit") is not None else 6)
        template_spec = (spec.get("template") or {}).get("spec") or {}
        uncounted = status.get("uncountedTerminatedPods") or {}
        failed += len(uncounted.get("failed") or [])
        exceeded = failed > limit
        if template_spec.get("restartPolicy") == "OnFailure":
            restarts = sum(  # pastBackoffLimitOnFailure: restarts of the pods still running
                int(c.get("restartCount") or 0)
                for p in active
                for group in ("initContainerStatuses", "containerStatuses")
                for c in (p.get("status") or {}).get(group) or []
            )
            exceeded = exceeded or (restarts > 0 if limit == 0 else restarts >= limit)
        if exceeded:
            return new_condition("FailureTarget", "True", *BACKOFF_EXCEEDED, stamp)
        deadline = spec.get("activeDeadlineSeconds")
        start = parse_time(status.get("startTime"))
        if deadline is not None and start is not None and now - start >= int(deadline):
            return new_condition("FailureTarget", "True", *DEADLINE_EXCEEDED, stamp)
        if per_index(spec):
            failed_indexes = parse_indexes(status.get("failedIndexes"))
            max_failed = spec.get("maxFailedIndexes")
            if max_failed is not None and len(failed_indexes) > int(max_failed):
                return new_condition("FailureTarget", "True", *MAX_FAILED_INDEXES, stamp)
            if failed_indexes and len(completed | failed_indexes) >= int(spec.get("completions") or 0):
                return new_condition("FailureTarget", "True", *FAILED_INDEXES, stamp)
        matched = match_success_policy(spec.get("successPolicy"), completed)
        if matched is not None and spec.get("completionMode") == "Indexed":
            return new_condition("SuccessCriteriaMet", "True", "SuccessPolicy", matched, stamp)
        completions = spec.get("completions")
        if completions is None:
            done = succeeded > 0 and not active
        elif spec.get("completionMode") == "Indexed":
            done = len(completed) >= int(completions)
        else:
            done = succeeded >= int(completions)
        if done:
            return new_condition("SuccessCriteriaMet", "True", *COMPLETIONS_REACHED, stamp)
        return None

    @staticmethod
    def _ensure_suspended(conditions: list[Obj], value: str, stamp: str) -> bool:
        """`ensureJobConditionStatus` for Suspended: add or flip it; True when it changed."""
        reason, message = (
            ("JobSuspended", "Job suspended") if value == "True" else ("JobResumed", "Job resumed")
        )
        for cond in conditions:
            if cond.get("type") == "Suspended":
                if cond.get("status") == value:
                    return False
                cond.update(new_condition("Suspended", value, reason, message, stamp))
                return True
        if value == "True":
            conditions.append(new_condition("Suspended", value, reason, message, stamp))
            return True
        return False

    def _requeue_deadline(self, job: Obj, key: str, status: Obj, now: float) -> None:
        deadline = job["spec"].get("activeDeadlineSeconds")
        start = parse_time(status.get("startTime"))
        if deadline is not None and start is not None:
            self.queue.add_after(key, max(0.0, start + int(deadline) - now) + 0.05)

    # ----- tracking finished pods ---------------------------------------------------------
    async def _track(
        self,
        job: Obj,
        key: str,
        pods: list[Obj],
        status: Obj,
        indexed: bool,
        record: BackoffRecord,
        now: float,
    ) -> None:
        """uncountedTerminatedPods → remove finalizers → counters (`trackJobStatusAndRemoveFinalizers`)."""
        uncounted = status.get("uncountedTerminatedPods") or {}
        ok_s, ok_f = list(uncounted.get("succeeded") or []), list(uncounted.get("failed") or [])
        by_uid = {p["metadata"]["uid"]: p for p in pods}
        added = False
        strip: list[Obj] = []
        finishing = condition_of(status, "FailureTarget") or condition_of(status, "SuccessCriteriaMet")
        for pod in pods:
            if not has_finalizer(pod):
                continue
            uid = pod["metadata"]["uid"]
            phase = (pod.get("status") or {}).get("phase")
            if uid in ok_s or uid in ok_f:
                strip.append(pod)
            elif phase == "Succeeded":
                ok_s.append(uid)
                added = True
                strip.append(pod)
            elif finishing is not None and finishing["type"] == "SuccessCriteriaMet" and \
                    not considered_failed(pod, job["spec"]):
                strip.append(pod)  # `canRemoveFinalizer`: the Job is finishing; not a failure
            elif considered_failed(pod, job["spec"]) or finishing is not None:
                action, message = match_pod_failure_policy(job["spec"].get("podFailurePolicy"), pod)
                strip.append(pod)
                if action == "Ignore":  # not counted towards backoffLimit; replaced
                    continue
                if action == "FailJob":
                    self.fail_job.setdefault(key, message)
                index = pod_index(pod)
                if per_index(job["spec"]) and index is not None:
                    limit = int(job["spec"]["backoffLimitPerIndex"])
                    if action == "FailIndex" or index_failures(pod) + 1 > limit:
                        failed = parse_indexes(status.get("failedIndexes")) | {index}
                        status["failedIndexes"] = format_indexes(failed)
                ok_f.append(uid)
                added = True
        if added:
            status["uncountedTerminatedPods"] = {
                k: v for k, v in (("succeeded", ok_s), ("failed", ok_f)) if v
            }
            if not await self._write_status(job, status):
                return
        results = await asyncio.gather(*(self._strip_finalizer(p) for p in strip))
        stripped = {p["metadata"]["uid"] for p, ok in zip(strip, results, strict=True) if ok}
        if not ok_s and not ok_f:
            return
        completed = parse_indexes(status.get("completedIndexes"))
        keep_s, keep_f = [], []
        new_failures = 0
        for uid in ok_s:
            done = by_uid.get(uid)
            if done is not None and has_finalizer(done) and uid not in stripped:
                keep_s.append(uid)
                continue
            index = pod_index(done) if done is not None else None
            if indexed and index is not None:
                completed.add(index)
            elif not indexed:
                status["succeeded"] = int(status.get("succeeded") or 0) + 1
            record.failures = 0
        for uid in ok_f:
            gone = by_uid.get(uid)
            if gone is not None and has_finalizer(gone) and uid not in stripped:
                keep_f.append(uid)
                continue
            status["failed"] = int(status.get("failed") or 0) + 1
            new_failures += 1
        if new_failures:
            record.failures += new_failures
            record.last_failure = now
        if indexed:
            status["succeeded"] = len(completed)
            if completed:
                status["completedIndexes"] = format_indexes(completed)
        status["uncountedTerminatedPods"] = {
            k: v for k, v in (("succeeded", keep_s), ("failed", keep_f)) if v
        }

    # ----- creating and deleting pods -----------------------------------------------------
    async def _manage(
        self,
        job: Obj,
        key: str,
        pods_of_job: list[Obj],
        active: list[Obj],
        terminating: list[Obj],
        succeeded: int,
        completed: set[int],
        record: BackoffRecord,
        now: float,
    ) -> list[Obj]:
        """Create or delete pods towards `want_active`; returns the pods now active."""
        spec = job["spec"]
        failed = parse_indexes((job.get("status") or {}).get("failedIndexes")) if per_index(spec) else set()
        want = want_active(spec, succeeded + len(failed), len(active))
        if len(active) > want:
            victims = sorted(active, key=pod_delete_rank)[: min(len(active) - want, BURST)]
            await self._remove_pods(job, key, victims)
            gone = {p["metadata"]["uid"] for p in victims}
            return [p for p in active if p["metadata"]["uid"] not in gone]
        if spec.get("podReplacementPolicy") == "Failed":
            want -= len(terminating)
        missing = min(want - len(active), BURST)
        if missing <= 0:
            return active
        failures: dict[int, int] = {}
        wait = 0.0 if per_index(spec) else record.remaining(now)
        if wait > 0:
            self.queue.add_after(key, wait)
            return active
        indexes: list[int | None] = [None] * missing
        if spec.get("completionMode") == "Indexed":
            taken = (
                completed
                | failed
                | {i for i in (pod_index(p) for p in active + terminating) if i is not None}
            )
            free = [i for i in range(int(spec.get("completions") or 0)) if i not in taken]
            if per_index(spec):
                free = self._ready_indexes(key, free, pods_of_job, failures, now)
            indexes = list(free[:missing])
        created = await slow_start(
            indexes, lambda i: self._create_pod(job, key, i, failures.get(i, 0) if i is not None else 0)
        )
        return active + created

    def _ready_indexes(
        self, key: str, free: list[int], pods: list[Obj], failures: dict[int, int], now: float
    ) -> list[int]:
        """The free indexes whose per-index back-off is over; fills ``failures`` (the failure
        count each replacement pod carries) and requeues for the others."""
        last: dict[int, float] = {}
        for pod in pods:
            index = pod_index(pod)
            if index is None or ((pod.get("status") or {}).get("phase") != "Failed" and not is_deleting(pod)):
                continue
            failures[index] = max(failures.get(index, 0), index_failures(pod) + 1)
            finished = max(
                (
                    parse_time(((c.get("state") or {}).get("terminated") or {}).get("finishedAt")) or 0.0
                    for c in (pod.get("status") or {}).get("containerStatuses") or []
                ),
                default=0.0,
            )
            last[index] = max(last.get(index, 0.0), finished or now)
        ready = []
        for index in free:
            left = backoff_delay(failures.get(index, 0)) - (now - last.get(index, now))
            if index in last and left > 0:
                self.queue.add_after(key, left)
            else:
                ready.append(index)
        return ready

    async def _create_pod(self, job: Obj, key: str, index: int | None, failure_count: int = 0) -> Obj:
        name = job["metadata"]["name"]
        template = job["spec"].get("template") or {}
        meta = template.get("metadata") or {}
        finalizers = [*(meta.get("finalizers") or []), TRACKING_FINALIZER]
        pod = pod_from_template(job, {**template, "metadata": {**meta, "finalizers": finalizers}})
        if index is not None:
            labels, spec = pod["metadata"]["labels"], pod["spec"]
            annotations = pod["metadata"].setdefault("annotations", {})
            annotations[COMPLETION_INDEX] = str(index)
            if per_index(job["spec"]):
                annotations[INDEX_FAILURE_COUNT] = str(failure_count)
            labels[COMPLETION_INDEX] = str(index)
            pod["metadata"]["generateName"] = f"{name}-{index}-"
            spec.setdefault("hostname", f"{name}-{index}")
            env = {
                "name": "JOB_COMPLETION_INDEX",
                "valueFrom": {
                    "fieldRef": {
                        "apiVersion": "v1",
                        "fieldPath": f"metadata.annotations['{COMPLETION_INDEX}']",
                    }
                },
            }
            for group in ("initContainers", "containers"):
                for ctr in spec.get(group) or []:
                    if not any(e.get("name") == "JOB_COMPLETION_INDEX" for e in ctr.get("env") or []):
                        ctr["env"] = [*(ctr.get("env") or []), env]
        return await self.create_pod(job, key, pod)

    async def _remove_pods(self, job: Obj, key: str, pods: list[Obj]) -> None:
        """`deleteJobPods`: pods the Job no longer wants (suspended, parallelism lowered) lose the
        tracking finalizer first, so they are not counted as failed, then are deleted."""
        stripped = await asyncio.gather(*(self._strip_finalizer(p) for p in pods))
        await self.delete_pods(job, key, [p for p, ok in zip(pods, stripped, strict=True) if ok])

    async def _write_status(self, job: Obj, status: Obj) -> bool:
        """PUT the status if it changed; False when the Job is gone or changed meanwhile."""
        if status == (job.get("status") or {}):
            return True
        body = {**job, "status": status}
        try:
            updated = await self.client.replace(JOBS, body, subresource="status")
        except ApiError as exc:
            if exc.not_found or exc.conflict:
                self.queue.add_after(key_of(job), 0.05)
                return False
            raise
        job["metadata"]["resourceVersion"] = updated["metadata"]["resourceVersion"]
        job["status"] = updated.get("status") or {}
        return True


class TTLAfterFinishedController:
    """Deletes finished Jobs `ttlSecondsAfterFinished` after they finished
    (`pkg/controller/ttlafterfinished`)."""

    def __init__(self, client: ApiClient, informers: InformerFactory) -> None:
        self.client = client
        self.jobs: Informer = informers.informer(JOBS)
        self.queue = WorkQueue("ttl-after-finished")
        self.jobs.add_handler(self._on_job)

    def _on_job(self, kind: str, old: Obj | None, new: Obj | None) -> None:
        if kind != "DELETED" and new is not None:
            self.queue.add(key_of(new))

    async def run(self) -> None:
        """Process the queue forever."""
        await self.queue.run(self.sync)

    async def sync(self, key: str) -> None:
        """Delete the Job if its TTL has expired, or look again when it will."""
        job = self.jobs.get(key)
        if job is None or job["metadata"].get("deletionTimestamp") or not is_finished(job):
            return
        ttl = job["spec"].get("ttlSecondsAfterFinished")
        if ttl is None:
            return
        status = job.get("status") or {}
        cond = condition_of(status, "Complete") or condition_of(status, "Failed") or {}
        finished = parse_time(cond.get("lastTransitionTime")) or time.time()
        left = finished + int(ttl) - time.time()
        if left > 0:
            self.queue.add_after(key, left)
            return
        try:
            await self.client.delete(
                JOBS,
                job["metadata"]["name"],
                namespace=job["metadata"]["namespace"],
                uid=job["metadata"]["uid"],
                propagation="Foreground",
            )
        except ApiError as exc:
            if not exc.not_found:
                raise
