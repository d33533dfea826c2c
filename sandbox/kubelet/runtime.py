"""The container runtime: a container is a bubblewrap sandbox (see `sandbox.kubelet.isolation`).

`start_container` starts ``bwrap`` in a session of its own (so nothing of the terminal's
Ctrl-C reaches it) with ``PR_SET_PDEATHSIG`` = SIGKILL, and bwrap's ``--die-with-parent``
does the same for the container: stopping the sandbox, even with SIGKILL, can never leave a
pod behind. bwrap reports the container's PID 1 on an info pipe; signals go to that process
(SIGKILL to it ends every process of the container's PID namespace). The container's stdout
and stderr are pipes the kubelet copies into its log file (0600) as CRI records with a
timestamp per line (`sandbox/crilog.py`), the file ``kubectl logs`` reads. The exit code is the
container's as a shell reports it (137 after SIGKILL). The container ID is
``sandbox://<bwrap pid>``: that process and its children are the container.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
from collections.abc import Callable, Sequence
from pathlib import Path

from sandbox import crilog, statedir
from sandbox.kubelet.isolation import Identity, exec_argv
from sandbox.procutil import die_with_parent

INFO_TIMEOUT = 10.0
LOG_DRAIN_TIMEOUT = 2.0  # how long an exited container's last output may take to reach its log


def new_session_dying_with_parent() -> None:
    """preexec_fn of containers: a session of their own (no terminal Ctrl-C reaches them), and
    SIGKILL from the kernel when the kubelet's process dies."""
    os.setsid()
    os.umask(0o022)  # the sandbox itself runs with 077; a container gets the usual default
    die_with_parent(signal.SIGKILL)


class StartError(Exception):
    """The sandbox for a container could not be created (bwrap failed before the command ran)."""


class Container:
    """One running container."""

    def __init__(self, proc: asyncio.subprocess.Process, log_path: Path, *, init_pid: int,
                 identity: Identity, workdir: str, log_copiers: Sequence[asyncio.Task] = (),
                 log_fd: int = -1) -> None:
        self.proc = proc
        self.pid = proc.pid
        self.init_pid = init_pid
        self.identity = identity
        self.workdir = workdir
        self.log_path = log_path
        self.exit_code: int | None = None
        self.signal: int | None = None
        self._log_copiers = list(log_copiers)
        self._log_fd = log_fd
        self._waiter = asyncio.get_running_loop().create_task(self._wait())

    async def _wait(self) -> int:
        code = await self.proc.wait()
        # bwrap is gone (however it died): nothing of the container may outlive it.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(self.init_pid, signal.SIGKILL)
        await drain_logs(self._log_copiers, self._log_fd)
        if code < 0:
            code = 128 - code
        if code > 128 and code - 128 in (signal.SIGKILL, signal.SIGTERM, signal.SIGINT):
            self.signal = code - 128
        self.exit_code = code
        return code

    async def wait(self) -> int:
        """Wait for the container to exit; return the exit code as a shell reports it."""
        return await asyncio.shield(self._waiter)

    @property
    def running(self) -> bool:
        """The container has not exited."""
        return not self._waiter.done()

    def kill(self, sig: int) -> None:
        """Signal the container's PID 1 (SIGKILL ends every process in it)."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(self.init_pid, sig)
        if sig == signal.SIGKILL:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pid, signal.SIGKILL)

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

    async def exec(self, command: list[str], *, env: dict[str, str], timeout: float) -> tuple[int, str]:
        """Run ``command`` inside this container (exec probes, preStop exec); (exit code, output)."""
        argv = exec_argv(init_pid=self.init_pid, identity=self.identity, workdir=self.workdir,
                         command=command)
        return await run_exec(argv, env=env, timeout=timeout)


def _read_info(fd: int) -> dict:
    """bwrap's info JSON (blocking; run in a thread)."""
    data = b""
    while True:
        chunk = os.read(fd, 4096)
        if not chunk:
            break
        data += chunk
        with contextlib.suppress(ValueError):
            return json.loads(data)
    return {}


async def drain_logs(copiers: Sequence[asyncio.Task], fd: int) -> None:
    """Let the log copiers write the container's last output (bounded), then close its log."""
    if copiers:
        _, late = await asyncio.wait(copiers, timeout=LOG_DRAIN_TIMEOUT)
        for task in late:
            task.cancel()
    if fd >= 0:
        with contextlib.suppress(OSError):
            os.close(fd)


async def start_container(argv_for: Callable[[int], list[str]], *, env: dict[str, str], log_path: Path,
                          identity: Identity, workdir: str) -> Container:
    """Start a container: ``argv_for(info_fd)`` is its bubblewrap command line."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    read_fd, write_fd = os.pipe()
    with statedir.private_open(log_path, "ab") as log_file:
        log_fd = os.dup(log_file.fileno())  # O_APPEND, written unbuffered by the copiers
    outputs = [list(os.pipe()), list(os.pipe())]  # stdout, stderr: [read end, write end], -1 once handed on
    copiers: list[asyncio.Task] = []
    try:
        for _, end in outputs:
            if os.geteuid() == 0:
                # The container may reopen its stdout (/dev/stdout, as nginx does): it owns the
                # pipe it writes to.
                os.fchown(end, identity.uid, identity.gid)
        proc = await asyncio.create_subprocess_exec(
            *argv_for(write_fd),
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=outputs[0][1],
            stderr=outputs[1][1],
            pass_fds=(write_fd,),
            preexec_fn=new_session_dying_with_parent,
        )
        for ends, stream in zip(outputs, ("stdout", "stderr"), strict=True):
            os.close(ends[1])
            read_end, ends[:] = ends[0], [-1, -1]
            reader = await crilog.pipe_reader(read_end)
            copiers.append(asyncio.create_task(crilog.copy_stream(reader, stream, log_fd),
                                               name=f"log-{stream}-{log_path}"))
        os.close(write_fd)
        write_fd = -1
        try:
            info = await asyncio.wait_for(asyncio.to_thread(_read_info, read_fd), INFO_TIMEOUT)
        except TimeoutError:
            info = {}
    except BaseException:
        for task in copiers:
            task.cancel()
        os.close(log_fd)
        raise
    finally:
        if write_fd >= 0:
            os.close(write_fd)
        os.close(read_fd)
        for fd in (fd for ends in outputs for fd in ends if fd >= 0):  # a start that failed early
            os.close(fd)
    init_pid = int(info.get("child-pid") or 0)
    if not init_pid:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        await proc.wait()
        await drain_logs(copiers, log_fd)
        raise StartError(_last_line(log_path) or "bubblewrap did not start the container")
    return Container(proc, log_path, init_pid=init_pid, identity=identity, workdir=workdir,
                     log_copiers=copiers, log_fd=log_fd)


def _last_line(path: Path) -> str:
    """The content of the log's last record (why bwrap failed)."""
    with contextlib.suppress(OSError):
        for line in reversed(path.read_bytes().splitlines()):
            record = crilog.parse(line)
            text = (record.content if record else line).decode(errors="replace").strip()
            if text:
                return text
    return ""


async def run_exec(argv: list[str], *, env: dict[str, str], timeout: float) -> tuple[int, str]:
    """Run a command to completion; return (exit code, output)."""
    proc = await asyncio.create_subprocess_exec(
        *argv,
        env=env,
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
