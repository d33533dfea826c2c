"""Jobs without a cluster: defaults, the generated selector, 422 causes, immutable fields,
printJob's cells, and the controller's pure rules (back-off, wanted pods, completed indexes)."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta

import pytest

from sandbox.apiserver.kinds.job import STRATEGY as JOBS
from sandbox.apiserver.tables import table_for, table_row
from sandbox.apiserver.validation import Invalid
from sandbox.controllers.job import (
    BackoffRecord,
    backoff_delay,
    format_indexes,
    match_pod_failure_policy,
    match_success_policy,
    parse_indexes,
    want_active,
)
from tests.apiserver_units.conftest import official  # noqa: F401  (the official-client fixture)

NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
UID = "0b6c2f53-5d6a-4e2f-9d0e-0c0ffee00001"


def ago(seconds: float) -> str:
    return (NOW - timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


def job(**spec) -> dict:
    """A Job as the registry hands it to the strategy: named, with a uid, defaulted."""
    body = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "pi", "namespace": "default", "uid": UID, "creationTimestamp": ago(60)},
        "spec": {
            "template": {
                "spec": {"restartPolicy": "Never", "containers": [{"name": "pi", "image": "busybox"}]}
            },
            **spec,
        },
    }
    return JOBS.default_object(body)


def causes(obj: dict, old: dict | None = None) -> list[tuple[str, str]]:
    with pytest.raises(Invalid) as info:
        JOBS.validate_object(obj, old=old)
    return [(c["field"], c["message"]) for c in info.value.causes]


def test_defaults_and_generated_selector_are_kube_apiservers(official) -> None:  # noqa: F811
    obj = job()
    spec = obj["spec"]
    assert {
        k: spec[k]
        for k in (
            "completions",
            "parallelism",
            "backoffLimit",
            "completionMode",
            "suspend",
            "podReplacementPolicy",
            "manualSelector",
        )
    } == {
        "completions": 1,
        "parallelism": 1,
        "backoffLimit": 6,
        "completionMode": "NonIndexed",
        "suspend": False,
        "podReplacementPolicy": "TerminatingOrFailed",
        "manualSelector": False,
    }
    labels = {
        "batch.kubernetes.io/controller-uid": UID,
        "batch.kubernetes.io/job-name": "pi",
        "controller-uid": UID,
        "job-name": "pi",
    }
    assert spec["selector"] == {"matchLabels": {"batch.kubernetes.io/controller-uid": UID}}
    assert spec["template"]["metadata"]["labels"] == labels
    assert obj["metadata"]["labels"] == labels
    JOBS.validate_object(obj)
    official("jobs", obj)
    work_queue = job(parallelism=3)["spec"]
    assert "completions" not in work_queue and work_queue["parallelism"] == 3
    assert job(completions=5)["spec"]["parallelism"] == 1


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (
            {"template": {"spec": {"containers": [{"name": "c", "image": "busybox"}]}}},
            [("spec.template.spec.restartPolicy", 'Required value: valid values: "OnFailure", "Never"')],
        ),
        (
            {"parallelism": -1, "backoffLimit": -2},
            [
                ("spec.parallelism", "Invalid value: -1: must be greater than or equal to 0"),
                ("spec.backoffLimit", "Invalid value: -2: must be greater than or equal to 0"),
            ],
        ),
        (
            {"completionMode": "Indexed", "completions": None, "parallelism": 2},
            [("spec.completions", "Required value: when completion mode is Indexed")],
        ),
        (
            {"completionMode": "Sometimes"},
            [
                (
                    "spec.completionMode",
                    'Unsupported value: "Sometimes": supported values: "Indexed", "NonIndexed"',
                )
            ],
        ),
        (
            {"backoffLimitPerIndex": 1},
            [("spec.backoffLimitPerIndex", "Invalid value: 1: requires indexed completion mode")],
        ),
        (
            {"podReplacementPolicy": "Never"},
            [
                (
                    "spec.podReplacementPolicy",
                    'Unsupported value: "Never": supported values: "Failed", "TerminatingOrFailed"',
                )
            ],
        ),
        (
            {"selector": {"matchLabels": {"app": "x"}}},
            [
                (
                    "spec.selector",
                    'Invalid value: {"matchLabels":{"app":"x","batch.kubernetes.io/controller-uid":"'
                    + UID
                    + '"}}: `selector` not auto-generated',
                ),
                (
                    "spec.template.metadata.labels",
                    'Invalid value: {"batch.kubernetes.io/controller-uid":"'
                    + UID
                    + '","batch.kubernetes.io/job-name":"pi","controller-uid":"'
                    + UID
                    + '","job-name":"pi"}: `selector` does not match template `labels`',
                ),
            ],
        ),
    ],
)
def test_bad_jobs_are_invalid_with_the_real_causes(spec: dict, expected: list) -> None:
    job_spec: dict = {
        "template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}},
        **spec,
    }
    body = {
        "metadata": {"name": "pi", "namespace": "default", "uid": UID},
        "spec": {k: v for k, v in job_spec.items() if v is not None},
    }
    obj = JOBS.default_object(body)
    if "completions" in spec and spec["completions"] is None:
        obj["spec"].pop("completions", None)
    assert causes(obj) == expected


def test_manual_selector_must_match_the_template() -> None:
    obj = job(manualSelector=True, selector={"matchLabels": {"app": "x"}})
    assert "labels" not in obj["spec"]["template"]["metadata"]
    assert causes(obj) == [
        ("spec.template.metadata.labels", "Invalid value: null: `selector` does not match template `labels`")
    ]
    obj["spec"]["template"]["metadata"]["labels"] = {"app": "x"}
    JOBS.validate_object(obj)


def test_indexed_name_must_leave_room_for_the_hostname() -> None:
    obj = job(completionMode="Indexed", completions=100)
    obj["metadata"]["name"] = "x" * 62
    assert (
        "metadata.name",
        f'Invalid value: "{"x" * 62}": will not able to create pod with invalid DNS label: {"x" * 62}-99',
    ) in causes(obj)


def test_selector_completions_and_template_are_immutable() -> None:
    old = job(completions=2)
    new = copy.deepcopy(old)
    new["spec"]["completions"] = 3
    new["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx"
    fields = [field for field, _ in causes(new, old)]
    assert fields == ["spec.completions", "spec.template"]
    assert causes(new, old)[0][1] == "Invalid value: 3: field is immutable"
    changed = copy.deepcopy(old)
    changed["spec"]["parallelism"] = 2
    changed["spec"]["suspend"] = True
    changed["spec"]["activeDeadlineSeconds"] = 30
    JOBS.validate_object(changed, old=old)


def test_a_suspended_job_that_never_started_may_change_its_scheduling_directives() -> None:
    old = job(suspend=True)
    new = copy.deepcopy(old)
    new["spec"]["template"]["spec"]["nodeSelector"] = {"disk": "ssd"}
    new["spec"]["template"]["metadata"]["annotations"] = {"a": "b"}
    JOBS.validate_object(new, old=old)
    old["status"] = {"startTime": ago(5)}
    assert [f for f, _ in causes(new, old)] == ["spec.template"]


def status(**fields) -> dict:
    return fields


@pytest.mark.parametrize(
    ("spec", "st", "deleting", "expected"),
    [
        (
            {},
            status(
                conditions=[{"type": "Complete", "status": "True"}],
                succeeded=1,
                startTime=ago(65),
                completionTime=ago(60),
            ),
            False,
            ["Complete", "1/1", "5s"],
        ),
        (
            {},
            status(conditions=[{"type": "Failed", "status": "True"}], failed=7, startTime=ago(300)),
            False,
            ["Failed", "0/1", "5m"],
        ),
        ({"completions": 3}, status(startTime=ago(30), succeeded=1), True, ["Terminating", "1/3", "30s"]),
        (
            {"suspend": True},
            status(conditions=[{"type": "Suspended", "status": "True"}]),
            False,
            ["Suspended", "0/1", ""],
        ),
        (
            {},
            status(conditions=[{"type": "FailureTarget", "status": "True"}], startTime=ago(10)),
            False,
            ["FailureTarget", "0/1", "10s"],
        ),
        (
            {"completions": 2},
            status(
                conditions=[{"type": "SuccessCriteriaMet", "status": "True"}], succeeded=2, startTime=ago(10)
            ),
            False,
            ["SuccessCriteriaMet", "2/2", "10s"],
        ),
        ({"parallelism": 4}, status(startTime=ago(10), succeeded=0), False, ["Running", "0/1 of 4", "10s"]),
        (
            {"completions": 3, "completionMode": "Indexed"},
            status(conditions=[{"type": "Suspended", "status": "False"}], startTime=ago(1)),
            False,
            ["Running", "0/3", "1s"],
        ),
    ],
)
def test_print_job_status_completions_and_duration(
    spec: dict, st: dict, deleting: bool, expected: list
) -> None:
    obj = job(**spec)
    obj["status"] = st
    if deleting:
        obj["metadata"]["deletionTimestamp"] = ago(1)
    row = table_row("jobs", obj, now=NOW)["cells"]
    table = table_for("jobs", [obj])
    assert row[1:4] == expected and row[4] == "60s"
    assert row[5:] == ["pi", "busybox", f"batch.kubernetes.io/controller-uid={UID}"]
    assert [c["name"] for c in table["columnDefinitions"]] == [
        "Name",
        "Status",
        "Completions",
        "Duration",
        "Age",
        "Containers",
        "Images",
        "Selector",
    ]


@pytest.mark.parametrize(
    ("failures", "delay"), [(0, 0.0), (1, 10.0), (2, 20.0), (3, 40.0), (6, 320.0), (7, 600.0), (40, 600.0)]
)
def test_pod_failure_backoff_doubles_from_ten_seconds_to_ten_minutes(failures: int, delay: float) -> None:
    assert backoff_delay(failures) == delay


def test_backoff_record_counts_down_from_the_last_failure() -> None:
    record = BackoffRecord(failures=2, last_failure=1000.0)
    assert record.remaining(1005.0) == 15.0
    assert record.remaining(1030.0) == 0.0
    assert BackoffRecord().remaining(1000.0) == 0.0


@pytest.mark.parametrize(
    ("spec", "succeeded", "active", "want"),
    [
        ({"completions": 5, "parallelism": 2}, 0, 0, 2),
        ({"completions": 5, "parallelism": 2}, 4, 1, 1),
        ({"completions": 5, "parallelism": 2}, 5, 0, 0),
        ({"parallelism": 3}, 0, 1, 3),
        ({"parallelism": 3}, 1, 2, 2),
        ({"completions": 1, "parallelism": 0}, 0, 0, 0),
    ],
)
def test_wanted_active_pods(spec: dict, succeeded: int, active: int, want: int) -> None:
    assert want_active(spec, succeeded, active) == want


@pytest.mark.parametrize(
    ("indexes", "text"),
    [(set(), ""), ({0}, "0"), ({0, 1}, "0,1"), ({0, 1, 2}, "0-2"), ({1, 3, 4, 5, 7}, "1,3-5,7")],
)
def test_completed_indexes_round_trip(indexes: set, text: str) -> None:
    assert format_indexes(indexes) == text
    assert parse_indexes(text) == indexes


POLICY = {
    "rules": [
        {"action": "FailJob", "onExitCodes": {"containerName": "main", "operator": "In", "values": [42]}},
        {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]},
        {"action": "Count", "onExitCodes": {"operator": "NotIn", "values": [1, 2]}},
    ]
}


def failed_pod(code: int, *, container: str = "main", conditions: list | None = None) -> dict:
    return {
        "metadata": {"name": "p", "namespace": "ns"},
        "status": {
            "phase": "Failed",
            "conditions": conditions or [],
            "containerStatuses": [{"name": container, "state": {"terminated": {"exitCode": code}}}],
        },
    }


@pytest.mark.parametrize(
    ("pod", "expected"),
    [
        (
            failed_pod(42),
            (
                "FailJob",
                "Container main for pod ns/p failed with exit code 42 matching FailJob rule at index 0",
            ),
        ),
        (failed_pod(42, container="side"), ("Count", "")),
        (failed_pod(1, conditions=[{"type": "DisruptionTarget", "status": "True"}]), ("Ignore", "")),
        (failed_pod(1), ("Count", "")),
        (failed_pod(7), ("Count", "")),
    ],
)
def test_pod_failure_policy_rules_match_in_order(pod: dict, expected: tuple) -> None:
    assert match_pod_failure_policy(POLICY, pod) == expected
    assert match_pod_failure_policy(None, pod) == ("Count", "")


def test_pod_failure_policy_is_validated() -> None:
    policy = {
        "rules": [
            {
                "action": "FailJob",
                "onExitCodes": {"containerName": "nope", "operator": "In", "values": [0, 3, 3]},
            },
            {"action": "Retry", "onPodConditions": [{"type": "DisruptionTarget"}]},
            {"action": "Ignore"},
        ]
    }
    obj = job(podFailurePolicy=policy)
    assert obj["spec"]["podReplacementPolicy"] == "Failed"
    assert obj["spec"]["podFailurePolicy"]["rules"][1]["onPodConditions"][0]["status"] == "True"
    rules = "spec.podFailurePolicy.rules"
    assert causes(obj) == [
        (
            f"{rules}[0].onExitCodes.containerName",
            'Invalid value: "nope": must be one of the container or initContainer names in the pod template',
        ),
        (f"{rules}[0].onExitCodes.values[0]", "Invalid value: 0: must not be 0 for the In operator"),
        (f"{rules}[0].onExitCodes.values[2]", "Duplicate value: 3"),
        (
            f"{rules}[1].action",
            'Unsupported value: "Retry": supported values: "Count", "FailIndex", "FailJob", "Ignore"',
        ),
        (f"{rules}[2]", "Invalid value: specifying one of OnExitCodes and OnPodConditions is required"),
    ]


@pytest.mark.parametrize(
    ("rules", "succeeded", "expected"),
    [
        ([{"succeededIndexes": "0,2-3"}], {0, 2}, None),
        ([{"succeededIndexes": "0,2-3"}], {0, 2, 3}, "Matched rules at index 0"),
        ([{"succeededCount": 2}], {4, 7}, "Matched rules at index 0"),
        ([{"succeededIndexes": "0-4", "succeededCount": 2}], {4, 7}, None),
        (
            [{"succeededIndexes": "9"}, {"succeededIndexes": "0-4", "succeededCount": 2}],
            {1, 4},
            "Matched rules at index 1",
        ),
    ],
)
def test_success_policy_rules(rules: list, succeeded: set, expected: str | None) -> None:
    assert match_success_policy({"rules": rules}, succeeded) == expected


def test_success_policy_is_validated() -> None:
    obj = job(
        completionMode="Indexed",
        completions=5,
        parallelism=5,
        successPolicy={
            "rules": [
                {},
                {"succeededIndexes": "3-1"},
                {"succeededIndexes": "0-1", "succeededCount": 3},
                {"succeededCount": 6},
            ]
        },
    )
    rules = "spec.successPolicy.rules"
    assert causes(obj) == [
        (
            f"{rules}[0]",
            "Required value: at least one of succeededCount or succeededIndexes must be specified",
        ),
        (
            f"{rules}[1].succeededIndexes",
            'Invalid value: "3-1": error parsing succeededIndexes: the fist index must '
            "be less than or equal to the last index: 3-1",
        ),
        (
            f"{rules}[2].succeededCount",
            "Invalid value: 3: must be smaller or equal to 2 (the number of indexes in the "
            "specified succeededIndexes field)",
        ),
        (
            f"{rules}[3].succeededCount",
            "Invalid value: 6: must be less than or equal to 5 (the number of specified completions)",
        ),
    ]


def test_per_index_backoff_holds_back_only_the_failed_index() -> None:
    import asyncio

    from sandbox.client import InformerFactory
    from sandbox.controllers.job import JobController

    def failed(index: int, count: int, finished: float) -> dict:
        stamp = datetime.fromtimestamp(finished, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return {
            "metadata": {
                "name": f"p{index}",
                "annotations": {
                    "batch.kubernetes.io/job-completion-index": str(index),
                    "batch.kubernetes.io/job-index-failure-count": str(count),
                },
            },
            "status": {
                "phase": "Failed",
                "containerStatuses": [
                    {"name": "c", "state": {"terminated": {"exitCode": 1, "finishedAt": stamp}}}
                ],
            },
        }

    async def ready(pods: list, now: float) -> tuple[list, dict]:
        controller = JobController(None, InformerFactory(None))  # type: ignore[arg-type]  # no API needed
        failures: dict[int, int] = {}
        return controller._ready_indexes("ns/j", [1, 2, 3], pods, failures, now), failures

    now = 1_000_000.0
    assert asyncio.run(ready([failed(1, 0, now - 5)], now)) == ([2, 3], {1: 1})  # 10 s back-off: 5 s left
    assert asyncio.run(ready([failed(1, 0, now - 11)], now)) == ([1, 2, 3], {1: 1})
    assert asyncio.run(ready([failed(1, 0, now - 30), failed(3, 1, now - 15)], now)) == ([1, 2], {1: 1, 3: 2})
