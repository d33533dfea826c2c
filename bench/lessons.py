"""Benchmark of the lessons rail: how long each of the ten lessons takes when a script drives it.

Run: ``.venv/bin/python bench/lessons.py [--only ID ...]``.

A lab like `make demo` (sandbox + dashboard, able to load images into the sandbox's node) is
started; then, for each lesson in order, the script logs in, starts the lesson, answers its
question and presses its buttons over the same HTTP endpoints the page uses, waiting between
steps for what a learner would wait for (a check passing, the pods settling). A lesson's time
runs from its start to the moment every check has passed (read from the dashboard's database,
where the engine writes each check as it passes); the sample app is then reset, and the reset's
time (until 3 pods are ready again) is printed separately. The target is all ten under
10 minutes of wall time, so that a learner's time goes to reading, not waiting.

Nothing asserts; it prints figures. The machine is shared: run twice, keep the better run.
"""

from __future__ import annotations

import argparse
import functools
import http.cookiejar
import json
import secrets
import sqlite3
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from lab.launcher import Lab, free_port  # noqa: E402

PY = sys.executable
TIMEOUT = 180.0


class Learner:
    """A logged-in browser session without the browser: cookies, CSRF, the lessons' endpoints."""

    def __init__(self, url: str, token: str, db: Path, kubeconfig: Path) -> None:
        self.url = url
        self.db = db
        self.kubeconfig = kubeconfig
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))
        self.opener.open(f"{url}?token={token}", timeout=60).read()
        self.csrf = next(c.value or "" for c in self.jar if c.name == "csrftoken")
        from kubernetes import client, config

        self.apps = client.AppsV1Api(config.new_client_from_config(config_file=str(kubeconfig)))

    def post(self, path: str, **fields: str | int) -> dict[str, object]:
        """POST a form to the dashboard, as htmx does."""
        body = urllib.parse.urlencode({k: str(v) for k, v in fields.items()}).encode()
        request = urllib.request.Request(
            self.url + path,
            data=body,
            method="POST",
            headers={
                "X-CSRFToken": self.csrf,
                "Content-Type": "application/x-www-form-urlencoded",
                "Referer": self.url,
            },
        )
        with self.opener.open(request, timeout=60) as answer:
            return json.loads(answer.read())

    def press(self, lesson: str, index: int, **extra: str) -> None:
        """One of the lesson's buttons (by its position). A 409 (no pod in the state the button
        needs yet, the previous run still ending) is pressed again, as a learner would."""
        deadline = time.monotonic() + 30
        while True:
            try:
                self.post("lessons/action", lesson=lesson, index=index, **extra)
                return
            except urllib.error.HTTPError as exc:
                if exc.code != 409 or time.monotonic() > deadline:
                    raise SystemExit(
                        f"{lesson} button {index}: {exc.code} {exc.read().decode()[:200]}"
                    ) from exc
                time.sleep(0.5)

    def progress(self, lesson: str) -> tuple[str, dict[str, dict[str, object]]]:
        """The lesson's state and checks as the engine wrote them."""
        with sqlite3.connect(self.db) as db:
            row = db.execute(
                "SELECT state, checks FROM lessons_lessonprogress WHERE lesson = ?", (lesson,)
            ).fetchone()
        return (row[0], json.loads(row[1])) if row else ("pending", {})

    def until(self, what: str, predicate: Callable[[], bool]) -> None:
        """Poll (this is a script, not the page) until ``predicate`` holds."""
        deadline = time.monotonic() + TIMEOUT
        while not predicate():
            if time.monotonic() > deadline:
                raise SystemExit(f"timed out waiting for {what}")
            time.sleep(0.1)

    def passed(self, lesson: str, check: str) -> None:
        """Until a check has passed."""
        self.until(
            f"{lesson}/{check}", lambda: self.progress(lesson)[1].get(check, {}).get("state") == "passed"
        )

    def ready(self, replicas: int) -> None:
        """Until the Deployment has exactly ``replicas`` pods, all ready and up to date."""

        def settled() -> bool:
            status = self.apps.read_namespaced_deployment("backend", "default").status
            return (
                (status.ready_replicas or 0) == replicas
                and (status.replicas or 0) == replicas
                and (status.updated_replicas or 0) == replicas
            )

        self.until(f"{replicas} ready replicas", settled)


def is_done(learner: Learner, lesson: str) -> bool:
    """Whether every check of the lesson has passed."""
    return learner.progress(lesson)[0] == "done"


def lesson_yaml(learner: Learner, replicas: int) -> str:
    """The declarative lesson's editor, with replicas changed."""
    with learner.opener.open(learner.url + "lessons/deployment.yaml", timeout=30) as answer:
        text = answer.read().decode()
    return text.replace("replicas: 3", f"replicas: {replicas}", 1)


# Each lesson: the answer to its question, then steps — ("press", button index), ("passed", check),
# ("ready", replicas) or ("apply", replicas: the declarative lesson's YAML edited and applied).
Step = tuple[str, int | str]
SCRIPTS: dict[str, tuple[int, list[Step]]] = {
    "disposable": (1, [("press", 0), ("passed", "service-answered")]),
    "replicaset": (
        2,
        [
            ("press", 0),
            ("passed", "scale-up"),
            ("press", 1),
            ("passed", "scale-down"),
            ("ready", 3),
            ("press", 2),
            ("passed", "two-killed"),
        ],
    ),
    "labels": (1, [("press", 0), ("press", 1), ("passed", "orphan-runs"), ("passed", "frontend-no-traffic")]),
    "readiness": (
        0,
        [
            ("press", 0),
            ("press", 1),
            ("ready", 4),
            ("press", 2),
            ("passed", "unready-left"),
            ("press", 3),
            ("passed", "rejoined"),
            ("passed", "starting-no-traffic"),
        ],
    ),
    "keepalive": (
        1,
        [
            ("press", 0),
            ("press", 1),
            ("passed", "scaleup-keepalive"),
            ("press", 2),
            ("passed", "newconn-spread"),
        ],
    ),
    "scaling": (2, [("press", 0), ("ready", 1), ("press", 1), ("press", 2), ("passed", "nothing-else")]),
    "declarative": (1, [("apply", 4), ("ready", 4), ("press", 1), ("passed", "delete-restored")]),
    "debugging": (
        0,
        [
            ("press", 0),
            ("passed", "not-ready-endpoint"),
            ("passed", "probe-event"),
            ("press", 2),
            ("passed", "rolled-back"),
        ],
    ),
    "rolling": (2, [("press", 0), ("press", 1), ("passed", "both-versions")]),
    "image": (0, [("press", 0), ("passed", "old-serving"), ("press", 1), ("passed", "loaded-started")]),
}


def drive(learner: Learner, lesson: str, steps: list[Step]) -> None:
    """Carry out a lesson's steps."""
    for kind, value in steps:
        if kind == "press":
            learner.press(lesson, int(value))
        elif kind == "passed":
            learner.passed(lesson, str(value))
        elif kind == "ready":
            learner.ready(int(value))
        elif kind == "apply":
            learner.press(lesson, 0, yaml=lesson_yaml(learner, int(value)))


ORDER = (
    "disposable",
    "replicaset",
    "labels",
    "readiness",
    "keepalive",
    "scaling",
    "declarative",
    "debugging",
    "rolling",
    "image",
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--only", nargs="*", choices=ORDER, help="run only these lessons (in the usual order)"
    )
    args = parser.parse_args()
    chosen = [lesson for lesson in ORDER if not args.only or lesson in args.only]
    with tempfile.TemporaryDirectory(prefix="lbdemo-bench-lessons-") as tmp:
        state = Path(tmp) / "state"
        lab = Lab()
        try:
            started = time.monotonic()
            kubeconfig = lab.start_sandbox(
                state_dir=state, api_port=free_port(), log_file=Path(tmp) / "sandbox.log"
            )
            token, db = secrets.token_urlsafe(16), Path(tmp) / "dashboard.sqlite3"
            lab.start_dashboard(
                port=free_port(),
                log_file=Path(tmp) / "dashboard.log",
                env={
                    "KUBECONFIG": str(kubeconfig),
                    "LBDEMO_TOKEN": token,
                    "LBDEMO_DB_PATH": str(db),
                    "LBDEMO_IMAGE_LOAD_COMMAND": f"{PY} -m sandbox image load {{image}} --state-dir {state}",
                },
            )
            learner = Learner(lab.dashboard_url or "", token, db, kubeconfig)
            learner.ready(3)
            print(f"lab up in {time.monotonic() - started:.1f} s")
            total = resets = 0.0
            print(f"{'lesson':<12} {'done in':>8}  {'reset':>6}  checks")
            for lesson in chosen:
                answer, steps = SCRIPTS[lesson]
                t0 = time.monotonic()
                learner.post("lessons/start", lesson=lesson)
                learner.post("lessons/answer", lesson=lesson, choice=answer)
                drive(learner, lesson, steps)
                learner.until(f"{lesson} done", functools.partial(is_done, learner, lesson))
                took = time.monotonic() - t0
                t1 = time.monotonic()
                learner.post("lessons/reset")
                learner.ready(3)
                reset = time.monotonic() - t1
                total, resets = total + took, resets + reset
                checks = learner.progress(lesson)[1]
                print(
                    f"{lesson:<12} {took:7.1f}s  {reset:5.1f}s  "
                    + "; ".join(f"{cid}: {c['figure']}" for cid, c in checks.items()),
                    flush=True,
                )
            print(
                f"all {len(chosen)} lessons: {total:.1f} s driving + {resets:.1f} s of resets "
                f"= {(total + resets) / 60:.1f} min (target: all ten under 10 min)"
            )
        finally:
            lab.stop()


if __name__ == "__main__":
    main()
