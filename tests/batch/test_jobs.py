"""Jobs on a live sandbox with the real kubectl 1.37: `create job` (a protobuf body), `get`, `logs
job/NAME`, `describe`, `wait`, cascading `delete`; retries with back-off then BackoffLimitExceeded,
activeDeadlineSeconds, Indexed completion, suspend/resume, ttlSecondsAfterFinished, and bad or
immutable changes refused with kube-apiserver's causes."""

from __future__ import annotations

from tests.polling import wait_until

from .conftest import Namespace

TIMEOUT = 90.0


def job_yaml(name: str, command: str, *, restart: str = "Never", **spec: object) -> str:
    """A Job manifest running ``command`` in busybox (extra spec fields as given)."""
    lines = [f"apiVersion: batch/v1\nkind: Job\nmetadata: {{name: {name}}}\nspec:"]
    lines += [f"  {key}: {value}" for key, value in spec.items()]
    lines.append(
        f"  template:\n    spec:\n      restartPolicy: {restart}\n      terminationGracePeriodSeconds: 5\n"
        f"      containers: [{{name: main, image: busybox, command: [sh, -c, '{command}']}}]"
    )
    return "\n".join(lines) + "\n"


def conditions(job: dict) -> list[tuple[str, str, str]]:
    return [(c["type"], c["status"], c.get("reason", "")) for c in job["status"].get("conditions") or []]


def test_kubectl_create_job_runs_to_completion_and_delete_cascades(ns: Namespace) -> None:
    assert (
        ns.kubectl("create", "job", "hello", "--image=busybox", "--", "echo", "hi")
        == "job.batch/hello created\n"
    )
    ns.kubectl("wait", "--for=condition=complete", "job/hello", f"--timeout={TIMEOUT:.0f}s")
    table = ns.kubectl("get", "jobs", "-o", "wide").splitlines()
    assert table[0].split() == [
        "NAME",
        "STATUS",
        "COMPLETIONS",
        "DURATION",
        "AGE",
        "CONTAINERS",
        "IMAGES",
        "SELECTOR",
    ]
    job = ns.get("job", "hello")
    uid = job["metadata"]["uid"]
    assert table[1].split()[:3] == ["hello", "Complete", "1/1"]
    assert table[1].split()[-3:] == ["hello", "busybox", f"batch.kubernetes.io/controller-uid={uid}"]
    assert ns.kubectl("logs", "job/hello") == "hi\n"
    assert conditions(job) == [
        ("SuccessCriteriaMet", "True", "CompletionsReached"),
        ("Complete", "True", "CompletionsReached"),
    ]
    assert job["status"]["succeeded"] == 1 and job["status"]["uncountedTerminatedPods"] == {}
    assert job["status"]["completionTime"] >= job["status"]["startTime"]
    pods = ns.items("pods", "-l", "job-name=hello")
    assert len(pods) == 1 and pods[0]["status"]["phase"] == "Succeeded"
    assert pods[0]["metadata"]["labels"]["batch.kubernetes.io/controller-uid"] == uid
    assert not pods[0]["metadata"].get("finalizers"), "the job-tracking finalizer stays after counting"
    described = ns.kubectl("describe", "job", "hello")
    assert "Pods Statuses:    0 Active (0 Ready) / 1 Succeeded / 0 Failed" in described
    assert f"Created pod: {pods[0]['metadata']['name']}" in described and "Job completed" in described
    ns.kubectl("delete", "job", "hello")
    wait_until(
        lambda: not ns.items("pods"), timeout=TIMEOUT, interval=0.5, what="the job's pods to be deleted"
    )


def test_failed_pods_are_retried_after_a_backoff_then_the_job_fails(ns: Namespace) -> None:
    ns.kubectl("create", "-f", "-", stdin=job_yaml("flaky", "echo trying; exit 3", backoffLimit=1))
    ns.kubectl("wait", "--for=condition=failed", "job/flaky", f"--timeout={TIMEOUT:.0f}s")
    job = ns.get("job", "flaky")
    assert conditions(job) == [
        ("FailureTarget", "True", "BackoffLimitExceeded"),
        ("Failed", "True", "BackoffLimitExceeded"),
    ]
    assert (
        job["status"]["failed"] == 2
        and job["status"]["active"] == 0
        and "completionTime" not in job["status"]
    )
    assert ns.kubectl("get", "job", "flaky", "--no-headers").split()[1:3] == ["Failed", "0/1"]
    pods = sorted(ns.items("pods", "-l", "job-name=flaky"), key=lambda p: p["metadata"]["creationTimestamp"])
    assert [p["status"]["phase"] for p in pods] == ["Failed", "Failed"]
    assert all(not p["metadata"].get("finalizers") for p in pods)
    from sandbox.meta import parse_time

    first_done = parse_time(pods[0]["status"]["containerStatuses"][0]["state"]["terminated"]["finishedAt"])
    second_created = parse_time(pods[1]["metadata"]["creationTimestamp"])
    assert first_done is not None and second_created is not None
    assert second_created - first_done >= 9, "the replacement pod waits for the 10 s pod-failure back-off"
    events = ns.events("flaky")
    assert ("Warning", "BackoffLimitExceeded", "Job has reached the specified backoff limit") in events
    assert [r for _, r, _ in events].count("SuccessfulCreate") == 2


def test_active_deadline_fails_the_job_and_stops_its_pod(ns: Namespace) -> None:
    ns.kubectl(
        "create",
        "-f",
        "-",
        stdin=job_yaml("slow", 'trap "exit 1" TERM; sleep 300 & wait', activeDeadlineSeconds=2),
    )
    ns.kubectl("wait", "--for=condition=failed", "job/slow", f"--timeout={TIMEOUT:.0f}s")
    job = ns.get("job", "slow")
    assert conditions(job)[-1] == ("Failed", "True", "DeadlineExceeded")
    assert job["status"]["active"] == 0 and job["status"]["failed"] == 1
    events = ns.events("slow")
    assert ("Warning", "DeadlineExceeded", "Job was active longer than specified deadline") in events
    assert any(reason == "SuccessfulDelete" for _, reason, _ in events)
    assert all(
        p["status"]["phase"] in ("Failed", "Succeeded") or p["metadata"].get("deletionTimestamp")
        for p in ns.items("pods")
    )


def test_indexed_job_gives_each_pod_its_completion_index(ns: Namespace) -> None:
    ns.kubectl(
        "create",
        "-f",
        "-",
        stdin=job_yaml(
            "idx",
            "echo index=$JOB_COMPLETION_INDEX host=$(hostname)",
            completions=3,
            parallelism=3,
            completionMode="Indexed",
        ),
    )
    ns.kubectl("wait", "--for=condition=complete", "job/idx", f"--timeout={TIMEOUT:.0f}s")
    job = ns.get("job", "idx")
    assert job["status"]["completedIndexes"] == "0-2" and job["status"]["succeeded"] == 3
    logs = set()
    for pod in ns.items("pods", "-l", "job-name=idx"):
        index = pod["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"]
        assert pod["metadata"]["labels"]["batch.kubernetes.io/job-completion-index"] == index
        assert (
            pod["metadata"]["name"].startswith(f"idx-{index}-") and pod["spec"]["hostname"] == f"idx-{index}"
        )
        logs.add(ns.kubectl("logs", pod["metadata"]["name"]).strip())
    assert logs == {"index=0 host=idx-0", "index=1 host=idx-1", "index=2 host=idx-2"}
    assert ns.kubectl("get", "job", "idx", "--no-headers").split()[1:3] == ["Complete", "3/3"]


def test_suspended_job_creates_no_pods_until_resumed(ns: Namespace) -> None:
    ns.kubectl("create", "-f", "-", stdin=job_yaml("later", "echo done", suspend="true", completions=2))
    wait_until(
        lambda: ("Suspended", "True", "JobSuspended") in conditions(ns.get("job", "later")),
        timeout=TIMEOUT,
        interval=0.3,
        what="the Suspended condition",
    )
    assert ns.kubectl("get", "job", "later", "--no-headers").split()[1:3] == ["Suspended", "0/2"]
    assert ns.items("pods") == []
    assert "startTime" not in ns.get("job", "later")["status"]
    ns.kubectl("patch", "job", "later", "--type=merge", "-p", '{"spec":{"suspend":false}}')
    ns.kubectl("wait", "--for=condition=complete", "job/later", f"--timeout={TIMEOUT:.0f}s")
    job = ns.get("job", "later")
    assert ("Suspended", "False", "JobResumed") in [
        (c["type"], c["status"], c["reason"]) for c in job["status"]["conditions"]
    ]
    assert job["status"]["succeeded"] == 2 and len(ns.items("pods")) == 2
    reasons = [(t, r, m) for t, r, m in ns.events("later") if r in ("Suspended", "Resumed")]
    assert reasons == [("Normal", "Suspended", "Job suspended"), ("Normal", "Resumed", "Job resumed")]


def test_ttl_after_finished_deletes_the_job_and_its_pods(ns: Namespace) -> None:
    ns.kubectl("create", "-f", "-", stdin=job_yaml("brief", "echo bye", ttlSecondsAfterFinished=0))
    wait_until(
        lambda: ns.items("pods", "-l", "job-name=brief") != [] or None,
        timeout=TIMEOUT,
        interval=0.2,
        what="the job's pod",
    )
    wait_until(
        lambda: not ns.items("jobs") and not ns.items("pods"),
        timeout=TIMEOUT,
        interval=0.5,
        what="the finished job and its pod to be deleted",
    )


def test_bad_jobs_and_immutable_changes_are_refused_with_the_real_causes(ns: Namespace) -> None:
    bad = job_yaml("bad", "true", restart="Always", parallelism=-1)
    assert ns.fails("create", "-f", "-", stdin=bad).strip() == (
        'The Job "bad" is invalid: \n'
        "* spec.parallelism: Invalid value: -1: must be greater than or equal to 0\n"
        '* spec.template.spec.restartPolicy: Required value: valid values: "OnFailure", "Never"'
    )
    ns.kubectl("create", "-f", "-", stdin=job_yaml("good", "sleep 1", suspend="true"))
    error = ns.fails("patch", "job", "good", "--type=merge", "-p", '{"spec":{"completions":4}}')
    assert 'The Job "good" is invalid: spec.completions: Invalid value: 4: field is immutable' in error
    error = ns.fails(
        "patch", "job", "good", "--type=merge", "-p", '{"spec":{"selector":{"matchLabels":{"a":"b"}}}}'
    )
    assert "spec.selector: Invalid value" in error and "field is immutable" in error
    ns.kubectl(
        "patch",
        "job",
        "good",
        "--type=merge",
        "-p",
        '{"spec":{"template":{"spec":{"nodeSelector":{"kubernetes.io/os":"linux"}}}}}',
    )
    assert [j["metadata"]["name"] for j in ns.items("jobs")] == ["good"]


def test_on_failure_restarts_the_container_in_place_until_the_backoff_limit(ns: Namespace) -> None:
    ns.kubectl("create", "-f", "-", stdin=job_yaml("retry", "exit 1", restart="OnFailure", backoffLimit=1))
    ns.kubectl("wait", "--for=condition=failed", "job/retry", f"--timeout={TIMEOUT:.0f}s")
    assert conditions(ns.get("job", "retry"))[-1] == ("Failed", "True", "BackoffLimitExceeded")
    events = ns.events("retry")
    assert [r for _, r, _ in events].count("SuccessfulCreate") == 1, "the kubelet restarts it, no new pod"
    pod_name = next(m for _, r, m in events if r == "SuccessfulCreate").removeprefix("Created pod: ")
    assert f"Deleted pod: {pod_name}" in [m for _, r, m in events if r == "SuccessfulDelete"]
    assert ns.get("job", "retry")["status"]["failed"] == 1


def test_pod_failure_policy_fails_the_job_on_a_non_retriable_exit_code(ns: Namespace) -> None:
    manifest = job_yaml("fatal", "exit 42", backoffLimit=6) + (
        "  podFailurePolicy:\n    rules:\n"
        "    - {action: FailJob, onExitCodes: {containerName: main, operator: In, values: [42]}}\n"
    )
    ns.kubectl("create", "-f", "-", stdin=manifest)
    ns.kubectl("wait", "--for=condition=failed", "job/fatal", f"--timeout={TIMEOUT:.0f}s")
    job = ns.get("job", "fatal")
    pod = ns.items("pods", "-l", "job-name=fatal")[0]["metadata"]["name"]
    message = (
        f"Container main for pod {ns.name}/{pod} failed with exit code 42 matching FailJob rule at index 0"
    )
    assert [(c["type"], c["reason"], c["message"]) for c in job["status"]["conditions"]] == [
        ("FailureTarget", "PodFailurePolicy", message),
        ("Failed", "PodFailurePolicy", message),
    ]
    assert job["status"]["failed"] == 1 and job["spec"]["podReplacementPolicy"] == "Failed"
    assert ("Warning", "PodFailurePolicy", message) in ns.events("fatal")


def test_success_policy_completes_an_indexed_job_early(ns: Namespace) -> None:
    # The other indexes stop with a failure when deleted: one that exited 0 before the controller saw
    # it terminating would reach the Succeeded phase and count (as on a real cluster).
    command = 'if [ "$JOB_COMPLETION_INDEX" = 0 ]; then exit 0; fi; trap "exit 1" TERM; sleep 300 & wait'
    manifest = job_yaml("leader", command, completions=3, parallelism=3, completionMode="Indexed") + (
        '  successPolicy:\n    rules:\n    - {succeededIndexes: "0"}\n'
    )
    ns.kubectl("create", "-f", "-", stdin=manifest)
    ns.kubectl("wait", "--for=condition=complete", "job/leader", f"--timeout={TIMEOUT:.0f}s")
    job = ns.get("job", "leader")
    assert [(c["type"], c["reason"], c["message"]) for c in job["status"]["conditions"]] == [
        ("SuccessCriteriaMet", "SuccessPolicy", "Matched rules at index 0"),
        ("Complete", "SuccessPolicy", "Matched rules at index 0"),
    ]
    assert job["status"]["completedIndexes"] == "0" and job["status"]["active"] == 0
    assert [r for _, r, _ in ns.events("leader")].count("SuccessfulDelete") == 2


def test_backoff_limit_per_index_fails_only_that_index(ns: Namespace) -> None:
    command = 'if [ "$JOB_COMPLETION_INDEX" = 1 ]; then exit 1; fi; echo ok'
    manifest = job_yaml(
        "per-index", command, completions=3, parallelism=3, completionMode="Indexed", backoffLimitPerIndex=0
    )
    ns.kubectl("create", "-f", "-", stdin=manifest)
    ns.kubectl("wait", "--for=condition=failed", "job/per-index", f"--timeout={TIMEOUT:.0f}s")
    job = ns.get("job", "per-index")
    assert (job["status"]["completedIndexes"], job["status"]["failedIndexes"]) == ("0,2", "1")
    assert job["spec"]["backoffLimit"] == 2**31 - 1 and job["status"]["failed"] == 1
    assert conditions(job) == [
        ("FailureTarget", "True", "FailedIndexes"),
        ("Failed", "True", "FailedIndexes"),
    ]
    annotations = [p["metadata"]["annotations"] for p in ns.items("pods", "-l", "job-name=per-index")]
    assert sorted(a["batch.kubernetes.io/job-completion-index"] for a in annotations) == ["0", "1", "2"]
    assert {a["batch.kubernetes.io/job-index-failure-count"] for a in annotations} == {"0"}
    assert ("Warning", "FailedIndexes", "Job has failed indexes") in ns.events("per-index")


def test_orphaned_pods_lose_the_tracking_finalizer_and_keep_running(ns: Namespace) -> None:
    ns.kubectl("create", "-f", "-", stdin=job_yaml("keep", 'trap "exit 0" TERM; sleep 300 & wait'))
    pod = wait_until(
        lambda: ns.items("pods", "-l", "job-name=keep"), timeout=TIMEOUT, interval=0.3, what="the job's pod"
    )[0]["metadata"]["name"]
    assert ns.get("pod", pod)["metadata"]["finalizers"] == ["batch.kubernetes.io/job-tracking"]
    ns.kubectl("delete", "job", "keep", "--cascade=orphan")

    def released() -> dict | None:
        meta = ns.get("pod", pod)["metadata"]
        return meta if not meta.get("finalizers") and not meta.get("ownerReferences") else None

    meta = wait_until(released, timeout=TIMEOUT, interval=0.3, what="the orphaned pod to be released")
    assert "deletionTimestamp" not in meta and ns.items("jobs") == []


# A pod that, once deleted, keeps terminating until the test lets it go (`kubectl exec ... touch`).
HELD_ON_DELETE = 'trap "while [ ! -e /tmp/go ]; do sleep 0.2; done; exit 3" TERM; sleep 300 & wait'


def test_a_pod_deleted_while_running_counts_as_the_replacement_policy_says(ns: Namespace) -> None:
    """`isPodFailed`: with podReplacementPolicy TerminatingOrFailed (the default) a running pod that
    is deleted counts as failed at once and is replaced while it still terminates; with Failed it
    counts, and is replaced, only once it has terminated in the Failed phase."""
    ns.kubectl("create", "-f", "-", stdin=job_yaml("eager", HELD_ON_DELETE))
    ns.kubectl("create", "-f", "-", stdin=job_yaml("patient", HELD_ON_DELETE, podReplacementPolicy="Failed"))

    def running_pod(job: str) -> str:
        def running() -> str | None:
            pods = ns.items("pods", "-l", f"job-name={job}")
            if len(pods) == 1 and pods[0]["status"].get("phase") == "Running":
                return str(pods[0]["metadata"]["name"])
            return None

        return wait_until(running, timeout=TIMEOUT, interval=0.3, what=f"the pod of job {job} to run")

    first = {job: running_pod(job) for job in ("eager", "patient")}
    for pod in first.values():
        ns.kubectl("delete", "pod", pod, "--grace-period=300", "--wait=false")

    def status(job: str) -> dict:
        return ns.get("job", job)["status"]

    def pods_of(job: str) -> dict[str, dict]:
        return {p["metadata"]["name"]: p for p in ns.items("pods", "-l", f"job-name={job}")}

    # TerminatingOrFailed: failed at once, and a replacement runs next to the terminating pod.
    eager = wait_until(lambda: len(pods_of("eager")) == 2 and pods_of("eager"), timeout=TIMEOUT,
                       interval=0.3, what="a replacement next to the terminating pod")
    assert eager[first["eager"]]["metadata"].get("deletionTimestamp")
    assert eager[first["eager"]]["status"]["phase"] == "Running", "it is still terminating"
    assert status("eager")["failed"] == 1
    # Failed: the terminating pod is neither counted nor replaced yet.
    patient = wait_until(lambda: status("patient").get("terminating") == 1 and status("patient"),
                         timeout=TIMEOUT, interval=0.3, what="the Job to see its pod terminating")
    assert (patient.get("failed", 0), patient["active"]) == (0, 0)
    assert list(pods_of("patient")) == [first["patient"]]
    held = pods_of("patient")[first["patient"]]
    assert held["metadata"]["finalizers"] == ["batch.kubernetes.io/job-tracking"]
    # Let it finish: it ends Failed (exit 3), is counted, its finalizer removed, and replaced.
    ns.kubectl("exec", first["patient"], "--", "touch", "/tmp/go")
    wait_until(lambda: status("patient").get("failed") == 1, timeout=TIMEOUT, interval=0.3,
               what="the terminated pod to count as failed")
    replaced = wait_until(lambda: [n for n in pods_of("patient") if n != first["patient"]], timeout=TIMEOUT,
                          interval=0.3, what="the replacement once the pod failed")
    assert first["patient"] not in pods_of("patient"), "its finalizer is gone, so is the pod"
    assert len(replaced) == 1
    ns.kubectl("exec", first["eager"], "--", "touch", "/tmp/go")
    wait_until(lambda: first["eager"] not in pods_of("eager"), timeout=TIMEOUT, interval=0.3,
               what="the eager Job's old pod to go")
    assert status("eager")["failed"] == 1, "counted once, at its deletion"
