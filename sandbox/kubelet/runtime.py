"""The container runtime: a container is a real OS process (the kubelet's CRI, minus the container).

A container process runs in its own session (so signals reach it and whatever it starts,
and nothing of the terminal's Ctrl-C reaches it directly), with ``PR_SET_PDEATHSIG`` =
SIGKILL so it dies with the node process even if that one is SIGKILLed: stopping the sandbox
can never leave a pod behind. Its stdout and stderr go to the container's log file, the
one ``kubectl logs`` reads (see `sandbox.apiserver.logs`).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from pathlib import Path

from sandbox import statedir
from sandbox.procutil import die_with_parent


def new_session_dying_with_parent() -> None:
    """preexec_fn of containers: a session of their own (no terminal Ctrl-C reaches them), and
    SIGKILL from the kernel when the kubelet's process dies."""
    os.setsid()
    os.umask(0o022)  # the sandbox itself runs with 077; a container gets the usual default
    die_with_parent(signal.SIGKILL)


class Container:
    """One running container process."""

    def __init__(self, proc: asyncio.subprocess.Process, log_path: Path) -> None:
        self.proc = proc
        self.pid = proc.pid
        self.log_path = log_path
        self.exit_code: int | None = None
        self.signal: int | None = None
        self._waiter = asyncio.get_running_loop().create_task(self._wait())

    async def _wait(self) -> int:
        code = await self.proc.wait()
        if code < 0:
            self.signal = -code
            code = 128 - code
        self.exit_code = code
        return code

    async def wait(self) -> int:
        """Wait for the process to exit; return the exit code as a shell reports it (137 for SIGKILL)."""
        return await asyncio.shield(self._waiter)

    @property
    def running(self) -> bool:
        """The process has not exited."""
        return not self._waiter.done()

    def kill(self, sig: int) -> None:
        """Signal the container's whole process group."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, sig)

    async def stop(self, grace: float) -> int:
        """SIGTERM, wait up to ``grace`` seconds, then SIGKILL; return the exit code."""
        if self.running:
            self.kill(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.wait(), timeout=max(grace, 0))
            except TimeoutError:
                self.kill(signal.SIGKILL)
        code = await self.wait()
        self.kill(signal.SIGKILL)
        return code


async def start_container(argv: list[str], *, env: dict[str, str], cwd: Path, log_path: Path) -> Container:
    """Start ``argv`` as a container process writing to ``log_path``."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with statedir.private_open(log_path, "ab") as out:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            env=env,
            cwd=str(cwd),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=out,
            stderr=out,
            preexec_fn=new_session_dying_with_parent,
        )
    return Container(proc, log_path)


async def run_exec(argv: list[str], *, env: dict[str, str], cwd: Path, timeout: float) -> tuple[int, str]:
    """Run a command "inside" a container (exec probes, preStop exec); return (exit code, output)."""
    proc = await asyncio.create_subprocess_exec(
        *argv,
        env=env,
        cwd=str(cwd),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        preexec_fn=new_session_dying_with_parent,
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout=timeout)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        await proc.wait()
        raise
    except asyncio.CancelledError:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        raise
    return proc.returncode or 0, out.decode(errors="replace")
