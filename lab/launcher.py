"""Starts and stops the processes of a local lab: the sandbox cluster and the dashboard server.

`manage.py demo`, the tests and the benchmarks share this module so that tests run exactly what
a user runs. Every child is started in its own session and is stopped (SIGTERM, then SIGKILL
after a grace period) when the lab stops, so no process is left behind.
"""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from sandbox.procutil import die_with_parent

BASE_DIR = Path(__file__).resolve().parent.parent


class LabError(RuntimeError):
    """A lab process could not be started or did not become ready in time."""


class LabInterrupted(Exception):
    """A stop was requested (Ctrl-C) while the lab was still starting."""


def free_port(host: str = "127.0.0.1") -> int:
    """Ask the kernel for a TCP port that is free right now on ``host``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def ensure_port_free(host: str, port: int, *, what: str) -> None:
    """Fail clearly when another program already listens where a lab process should."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            raise LabError(f"{host}:{port} is already in use, so {what} cannot listen there; "
                           f"stop the other program or choose another port") from None


def log_tail(log_file: Path | None, lines: int = 15) -> str:
    """The last lines of a child's log, to explain why it failed."""
    if log_file is None or not log_file.exists():
        return ""
    tail = log_file.read_text(errors="replace").splitlines()[-lines:]
    return "\n" + "\n".join(f"  | {line}" for line in tail)


class Child(Protocol):
    """What wait_for_port watches: a subprocess.Popen, or anything that polls like one."""

    @property
    def returncode(self) -> int | None:
        """The exit code once the child has exited."""

    def poll(self) -> int | None:
        """The exit code, or None while it runs."""


def wait_for_port(host: str, port: int, *, proc: Child, timeout: float, what: str,
                  lab: Lab | None = None) -> None:
    """Wait until ``host:port`` accepts connections, failing early if ``proc`` exits or the lab
    is asked to stop."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if lab is not None:
            lab.check_interrupted()
        if proc.poll() is not None:
            raise LabError(f"{what} exited with code {proc.returncode} before it was ready")
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise LabError(f"{what} did not listen on {host}:{port} within {timeout:.0f} s")


def stop_process(proc: subprocess.Popen, *, grace: float = 30.0) -> None:
    """Stop a child and everything in its process group: SIGTERM, then SIGKILL after ``grace``."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5)


@dataclass
class Lab:
    """The processes of one running lab, stopped together."""

    processes: list[subprocess.Popen] = field(default_factory=list)
    kubeconfig: Path | None = None
    api_port: int | None = None
    dashboard_url: str | None = None
    # Set from a signal handler: start-up steps notice it between polls and unwind cleanly
    # (raising from the handler itself could strike inside Popen and orphan a child).
    interrupted: bool = False

    def check_interrupted(self) -> None:
        """Raise LabInterrupted once a stop has been requested."""
        if self.interrupted:
            raise LabInterrupted

    def start_sandbox(self, *, state_dir: Path, api_port: int, nodes: int = 3, timeout: float = 60.0,
                      log_file: Path | None = None, proxy_mode: str = "random", simulated_nodes: int = 0,
                      simulated_delays: Mapping[str, float] | None = None) -> Path:
        """Start `python -m sandbox up` and return its kubeconfig once the API server listens.

        ``proxy_mode`` is how the Service proxy picks a pod per connection (`--proxy-mode`);
        ``simulated_nodes`` adds kwok-like nodes (`--simulated-nodes`) and ``simulated_delays``
        sets their phase delays by name (``pending``, ``creating``, ``ready``, ``grace``: the
        ``--simulated-<name>-delay`` / ``--simulated-grace`` flags)."""
        state_dir.mkdir(parents=True, exist_ok=True)
        kubeconfig = state_dir / "kubeconfig"
        ensure_port_free("127.0.0.1", api_port, what="the sandbox API server")
        cmd = [sys.executable, "-m", "sandbox", "up", "--state-dir", str(state_dir),
               "--api-port", str(api_port), "--nodes", str(nodes), "--proxy-mode", proxy_mode]
        if simulated_nodes:
            cmd += ["--simulated-nodes", str(simulated_nodes)]
        for name, value in (simulated_delays or {}).items():
            flag = "--simulated-grace" if name == "grace" else f"--simulated-{name}-delay"
            cmd += [flag, str(value)]
        proc = self._spawn(cmd, env={}, log_file=log_file)
        try:
            wait_for_port("127.0.0.1", api_port, proc=proc, timeout=timeout, what="the sandbox API server",
                          lab=self)
            deadline = time.monotonic() + timeout
            while not kubeconfig.exists():
                self.check_interrupted()
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise LabError("the sandbox did not write its kubeconfig")
                time.sleep(0.05)
        except LabError as exc:
            raise LabError(f"{exc}{log_tail(log_file)}") from None
        self.kubeconfig, self.api_port = kubeconfig, api_port
        return kubeconfig

    def start_dashboard(self, *, port: int, env: Mapping[str, str], timeout: float = 60.0,
                        log_file: Path | None = None) -> None:
        """Migrate the dashboard's small database, then serve it with daphne on 127.0.0.1:port."""
        ensure_port_free("127.0.0.1", port, what="the dashboard")
        full_env = {"DJANGO_SETTINGS_MODULE": "dashboard.settings", **env}
        migrate = subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
                                 cwd=BASE_DIR, env={**os.environ, **full_env}, capture_output=True, text=True)
        if migrate.returncode != 0:
            raise LabError(f"manage.py migrate failed:\n{migrate.stderr}")
        cmd = [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port),
               "dashboard.asgi:application"]
        proc = self._spawn(cmd, env=full_env, log_file=log_file)
        try:
            wait_for_port("127.0.0.1", port, proc=proc, timeout=timeout, what="the dashboard (daphne)",
                          lab=self)
        except LabError as exc:
            raise LabError(f"{exc}{log_tail(log_file)}") from None
        self.dashboard_url = f"http://127.0.0.1:{port}/"

    def _spawn(self, cmd: list[str], *, env: Mapping[str, str], log_file: Path | None) -> subprocess.Popen:
        """Start a child in its own process group so it can be stopped with everything it started;
        should this process be killed outright, the child gets SIGTERM and stops cleanly."""
        out = open(log_file, "ab") if log_file else None  # noqa: SIM115 - closed when the child exits
        proc = subprocess.Popen(cmd, cwd=BASE_DIR, env={**os.environ, **env}, stdout=out, stderr=out,
                                start_new_session=True,
                                preexec_fn=functools.partial(die_with_parent, signal.SIGTERM))
        self.processes.append(proc)
        return proc

    def stop(self) -> None:
        """Stop every child, newest first (the dashboard before the cluster it watches)."""
        for proc in reversed(self.processes):
            stop_process(proc)
        self.processes.clear()

    def first_exited(self) -> subprocess.Popen | None:
        """Return a child that has exited on its own, if any."""
        return next((p for p in self.processes if p.poll() is not None), None)
