"""The Job controller against a real (in-process) API server with no kubelet: the test moves the
pods through their phases through `pods/status`, so each step of the controller is checked
deterministically — pods created with the tracking finalizer, a finished pod counted exactly once
(uncountedTerminatedPods, then the finalizer removed, then the counter), SuccessCriteriaMet then
Complete, and a Job `managedBy` another controller left alone."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from sandbox.client import JOBS, PODS, ApiClient, InformerFactory, TaskGroup
from sandbox.controllers.job import JobController
from tests.apiserver.conftest import LocalApi, local_api  # noqa: F401  (the in-process API server fixture)

from .conftest import until

NS = "default"


def job_body(name: str, **spec: Any) -> dict:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "template": {
                "spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}
            },
            **spec,
        },
    }


async def scenario(api: LocalApi, steps: Callable[[ApiClient, JobController], Awaitable[None]]) -> None:
    """Run ``steps`` against a Job controller whose informers watch the in-process API server."""
    client = ApiClient(base_url=api.url, token=api.token, ca_file=api.ca_file)
    controller = JobController(client, informers := InformerFactory(client))
    tasks = TaskGroup()
    informers.start(tasks)
    await informers.wait_synced()
    try:
        await steps(client, controller)
    finally:
        await tasks.cancel_all()
        await client.close()


async def start(client: ApiClient, controller: JobController, *bodies: dict) -> None:
    """Create the Jobs, wait until the informer has them, and sync each once."""
    for body in bodies:
        await client.create(JOBS, body)
    keys = [f"{NS}/{b['metadata']['name']}" for b in bodies]
    await until(lambda: all(controller.jobs.get(k) for k in keys), "the informer to see the Jobs")
    for key in keys:
        await controller.sync(key)


def views(controller: JobController) -> tuple[Callable[[str], list[dict]], Callable[[str], dict]]:
    """The informers' pods of a Job, and its status, by Job name."""

    def pods_of(name: str) -> list[dict]:
        return [p for p in controller.pods.items(NS) if p["metadata"]["labels"].get("job-name") == name]

    def status(name: str) -> dict:
        return (controller.jobs.get(f"{NS}/{name}") or {}).get("status") or {}

    return pods_of, status


async def steps(client: ApiClient, controller: JobController) -> None:
    await start(client, controller, job_body("theirs", managedBy="example.com/batch-operator"),
                job_body("two", completions=2, parallelism=2))
    pods = controller.pods
    pods_of, status = views(controller)
    created = await until(lambda: len(pods_of("two")) == 2 and pods_of("two"), "two pods")
    await until(lambda: status("two").get("active") == 2 and status("two").get("startTime"), "active 2")
    for pod in created:
        assert pod["metadata"]["finalizers"] == ["batch.kubernetes.io/job-tracking"]
        assert pod["metadata"]["ownerReferences"][0]["name"] == "two"
        assert pod["metadata"]["generateName"] == "two-"
    assert pods_of("theirs") == [] and status("theirs") == {}, "a Job managed elsewhere is left alone"

    # The first pod succeeds: counted once, its finalizer removed, the Job still running.
    first, second = created
    done = {
        "phase": "Succeeded",
        "containerStatuses": [
            {
                "name": "c",
                "ready": False,
                "restartCount": 0,
                "image": "busybox",
                "imageID": "",
                "started": False,
                "state": {"terminated": {"exitCode": 0, "reason": "Completed"}},
            }
        ],
    }
    await client.patch(PODS, first["metadata"]["name"], {"status": done}, namespace=NS, subresource="status")
    await until(
        lambda: (
            (pods.get(f"{NS}/{first['metadata']['name']}") or {}).get("status", {}).get("phase")
            == "Succeeded"
        ),
        "the informer to see the pod succeed",
    )
    await controller.sync(f"{NS}/two")
    await until(lambda: status("two").get("succeeded") == 1, "succeeded 1")
    assert status("two")["uncountedTerminatedPods"] == {} and status("two")["active"] == 1
    assert not (pods.get(f"{NS}/{first['metadata']['name']}") or {}).get("metadata", {}).get("finalizers")
    await controller.sync(f"{NS}/two")  # a second pass counts nothing twice
    assert status("two")["succeeded"] == 1
    assert "conditions" not in status("two")

    # The second succeeds: SuccessCriteriaMet, then (nothing left running) Complete.
    await client.patch(PODS, second["metadata"]["name"], {"status": done}, namespace=NS, subresource="status")
    await until(
        lambda: (
            (pods.get(f"{NS}/{second['metadata']['name']}") or {}).get("status", {}).get("phase")
            == "Succeeded"
        ),
        "the informer to see the second pod succeed",
    )
    for _ in range(3):
        await controller.sync(f"{NS}/two")
        await asyncio.sleep(0.2)
    final = await until(
        lambda: any(c["type"] == "Complete" for c in status("two").get("conditions") or []) and status("two"),
        "Complete",
    )
    assert [(c["type"], c["status"]) for c in final["conditions"]] == [
        ("SuccessCriteriaMet", "True"),
        ("Complete", "True"),
    ]
    assert (final["succeeded"], final["active"], final["ready"], final["terminating"]) == (2, 0, 0, 0)
    assert final["completionTime"] >= final["startTime"]
    assert all(not p["metadata"].get("finalizers") for p in pods_of("two"))


def test_job_controller_tracks_pods_exactly_once(local_api: LocalApi) -> None:  # noqa: F811
    asyncio.run(scenario(local_api, steps))


async def removal_steps(client: ApiClient, controller: JobController) -> None:
    """Pods the controller removes itself are not failures; a pod deleted under podReplacementPolicy
    Failed is neither counted nor replaced until it is in the Failed phase."""
    await start(client, controller, job_body("wide", parallelism=2),
                job_body("patient", podReplacementPolicy="Failed"))
    jobs, pods = controller.jobs, controller.pods
    pods_of, status = views(controller)
    await until(lambda: len(pods_of("wide")) == 2 and status("wide").get("active") == 2, "two active pods")
    held = (await until(lambda: pods_of("patient"), "the patient Job's pod"))[0]

    # Parallelism lowered to 1: one pod loses the finalizer, is deleted, and is not a failure.
    await client.patch(JOBS, "wide", {"spec": {"parallelism": 1}}, namespace=NS)
    await until(lambda: (jobs.get(f"{NS}/wide") or {}).get("spec", {}).get("parallelism") == 1, "the patch")
    await controller.sync(f"{NS}/wide")
    await until(lambda: len(pods_of("wide")) == 1, "one pod of two removed")
    await controller.sync(f"{NS}/wide")
    wide = await until(lambda: status("wide").get("active") == 1 and status("wide"), "active 1")
    assert (wide.get("failed", 0), wide.get("uncountedTerminatedPods")) == (0, {})

    # A pod deleted under podReplacementPolicy Failed: terminating, not failed, not replaced ...
    name = held["metadata"]["name"]
    await client.delete(PODS, name, namespace=NS)
    await until(lambda: (pods.get(f"{NS}/{name}") or {}).get("metadata", {}).get("deletionTimestamp"),
                "the pod to be terminating (the finalizer holds it)")
    await controller.sync(f"{NS}/patient")
    patient = await until(lambda: status("patient").get("terminating") == 1 and status("patient"),
                          "the Job to count its pod terminating")
    assert (patient.get("failed", 0), patient["active"], len(pods_of("patient"))) == (0, 0, 1)
    # ... until it ends Failed: then counted once and its finalizer removed (the pod goes).
    failed = {"phase": "Failed", "containerStatuses": [
        {"name": "c", "ready": False, "restartCount": 0, "image": "busybox", "imageID": "", "started": False,
         "state": {"terminated": {"exitCode": 143, "reason": "Error"}}}]}
    await client.patch(PODS, name, {"status": failed}, namespace=NS, subresource="status")
    await until(lambda: (pods.get(f"{NS}/{name}") or {}).get("status", {}).get("phase") == "Failed", "Failed")
    await controller.sync(f"{NS}/patient")
    await until(lambda: status("patient").get("failed") == 1, "the failure counted")
    await until(lambda: pods.get(f"{NS}/{name}") is None, "the pod gone once its finalizer is removed")
    await controller.sync(f"{NS}/patient")
    assert status("patient")["failed"] == 1, "counted once"


def test_removed_and_deleted_pods_count_as_the_job_controller_counts_them(local_api: LocalApi) -> None:  # noqa: F811
    asyncio.run(scenario(local_api, removal_steps))
