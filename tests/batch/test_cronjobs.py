"""CronJobs on a live sandbox with the real kubectl 1.37: `create cronjob` (protobuf), printCronJob's
Table, `create job --from=cronjob/NAME`, the history limit pruning finished Jobs, and the controller
starting a missed schedule at once (the one live scheduling test: it catches up a schedule whose last
run is minutes old instead of waiting for a minute boundary)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from tests.polling import wait_until

from .conftest import Namespace

TIMEOUT = 90.0


def test_create_cronjob_and_a_manual_job_from_it(ns: Namespace) -> None:
    out = ns.kubectl(
        "create", "cronjob", "nightly", "--image=busybox", "--schedule=0 3 * * *", "--", "echo", "run"
    )
    assert out == "cronjob.batch/nightly created\n"
    table = ns.kubectl("get", "cronjobs", "-o", "wide").splitlines()
    assert table[0].split() == [
        "NAME",
        "SCHEDULE",
        "TIMEZONE",
        "SUSPEND",
        "ACTIVE",
        "LAST",
        "SCHEDULE",
        "AGE",
        "CONTAINERS",
        "IMAGES",
        "SELECTOR",
    ]
    assert table[1].split()[:10] == ["nightly", "0", "3", "*", "*", "*", "<none>", "false", "0", "<none>"]
    cronjob = ns.get("cronjob", "nightly")
    spec = cronjob["spec"]
    assert (
        spec["concurrencyPolicy"],
        spec["successfulJobsHistoryLimit"],
        spec["failedJobsHistoryLimit"],
    ) == ("Allow", 3, 1)
    assert spec["jobTemplate"]["spec"]["template"]["spec"]["restartPolicy"] == "OnFailure"
    ns.kubectl(
        "patch", "cronjob", "nightly", "--type=merge", "-p", '{"spec":{"successfulJobsHistoryLimit":1}}'
    )
    for name in ("by-hand-1", "by-hand-2"):
        assert ns.kubectl("create", "job", name, "--from=cronjob/nightly") == f"job.batch/{name} created\n"
        ns.kubectl("wait", "--for=condition=complete", f"job/{name}", f"--timeout={TIMEOUT:.0f}s")
    job = ns.get("job", "by-hand-2")
    assert job["metadata"]["annotations"] == {"cronjob.kubernetes.io/instantiate": "manual"}
    owner = job["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["name"], owner["uid"]) == ("CronJob", "nightly", cronjob["metadata"]["uid"])
    assert ns.kubectl("logs", "job/by-hand-2") == "run\n"
    wait_until(
        lambda: [j["metadata"]["name"] for j in ns.items("jobs")] == ["by-hand-2"],
        timeout=TIMEOUT,
        interval=0.5,
        what="the older finished job to be pruned by successfulJobsHistoryLimit 1",
    )
    events = ns.events("nightly")
    assert ("Normal", "SuccessfulDelete", "Deleted job by-hand-1") in events
    assert (
        "Warning",
        "UnexpectedJob",
        "Saw a job that the controller did not create or forgot: by-hand-1",
    ) in events
    bad = ns.fails("create", "cronjob", "broken", "--image=busybox", "--schedule=61 * * * *")
    assert 'spec.schedule: Invalid value: "61 * * * *": end of range (61) above maximum (59): 61' in bad


def test_a_missed_schedule_starts_a_job_named_after_its_minute(ns: Namespace) -> None:
    ns.kubectl("create", "cronjob", "tick", "--image=busybox", "--schedule=* * * * *", "--", "echo", "tock")
    last = (datetime.now(UTC) - timedelta(minutes=3)).strftime("%Y-%m-%dT%H:%M:00Z")
    ns.kubectl(
        "patch",
        "cronjob",
        "tick",
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps({"status": {"lastScheduleTime": last}}),
    )
    jobs = wait_until(lambda: ns.items("jobs"), timeout=TIMEOUT, interval=0.3, what="the catch-up job")
    name = jobs[0]["metadata"]["name"]
    scheduled = jobs[0]["metadata"]["annotations"]["batch.kubernetes.io/cronjob-scheduled-timestamp"]
    minute = datetime.fromisoformat(scheduled.replace("Z", "+00:00"))
    assert name == f"tick-{int(minute.timestamp()) // 60}" and minute.second == 0
    assert minute > datetime.fromisoformat(last.replace("Z", "+00:00"))
    ns.kubectl("wait", "--for=condition=complete", f"job/{name}", f"--timeout={TIMEOUT:.0f}s")
    assert ns.kubectl("logs", f"job/{name}") == "tock\n"

    def settled() -> dict | None:
        status = ns.get("cronjob", "tick")["status"]
        return status if "lastSuccessfulTime" in status and not status.get("active") else None

    status = wait_until(
        settled, timeout=TIMEOUT, interval=0.3, what="the completed job to leave status.active"
    )
    assert status["lastScheduleTime"] >= scheduled.replace("+00:00", "Z")
    events = ns.events("tick")
    assert ("Normal", "SuccessfulCreate", f"Created job {name}") in events
    assert ("Normal", "SawCompletedJob", f"Saw completed job: {name}, condition: Complete") in events
