"""The CronJob controller against a real (in-process) API server, driven by a fake clock.

No other controller runs there, so the test plays the Job controller's part where it matters (it
marks a Job Complete through `jobs/status`), and the clock jumps from one schedule time to the next
instead of the test waiting for minute boundaries: concurrencyPolicy Forbid (JobAlreadyActive) and
Replace (the running Job deleted), SawCompletedJob and lastSuccessfulTime, startingDeadlineSeconds,
suspend."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from sandbox.client import CRONJOBS, EVENTS, JOBS, ApiClient, InformerFactory, TaskGroup
from sandbox.controllers.cronjob import CronJobController
from tests.apiserver.conftest import LocalApi, local_api  # noqa: F401  (the in-process API server fixture)

from .conftest import until

NS = "default"
TEMPLATE = {
    "spec": {
        "template": {
            "spec": {"restartPolicy": "OnFailure", "containers": [{"name": "c", "image": "busybox"}]}
        }
    }
}


class Clock:
    """The controller's `now`, moved by the test."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> float:
        return self.now.timestamp()


async def scenario(api: LocalApi) -> None:
    client = ApiClient(base_url=api.url, token=api.token, ca_file=api.ca_file)
    informers = InformerFactory(client)
    clock = Clock()
    controller = CronJobController(client, informers, clock=clock)
    tasks = TaskGroup()
    informers.start(tasks)
    await informers.wait_synced()
    try:
        await steps(client, controller, clock)
    finally:
        await tasks.cancel_all()
        await client.close()


async def steps(client: ApiClient, controller: CronJobController, clock: Clock) -> None:
    body = {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": "every5", "namespace": NS},
        "spec": {"schedule": "*/5 * * * *", "concurrencyPolicy": "Forbid", "jobTemplate": TEMPLATE},
    }
    created = await client.create(CRONJOBS, body)
    key = f"{NS}/every5"
    cronjobs, jobs = controller.cronjobs, controller.jobs
    await until(lambda: cronjobs.get(key), "the informer to see the CronJob")
    start = datetime.fromisoformat(created["metadata"]["creationTimestamp"].replace("Z", "+00:00"))
    first = start.replace(minute=start.minute - start.minute % 5, second=0, microsecond=0) + timedelta(
        minutes=5
    )

    def current() -> dict:
        obj = cronjobs.get(key)
        assert obj is not None, "the CronJob is gone"
        return obj

    def job_named(name: str) -> dict:
        obj = jobs.get(f"{NS}/{name}")
        assert obj is not None, f"no Job {name}"
        return obj

    def names() -> list[str]:
        return sorted(j["metadata"]["name"] for j in jobs.items(NS))

    def status() -> dict:
        return (cronjobs.get(key) or {}).get("status") or {}

    async def sync_at(when: datetime) -> None:
        clock.now = when
        await controller.sync(key)

    # Nothing is due before the first schedule time.
    await sync_at(first - timedelta(seconds=1))
    assert names() == []
    # At 12:05 (say) the Job every5-<minutes> is created and listed as active.
    await sync_at(first + timedelta(seconds=1))
    name1 = f"every5-{int(first.timestamp()) // 60}"
    await until(lambda: names() == [name1] and status().get("active"), "the first Job")
    assert status()["lastScheduleTime"] == first.strftime("%Y-%m-%dT%H:%M:%SZ")
    job = job_named(name1)
    assert job["metadata"]["annotations"][
        "batch.kubernetes.io/cronjob-scheduled-timestamp"
    ] == first.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert job["metadata"]["ownerReferences"][0]["uid"] == created["metadata"]["uid"]
    # Five minutes on, the first still runs: Forbid skips this time.
    await sync_at(first + timedelta(minutes=5, seconds=1))
    assert names() == [name1]
    # Replace: the running Job is deleted and the next one created.
    await client.patch(CRONJOBS, "every5", {"spec": {"concurrencyPolicy": "Replace"}}, namespace=NS)
    await until(lambda: current()["spec"]["concurrencyPolicy"] == "Replace", "the policy change")
    second = first + timedelta(minutes=10)
    await sync_at(second + timedelta(seconds=1))
    name2 = f"every5-{int(second.timestamp()) // 60}"
    await until(
        lambda: names() == [name2] and [r["name"] for r in status().get("active", [])] == [name2],
        "the replacing Job",
    )
    # The Job completes: it leaves status.active and sets lastSuccessfulTime.
    job = dict(job_named(name2))
    stamp = (second + timedelta(seconds=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
    job["status"] = {
        "startTime": second.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "completionTime": stamp,
        "succeeded": 1,
        "conditions": [
            {
                "type": "SuccessCriteriaMet",
                "status": "True",
                "reason": "CompletionsReached",
                "message": "Reached expected number of succeeded pods",
            },
            {
                "type": "Complete",
                "status": "True",
                "reason": "CompletionsReached",
                "message": "Reached expected number of succeeded pods",
            },
        ],
    }
    await client.replace(JOBS, job, subresource="status")
    await until(
        lambda: (jobs.get(f"{NS}/{name2}") or {}).get("status", {}).get("succeeded"), "the Job's status"
    )
    await sync_at(second + timedelta(minutes=1))
    await until(
        lambda: "active" not in status() and status().get("lastSuccessfulTime") == stamp,
        "the completed Job to leave status.active",
    )
    # With startingDeadlineSeconds 10, a schedule time noticed 2 minutes late is not started.
    await client.patch(CRONJOBS, "every5", {"spec": {"startingDeadlineSeconds": 10}}, namespace=NS)
    await until(lambda: current()["spec"].get("startingDeadlineSeconds") == 10, "the deadline")
    await sync_at(second + timedelta(minutes=7))
    assert names() == [name2]
    # A suspended CronJob starts nothing.
    await client.patch(
        CRONJOBS, "every5", {"spec": {"suspend": True, "startingDeadlineSeconds": None}}, namespace=NS
    )
    await until(lambda: current()["spec"]["suspend"] is True, "suspend")
    await sync_at(second + timedelta(minutes=10, seconds=1))
    assert names() == [name2]
    await controller.recorder.flush(timeout=10)
    events = [
        (e["reason"], e["message"])
        for e in (await client.list(EVENTS, namespace=NS))["items"]
        if e["involvedObject"]["name"] == "every5"
    ]
    assert events == [
        ("SuccessfulCreate", f"Created job {name1}"),
        (
            "JobAlreadyActive",
            "Not starting job because prior execution is running and concurrency policy is Forbid",
        ),
        ("SuccessfulDelete", f"Deleted job {name1}"),
        ("SuccessfulCreate", f"Created job {name2}"),
        ("SawCompletedJob", f"Saw completed job: {name2}, condition: Complete"),
    ]


def test_schedule_concurrency_deadline_and_suspend_with_a_fake_clock(local_api: LocalApi) -> None:  # noqa: F811
    asyncio.run(scenario(local_api))
