"""Stopping a live sandbox is a graceful node shutdown: the kubelets start, pull and restart
nothing once it begins, stop every container through its preStop hook and grace period, and
record the final state, so a restart shows exactly one restart per container."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest

from tests.conftest import Sandbox
from tests.sandbox.conftest import Kube, wait_until

pytestmark = pytest.mark.sandbox

STARTS = {"Pulling", "Pulled", "Created", "Started", "BackOff"}


def _events(kube: Kube) -> list[dict[str, Any]]:
    return kube.get("events")["items"]


def _recorded_ns(event: dict[str, Any]) -> int | None:
    """When the recorder created an Event, from its name (``<object>.<nanoseconds in hex>``)."""
    try:
        return int(event["metadata"]["name"].rsplit(".", 1)[1], 16)
    except (IndexError, ValueError):
        return None


def _containers(kube: Kube) -> dict[str, dict[str, Any]]:
    """Container status by pod name, for the backend pods and the frontend pod."""
    return {
        p["metadata"]["name"]: p["status"]["containerStatuses"][0]
        for p in kube.pods("app in (backend,frontend)")
        if p["status"].get("containerStatuses")
    }


def test_stop_starts_nothing_and_drains_every_container(
    private_kube: Kube, sandbox_factory: Callable[..., Sandbox]
) -> None:
    """SIGTERM to `sandbox up`: no Pulled/Created/Started during the stop, a Killing event per
    container, backends drained to a clean exit (not SIGKILLed), one restart each afterwards."""
    kube = private_kube

    def all_running() -> bool:
        statuses = _containers(kube)
        return len(statuses) == 4 and all("running" in s["state"] for s in statuses.values())

    wait_until(
        all_running,
        timeout=60,
        what="the backend and frontend containers running",
    )
    before = _containers(kube)
    counts = {e["metadata"]["name"]: e.get("count", 1) for e in _events(kube)}
    began = time.time_ns()
    kube.box.stop()
    ended = time.time_ns()
    log = (kube.box.state_dir.parent / f"{kube.box.state_dir.name}.log").read_text()
    assert "did not stop within" not in log

    again = Kube(sandbox_factory(state_dir=kube.box.state_dir))
    during = [
        e
        for e in _events(again)
        if (e["metadata"]["name"] in counts and e.get("count", 1) > counts[e["metadata"]["name"]])
        or (e["metadata"]["name"] not in counts and began <= (_recorded_ns(e) or 0) <= ended)
    ]
    started = [
        f"{e['involvedObject']['name']}: {e['reason']} {e['message']}"
        for e in during
        if e["reason"] in STARTS
    ]
    assert not started, f"containers were (re)started while the sandbox stopped: {started}"
    killed = {e["involvedObject"]["name"] for e in during if e["reason"] == "Killing"}
    assert killed == set(before), f"no Killing event for {set(before) - killed}"

    def restarted_once() -> dict[str, dict[str, Any]]:
        now = _containers(again)
        done = set(now) == set(before) and all("running" in s["state"] for s in now.values())
        return now if done else {}

    after = wait_until(restarted_once, timeout=90, what="every container running again")
    for name, status in after.items():
        assert status["restartCount"] == before[name]["restartCount"] + 1, json.dumps(status)
        last = status["lastState"]["terminated"]
        assert last["reason"] != "Unknown", f"{name} was not stopped cleanly: {last}"
        assert last["startedAt"] == before[name]["state"]["running"]["startedAt"], (
            f"{name}: the container that ended is not the one that ran before the stop: {last}"
        )
        if name != "frontend":
            # preStop 2 s + DRAIN_SECONDS 5 fit in the grace period: the backend exits 0 by itself.
            assert last["exitCode"] == 0 and "signal" not in last, f"{name} did not drain: {last}"
