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
import http.cookiejar
import json
import secrets
import sqlite3
import sys
import tempfile
import time
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
        self.csrf = next(c.value for c in self.jar if c.name == "csrftoken")
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
        """One of the lesson's buttons (by its position)."""
        self.post("lessons/action", lesson=lesson, index=index, **extra)

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


def lesson_yaml(learner: Learner, replicas: int) -> str:
    """The declarative lesson's editor, with replicas changed."""
    with learner.opener.open(learner.url + "lessons/deployment.yaml", timeout=30) as answer:
        text = answer.read().decode()
    return text.replace("replicas: 3", f"replicas: {replicas}", 1)


SCRIPTS: dict[str, tuple[int, Callable[[Learner], None]]] = {
    "disposable": (1, lambda x: (x.press("disposable", 0), x.passed("disposable", "service-answered"))),
    "replicaset": (
        2,
        lambda x: (
            x.press("replicaset", 0),
            x.passed("replicaset", "scale-up"),
            x.press("replicaset", 1),
            x.passed("replicaset", "scale-down"),
            x.ready(3),
            x.press("replicaset", 2),
            x.passed("replicaset", "two-killed"),
        ),
    ),
    "labels": (
        1,
        lambda x: (
            x.press("labels", 0),
            x.press("labels", 1),
            x.passed("labels", "orphan-runs"),
            x.passed("labels", "frontend-no-traffic"),
        ),
    ),
    "readiness": (
        0,
        lambda x: (
            x.press("readiness", 0),
            x.press("readiness", 1),
            x.ready(4),
            x.press("readiness", 2),
            x.passed("readiness", "unready-left"),
            x.press("readiness", 3),
            x.passed("readiness", "rejoined"),
            x.passed("readiness", "starting-no-traffic"),
        ),
    ),
    "keepalive": (
        1,
        lambda x: (
            x.press("keepalive", 0),
            x.press("keepalive", 1),
            x.passed("keepalive", "scaleup-keepalive"),
            x.press("keepalive", 2),
            x.passed("keepalive", "newconn-spread"),
        ),
    ),
    "scaling": (
        2,
        lambda x: (
            x.press("scaling", 0),
            x.ready(1),
            x.press("scaling", 1),
            x.press("scaling", 2),
            x.passed("scaling", "nothing-else"),
        ),
    ),
    "declarative": (
        1,
        lambda x: (
            x.press("declarative", 0, yaml=lesson_yaml(x, 4)),
            x.ready(4),
            x.press("declarative", 1),
            x.passed("declarative", "delete-restored"),
        ),
    ),
    "debugging": (
        0,
        lambda x: (
            x.press("debugging", 0),
            x.passed("debugging", "not-ready-endpoint"),
            x.passed("debugging", "probe-event"),
            x.press("debugging", 2),
            x.passed("debugging", "rolled-back"),
        ),
    ),
    "rolling": (
        2,
        lambda x: (x.press("rolling", 0), x.press("rolling", 1), x.passed("rolling", "both-versions")),
    ),
    "image": (
        0,
        lambda x: (
            x.press("image", 0),
            x.passed("image", "old-serving"),
            x.press("image", 1),
            x.passed("image", "loaded-started"),
        ),
    ),
}
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
                answer, script = SCRIPTS[lesson]
                t0 = time.monotonic()
                learner.post("lessons/start", lesson=lesson)
                learner.post("lessons/answer", lesson=lesson, choice=answer)
                script(learner)
                learner.until(f"{lesson} done", lambda lesson=lesson: learner.progress(lesson)[0] == "done")
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
