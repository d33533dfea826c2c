"""Cron schedules and the CronJob controller's scheduling arithmetic with a fake clock: robfig/cron's
parser (its error messages are what kube-apiserver returns) and `mostRecentScheduleTime`,
startingDeadlineSeconds, requeue delays, job names and history pruning."""

from __future__ import annotations

import contextlib
import copy
from datetime import UTC, datetime
from typing import Any

import pytest

from sandbox.apiserver.kinds.cronjob import STRATEGY as CRONJOBS
from sandbox.apiserver.kinds.job import STRATEGY as JOB_STRATEGY
from sandbox.apiserver.validation import Invalid
from sandbox.apiserver.validation.fielderrors import Undecodable
from sandbox.controllers.cronjob import (
    MANY_MISSED,
    job_from_template,
    job_name,
    jobs_to_prune,
    next_schedule_time,
    requeue_after,
    schedule_of,
)
from sandbox.cron import CronError, parse_standard
from tests.apiserver_units.conftest import official  # noqa: F401  (the official-client fixture)


def at(text: str) -> datetime:
    return (
        datetime.fromisoformat(text).replace(tzinfo=UTC) if "+" not in text else datetime.fromisoformat(text)
    )


def nexts(spec: str, start: str, count: int = 3) -> list[str]:
    sched = parse_standard(spec)
    out, when = [], at(start)
    for _ in range(count):
        following = sched.next(when)
        assert following is not None
        out.append(following.strftime("%Y-%m-%d %H:%M %a"))
        when = following
    return out


@pytest.mark.parametrize(
    ("spec", "start", "expected"),
    [
        (
            "* * * * *",
            "2026-03-01T12:00:00",
            ["2026-03-01 12:01 Sun", "2026-03-01 12:02 Sun", "2026-03-01 12:03 Sun"],
        ),
        (
            "*/15 * * * *",
            "2026-03-01T12:07:30",
            ["2026-03-01 12:15 Sun", "2026-03-01 12:30 Sun", "2026-03-01 12:45 Sun"],
        ),
        (
            "5 4 * * sun",
            "2026-03-01T12:00:00",
            ["2026-03-08 04:05 Sun", "2026-03-15 04:05 Sun", "2026-03-22 04:05 Sun"],
        ),
        (
            "0 9-17/4 * * MON-FRI",
            "2026-03-06T16:00:00",
            ["2026-03-06 17:00 Fri", "2026-03-09 09:00 Mon", "2026-03-09 13:00 Mon"],
        ),
        (
            "0 0 13 * 5",
            "2026-03-01T00:00:00",
            ["2026-03-06 00:00 Fri", "2026-03-13 00:00 Fri", "2026-03-20 00:00 Fri"],
        ),
        (
            "0 0 31 * *",
            "2026-03-31T00:00:00",
            ["2026-05-31 00:00 Sun", "2026-07-31 00:00 Fri", "2026-08-31 00:00 Mon"],
        ),
        (
            "@hourly",
            "2026-03-01T12:30:00",
            ["2026-03-01 13:00 Sun", "2026-03-01 14:00 Sun", "2026-03-01 15:00 Sun"],
        ),
        (
            "@daily",
            "2026-03-01T12:30:00",
            ["2026-03-02 00:00 Mon", "2026-03-03 00:00 Tue", "2026-03-04 00:00 Wed"],
        ),
        (
            "@weekly",
            "2026-03-01T12:30:00",
            ["2026-03-08 00:00 Sun", "2026-03-15 00:00 Sun", "2026-03-22 00:00 Sun"],
        ),
        (
            "@monthly",
            "2026-03-01T12:30:00",
            ["2026-04-01 00:00 Wed", "2026-05-01 00:00 Fri", "2026-06-01 00:00 Mon"],
        ),
        (
            "@yearly",
            "2026-03-01T12:30:00",
            ["2027-01-01 00:00 Fri", "2028-01-01 00:00 Sat", "2029-01-01 00:00 Mon"],
        ),
        (
            "@every 90s",
            "2026-03-01T12:00:00",
            ["2026-03-01 12:01 Sun", "2026-03-01 12:03 Sun", "2026-03-01 12:04 Sun"],
        ),
        (
            "0 12 * jan,mar *",
            "2026-03-31T13:00:00",
            ["2027-01-01 12:00 Fri", "2027-01-02 12:00 Sat", "2027-01-03 12:00 Sun"],
        ),
    ],
)
def test_schedules_fire_when_robfig_cron_says(spec: str, start: str, expected: list) -> None:
    assert nexts(spec, start) == expected


def test_time_zone_prefix_evaluates_the_schedule_in_that_zone() -> None:
    sched = parse_standard("TZ=America/New_York 0 9 * * *")
    following = sched.next(at("2026-07-01T00:00:00"))
    assert following == at("2026-07-01T13:00:00")  # 09:00 EDT
    assert sched.next(at("2026-12-01T00:00:00")) == at("2026-12-01T14:00:00")  # 09:00 EST


def test_a_schedule_that_never_fires_has_no_next_time() -> None:
    assert parse_standard("0 0 30 2 *").next(at("2026-01-01T00:00:00")) is None


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("", "empty spec string"),
        ("* * * *", "expected exactly 5 fields, found 4: [* * * *]"),
        ("0 0 * * * *", "expected exactly 5 fields, found 6: [0 0 * * * *]"),
        ("60 * * * *", "end of range (60) above maximum (59): 60"),
        ("* * 0 * *", "beginning of range (0) below minimum (1): 0"),
        ("* * * * 7", "end of range (7) above maximum (6): 7"),
        ("5-1 * * * *", "beginning of range (5) beyond end of range (1): 5-1"),
        ("*/0 * * * *", "step of range should be a positive number: */0"),
        ("1-2-3 * * * *", "too many hyphens: 1-2-3"),
        ("*/2/3 * * * *", "too many slashes: */2/3"),
        ("x * * * *", 'failed to parse int from x: strconv.Atoi: parsing "x": invalid syntax'),
        ("@fortnightly", "unrecognized descriptor: @fortnightly"),
        ("@every 5", 'failed to parse duration @every 5: time: missing unit in duration "5"'),
        ("TZ=Mars/Olympus * * * * *", "provided bad location Mars/Olympus: unknown time zone Mars/Olympus"),
    ],
)
def test_bad_schedules_have_robfig_crons_messages(spec: str, message: str) -> None:
    with pytest.raises(CronError) as info:
        parse_standard(spec)
    assert str(info.value) == message


def cronjob(
    schedule: str = "*/5 * * * *",
    *,
    created: str = "2026-03-01T12:00:00Z",
    last: str | None = None,
    deadline: int | None = None,
    zone: str | None = None,
) -> dict:
    spec: dict = {
        "schedule": schedule,
        "concurrencyPolicy": "Allow",
        "jobTemplate": {
            "metadata": {"labels": {"team": "a"}, "annotations": {"note": "x"}},
            "spec": {
                "template": {
                    "spec": {"restartPolicy": "OnFailure", "containers": [{"name": "c", "image": "busybox"}]}
                }
            },
        },
    }
    if deadline is not None:
        spec["startingDeadlineSeconds"] = deadline
    if zone is not None:
        spec["timeZone"] = zone
    status = {"lastScheduleTime": last} if last else {}
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": "tick", "namespace": "ns", "uid": "u-1", "creationTimestamp": created},
        "spec": spec,
        "status": status,
    }


@pytest.mark.parametrize(
    ("obj", "now", "expected"),
    [
        (cronjob(), "2026-03-01T12:04:59", None),  # created 12:00: nothing due before 12:05
        (cronjob(), "2026-03-01T12:05:00", "2026-03-01T12:05:00"),
        (
            cronjob(),
            "2026-03-01T12:17:00",
            "2026-03-01T12:15:00",
        ),  # missed 12:05 and 12:10: only the latest runs
        (cronjob(last="2026-03-01T12:15:00Z"), "2026-03-01T12:17:00", None),
        (cronjob(last="2026-03-01T12:15:00Z"), "2026-03-01T12:20:01", "2026-03-01T12:20:00"),
        (cronjob(deadline=30), "2026-03-01T12:17:00", None),  # 12:15 is older than 30 s
        (cronjob(deadline=150), "2026-03-01T12:17:00", "2026-03-01T12:15:00"),
    ],
)
def test_most_recent_unmet_schedule_time(obj: dict, now: str, expected: str | None) -> None:
    scheduled, _ = next_schedule_time(obj, at(now), schedule_of(obj))
    assert scheduled == (at(expected) if expected else None)


def test_too_many_missed_start_times_are_reported() -> None:
    obj = cronjob("* * * * *", created="2026-03-01T00:00:00Z")
    scheduled, missed = next_schedule_time(obj, at("2026-03-01T12:00:30"), schedule_of(obj))
    assert scheduled == at("2026-03-01T12:00:00") and missed == MANY_MISSED


@pytest.mark.parametrize(
    ("obj", "now", "delay"),
    [
        (cronjob(), "2026-03-01T12:01:00", 240.1),
        (cronjob(last="2026-03-01T12:05:00Z"), "2026-03-01T12:05:00.5", 299.6),
        (cronjob("0 * * * *", last="2026-03-01T12:00:00Z"), "2026-03-01T12:59:59", 1.1),
    ],
)
def test_requeue_waits_for_the_next_schedule_time_plus_100ms(obj: dict, now: str, delay: float) -> None:
    assert requeue_after(obj, at(now), schedule_of(obj)) == pytest.approx(delay, abs=0.001)


def test_the_time_zone_field_moves_the_schedule() -> None:
    obj = cronjob("0 9 * * *", created="2026-07-01T00:00:00Z", zone="Europe/Paris")
    scheduled, _ = next_schedule_time(obj, at("2026-07-01T07:00:30"), schedule_of(obj))
    assert scheduled == at("2026-07-01T07:00:00")  # 09:00 CEST


def test_jobs_are_named_by_scheduled_minutes_and_annotated_with_the_scheduled_time() -> None:
    obj = cronjob(zone="Europe/Paris")
    when = at("2026-03-01T12:05:00")
    assert job_name(obj, when) == f"tick-{int(when.timestamp()) // 60}" == "tick-29539445"
    job = job_from_template(obj, when)
    assert job["metadata"]["name"] == "tick-29539445"
    assert job["metadata"]["labels"] == {"team": "a"}
    assert job["metadata"]["annotations"] == {
        "note": "x",
        "batch.kubernetes.io/cronjob-scheduled-timestamp": "2026-03-01T13:05:00+01:00",
    }
    assert job["metadata"]["ownerReferences"] == [
        {
            "apiVersion": "batch/v1",
            "kind": "CronJob",
            "name": "tick",
            "uid": "u-1",
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "OnFailure"
    utc = job_from_template(cronjob(), when)["metadata"]["annotations"]
    assert utc["batch.kubernetes.io/cronjob-scheduled-timestamp"] == "2026-03-01T12:05:00Z"


def test_history_limits_delete_the_oldest_finished_jobs() -> None:
    def finished(name: str, start: str | None) -> dict:
        return {"metadata": {"name": name}, "status": {"startTime": start} if start else {}}

    jobs = [
        finished("c", "2026-03-01T12:10:00Z"),
        finished("a", "2026-03-01T12:00:00Z"),
        finished("b", "2026-03-01T12:05:00Z"),
        finished("z", None),
    ]
    assert [j["metadata"]["name"] for j in jobs_to_prune(jobs, 2)] == ["a", "b"]
    assert jobs_to_prune(jobs, 4) == []
    assert [j["metadata"]["name"] for j in jobs_to_prune(jobs, 0)] == ["a", "b", "c", "z"]


def invalid(obj: dict, old: dict | None = None) -> list[tuple[str, str]]:
    with pytest.raises(Invalid) as info:
        CRONJOBS.validate_object(CRONJOBS.default_object(obj), old=old)
    return [(c["field"], c["message"]) for c in info.value.causes]


def test_cronjob_defaults(official) -> None:  # noqa: F811
    obj = CRONJOBS.default_object(cronjob())
    spec = obj["spec"]
    assert (
        spec["concurrencyPolicy"],
        spec["suspend"],
        spec["successfulJobsHistoryLimit"],
        spec["failedJobsHistoryLimit"],
    ) == ("Allow", False, 3, 1)
    assert "backoffLimit" not in spec["jobTemplate"]["spec"]  # SetDefaults_Job is not applied to templates
    assert spec["jobTemplate"]["spec"]["template"]["spec"]["dnsPolicy"] == "ClusterFirst"
    CRONJOBS.validate_object(obj)
    official("cronjobs", obj)


def test_bad_cronjobs_have_the_real_causes() -> None:
    obj = cronjob("61 * * * *", zone="Local")
    obj["metadata"]["name"] = "n" * 53
    obj["spec"]["concurrencyPolicy"] = "Sometimes"
    obj["spec"]["jobTemplate"]["spec"]["selector"] = {"matchLabels": {"a": "b"}}
    obj["spec"]["jobTemplate"]["spec"]["template"]["spec"]["restartPolicy"] = "Always"
    obj["spec"]["successfulJobsHistoryLimit"] = -1
    assert invalid(obj) == [
        ("spec.schedule", 'Invalid value: "61 * * * *": end of range (61) above maximum (59): 61'),
        (
            "spec.timeZone",
            'Invalid value: "Local": timeZone must be an explicit time zone as defined in '
            "https://www.iana.org/time-zones",
        ),
        (
            "spec.concurrencyPolicy",
            'Unsupported value: "Sometimes": supported values: "Allow", "Forbid", "Replace"',
        ),
        (
            "spec.jobTemplate.spec.template.spec.restartPolicy",
            'Required value: valid values: "OnFailure", "Never"',
        ),
        (
            "spec.jobTemplate.spec.selector",
            'Invalid value: {"matchLabels":{"a":"b"}}: `selector` will be auto-generated',
        ),
        ("spec.successfulJobsHistoryLimit", "Invalid value: -1: must be greater than or equal to 0"),
        ("metadata.name", f'Invalid value: "{"n" * 53}": must be no more than 52 characters'),
    ]


def test_tz_in_the_schedule_is_refused_on_create_and_kept_on_update() -> None:
    assert invalid(cronjob("TZ=UTC 0 * * * *")) == [
        (
            "spec.schedule",
            'Invalid value: "TZ=UTC 0 * * * *": cannot use TZ or CRON_TZ in schedule, use timeZone '
            "field instead",
        )
    ]
    old = CRONJOBS.default_object(cronjob("TZ=UTC 0 * * * *"))
    CRONJOBS.validate_object(CRONJOBS.default_object(cronjob("TZ=UTC 5 * * * *")), old=old)
    assert invalid(cronjob("TZ=UTC 5 * * * *", zone="UTC"), old=old)[0][1].endswith(
        "cannot use both timeZone field and TZ or CRON_TZ in schedule"
    )


JOB_SPEC = {
    "parallelism": 2,
    "completions": 3,
    "completionMode": "Indexed",
    "activeDeadlineSeconds": 5,
    "podFailurePolicy": {
        "rules": [
            {"action": "FailJob", "onExitCodes": {"containerName": "c", "operator": "In", "values": [1]}},
            {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]},
        ]
    },
    "successPolicy": {"rules": [{"succeededIndexes": "0-1", "succeededCount": 1}]},
    "template": {
        "metadata": {"labels": {"a": "b"}},
        "spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]},
    },
}
ODD_VALUES: list[Any] = [None, 1, -1, "x", [], {}, [1], ["a"], {"a": 1}, True, 2**40, [{}], [None]]


def _paths(obj: object, prefix: tuple = ()) -> list[tuple]:
    out = [prefix] if prefix else []
    items = obj.items() if isinstance(obj, dict) else enumerate(obj) if isinstance(obj, list) else []
    for key, value in items:
        out += _paths(value, (*prefix, key))
    return out


def test_malformed_jobs_and_cronjobs_are_refused_never_crash_the_server() -> None:
    """Every field of a Job and a CronJob replaced by values of the wrong type: defaulting and
    validation answer 400/422 (Undecodable/Invalid) or accept; they never raise anything else."""
    meta = {"name": "x", "namespace": "ns", "uid": "u-1"}
    bases: list[tuple[Any, dict[str, Any]]] = [
        (JOB_STRATEGY, {"metadata": meta, "spec": JOB_SPEC}),
        (
            CRONJOBS,
            {
                "metadata": meta,
                "spec": {"schedule": "* * * * *", "timeZone": "UTC", "jobTemplate": {"spec": JOB_SPEC}},
            },
        ),
    ]
    tried = 0
    for strategy, base in bases:
        for path in _paths(base["spec"]):
            for value in ODD_VALUES:
                body = copy.deepcopy(base)
                target: Any = body["spec"]
                for key in path[:-1]:
                    target = target[key]
                target[path[-1]] = value
                for old in (None, strategy.default_object(copy.deepcopy(base))):
                    with contextlib.suppress(Invalid, Undecodable):
                        strategy.validate_object(strategy.default_object(copy.deepcopy(body)), old=old)
                    tried += 1
    assert tried > 1000
