"""`pods/exec` and `pods/attach` over the WebSocket channel protocol kubectl 1.37 speaks, and
over the SPDY streams of the plain `Upgrade: SPDY/3.1` older kubectl sends (`SpdyChannels`).

kubectl opens `GET /api/v1/namespaces/NS/pods/NAME/exec?command=..&container=..&stdin=true
&stdout=true&stderr=true&tty=true` as a WebSocket with subprotocol `v5.channel.k8s.io` (or
`v4.channel.k8s.io`). Every message is binary, its first byte the channel: 0 stdin (client →
server), 1 stdout, 2 stderr, 3 error (one `Status` when the command ends: Success, or Failure
with reason NonZeroExitCode and an `ExitCode` cause — kubectl prints `command terminated with
exit code N` and exits with N), 4 resize (`{"Width":W,"Height":H}` for a TTY), and in v5 255
close (`[255, 0]`: stdin reached its end). As the kubelet's streaming server does, an empty
message on the lowest writable channel tells the client the streams are open.

Who executes: the API server itself, not a kubelet (kube-apiserver would proxy the upgrade to
the node's kubelet, which asks the runtime). The sandbox's kubelets and API server are
processes of one machine and one user, and a container's processes are found from its status
alone: `containerID` is `sandbox://<bubblewrap pid>` and the container's PID 1 is bubblewrap's
child. The command runs exactly as the kubelet's exec probes run theirs
(`sandbox.kubelet.isolation.exec_argv`): `nsenter` into the container's mount, UTS, IPC and
PID namespaces and root, in its working directory (the container's `workingDir`, else the
image's), as its user and capabilities, with the environment its PID 1 was started with
(read from `/proc/<pid>/environ`). A TTY is a pseudo-terminal whose size follows the resize
channel. When the WebSocket closes, the command's process group is killed.

`attach` streams what the container writes from now on (the kubelet's log file of the current
run, followed) on stdout; sandbox containers have no stdin to attach to (`stdin: true` in the
pod spec is not supported), so attach's stdin is read and dropped.

Errors before the upgrade are kube-apiserver's and the kubelet's: 404 for a missing pod, 400
`container x is not valid for pod y`, 400 `pod y does not have a host assigned`, and (the
kubelet's) `container not found ("x")` when the container is not running — kubectl shows it as
`error: unable to upgrade connection: container not found ("x")`.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import signal
import struct
import termios
from collections.abc import AsyncIterator, Coroutine, Mapping
from dataclasses import dataclass
from subprocess import SubprocessError
from typing import TYPE_CHECKING, Any

from aiohttp import WSMsgType, web

from sandbox import images as catalogue
from sandbox.kubelet.isolation import Identity, exec_argv

from . import errors, spdy
from .query import flag

if TYPE_CHECKING:
    from .server import ApiServer, Target

V5 = "v5.channel.k8s.io"
V4 = "v4.channel.k8s.io"
STDIN, STDOUT, STDERR, ERROR, RESIZE, CLOSE = 0, 1, 2, 3, 4, 255
SUCCESS = {"metadata": {}, "status": "Success"}


class NotRunning(Exception):
    """The container has no running process (the kubelet's `container not found`)."""


@dataclass(frozen=True)
class Running:
    """A running container's process and how to enter it."""

    init_pid: int
    identity: Identity
    workdir: str
    env: dict[str, str]


def pick_container(pod: dict, requested: str | None) -> dict:
    """The container spec an exec or attach is about (kube-apiserver's `streamLocation`)."""
    name = pod["metadata"]["name"]
    spec = pod.get("spec", {})
    containers = list(spec.get("containers") or [])
    every = [*(spec.get("initContainers") or []), *containers, *(spec.get("ephemeralContainers") or [])]
    if not requested:
        if len(containers) == 1:
            return containers[0]
        names = " ".join(c.get("name", "") for c in every)
        raise errors.bad_request(f"a container name must be specified for pod {name}, choose one of: "
                                 f"[{names}]")
    for container in every:
        if container.get("name") == requested:
            if not spec.get("nodeName"):
                raise errors.bad_request(f"pod {name} does not have a host assigned")
            return container
    raise errors.bad_request(f"container {requested} is not valid for pod {name}")


def _read(path: str) -> bytes:
    with open(path, "rb") as handle:
        return handle.read()


def _status_ids(pid: int) -> tuple[int, int, tuple[int, ...]]:
    """(uid, gid, supplementary groups) of a process, from /proc/PID/status."""
    fields: dict[str, list[str]] = {}
    for line in _read(f"/proc/{pid}/status").decode().splitlines():
        key, _, value = line.partition(":")
        fields[key] = value.split()
    return int(fields["Uid"][0]), int(fields["Gid"][0]), tuple(int(g) for g in fields.get("Groups", []))


def running_container(pod: dict, container: dict) -> Running:
    """Find the running process of a container from the pod's status (NotRunning if none)."""
    name = container.get("name")
    spec = pod.get("spec", {})
    statuses = [*(pod.get("status", {}).get("containerStatuses") or []),
                *(pod.get("status", {}).get("initContainerStatuses") or [])]
    status = next((s for s in statuses if s.get("name") == name), None)
    if status is None or "running" not in (status.get("state") or {}):
        raise NotRunning()
    container_id = str(status.get("containerID") or "")
    if not container_id.startswith("sandbox://") or not spec.get("nodeName"):
        raise NotRunning()
    bwrap = container_id.removeprefix("sandbox://")
    try:
        children = _read(f"/proc/{bwrap}/task/{bwrap}/children").split()
        if not children or b"bwrap" not in _read(f"/proc/{bwrap}/cmdline").split(b"\0")[0]:
            raise NotRunning()
        init_pid = int(children[0])
        uid, gid, groups = _status_ids(init_pid)
        environ = _read(f"/proc/{init_pid}/environ")
    except (OSError, ValueError, KeyError, IndexError):
        raise NotRunning() from None
    env = dict(item.split("=", 1) for item in environ.decode(errors="replace").split("\0") if "=" in item)
    image = catalogue.catalogue_image(catalogue.normalize(str(container.get("image") or ""))) \
        if container.get("image") else None
    workdir = container.get("workingDir") or (image.working_dir if image else "") or "/"
    return Running(init_pid, Identity(uid, gid, groups), workdir, env)


def _not_found(container: str) -> web.Response:
    """The kubelet's answer for a container without a running process (plain text, as kubectl
    shows it after `unable to upgrade connection: `)."""
    return web.Response(status=500, text=f'container not found ("{container}")')


def _exit_status(code: int, command: list[str]) -> dict:
    """The error channel's Status for a command that ended with a non-zero code."""
    return {"metadata": {}, "status": "Failure",
            "message": f"command terminated with non-zero exit code: command '{' '.join(command)}' "
                       f"exited with {code}",
            "reason": "NonZeroExitCode",
            "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]}}


def _failure(message: str) -> dict:
    return {"metadata": {}, "status": "Failure", "message": message, "reason": "InternalError",
            "details": {"causes": [{"message": message}]}, "code": 500}


def _command_exists(running: Running, command: str) -> bool:
    """Whether the command can be found in the container's filesystem (as the runtime's exec would)."""
    root = f"/proc/{running.init_pid}/root"
    if "/" in command:
        path = command if command.startswith("/") else os.path.join(running.workdir, command)
        return os.path.exists(root + path)
    for directory in running.env.get("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin") \
            .split(":"):
        if directory and os.path.exists(f"{root}{directory}/{command}"):
            return True
    return False


def _options(query: Mapping[str, str]) -> tuple[bool, bool, bool, bool]:
    """(stdin, stdout, stderr, tty) of an exec or attach request."""
    stdin, stdout, stderr, tty = (flag(query, n) for n in ("stdin", "stdout", "stderr", "tty"))
    if not (stdin or stdout or stderr):
        raise errors.bad_request("you must specify at least 1 of stdin, stdout, stderr")
    if tty and stderr:
        stderr = False  # a TTY merges stderr into stdout, as the kubelet does
    return stdin, stdout, stderr, tty


class _Message:
    """A channel message as the exec loop reads it from a WebSocket: binary, channel byte first."""

    type = WSMsgType.BINARY

    def __init__(self, data: bytes) -> None:
        self.data = data


class SpdyChannels:
    """The channel interface of the WebSocket protocols over the SPDY streams of a plain
    `Upgrade: SPDY/3.1` (kubectl before 1.30, `v4.channel.k8s.io`): one stream per channel,
    named by its `streamType` header; stdin's FIN is the close channel's end of stdin; the
    resize stream carries one JSON object per line. What the exec and attach loops send on a
    channel goes out as DATA on its stream; closing finishes stdout, stderr and error."""

    STREAMS = {"stdin": STDIN, "stdout": STDOUT, "stderr": STDERR, "error": ERROR, "resize": RESIZE}

    def __init__(self, upgraded: spdy.Upgraded, expected: set[str]) -> None:
        self.upgraded = upgraded
        self.response = upgraded.response
        self.conn = spdy.Connection(upgraded.send, self._on_stream)
        self.channels: dict[int, spdy.Stream] = {}
        self.messages: asyncio.Queue[_Message | None] = asyncio.Queue()
        self.expected = expected
        self.ready = asyncio.Event()
        self.tasks: set[asyncio.Task] = set()
        self._spawn(self._read())

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coroutine)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _read(self) -> None:
        try:
            async for chunk in self.upgraded.chunks:
                await self.conn.feed(chunk)
        finally:
            self.conn.close()
            self.messages.put_nowait(None)
            self.ready.set()

    def _on_stream(self, stream: spdy.Stream) -> None:
        channel = self.STREAMS.get(stream.kind)
        if channel is None:
            self._spawn(self.conn.reset(stream))
            return
        self.channels[channel] = stream
        if channel in (STDIN, RESIZE):
            self._spawn(self._incoming(channel, stream))
        if self.expected <= {k for k, c in self.STREAMS.items() if c in self.channels}:
            self.ready.set()

    async def _incoming(self, channel: int, stream: spdy.Stream) -> None:
        pending = b""
        while (chunk := await stream.incoming.get()) is not None:
            if channel == STDIN:
                self.messages.put_nowait(_Message(bytes([STDIN]) + chunk))
                continue
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for line in lines:
                self.messages.put_nowait(_Message(bytes([RESIZE]) + line))
        if channel == STDIN:
            self.messages.put_nowait(_Message(bytes([CLOSE, STDIN])))

    async def wait_for_streams(self, timeout: float = 30.0) -> None:
        """Wait until the client opened every stream the request asked for (the kubelet's
        stream-creation timeout is 30 s)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.ready.wait(), timeout)

    async def send_bytes(self, message: bytes) -> None:
        stream = self.channels.get(message[0])
        if stream is not None and len(message) > 1:
            await self.conn.write(stream, message[1:])

    async def __aiter__(self) -> AsyncIterator[_Message]:
        while (message := await self.messages.get()) is not None:
            yield message

    async def close(self) -> None:
        for channel in (STDOUT, STDERR, ERROR):
            stream = self.channels.get(channel)
            if stream is not None:
                await self.conn.write(stream, b"", fin=True)
        for task in list(self.tasks):
            task.cancel()
        self.upgraded.close()


Channels = web.WebSocketResponse | SpdyChannels


async def _upgrade(request: web.Request, *, stdin: bool, stdout: bool, stderr: bool, tty: bool) -> Channels:
    """Accept the WebSocket (`v5`/`v4.channel.k8s.io`), or a plain SPDY upgrade (kubectl < 1.30)
    once its streams are open; 400 for anything else."""
    if spdy.is_upgrade(request):
        upgraded = await spdy.upgrade(request, (V4,))
        wanted = {"error", *(["stdin"] if stdin else []), *(["stdout"] if stdout else []),
                  *(["stderr"] if stderr else []), *(["resize"] if tty else [])}
        channels = SpdyChannels(upgraded, wanted)
        await channels.wait_for_streams()
        return channels
    if request.headers.get("Upgrade", "").lower() != "websocket":
        raise errors.bad_request("Upgrade request required: the sandbox speaks the WebSocket streaming "
                                 f"protocols ({V5}, {V4}) and {spdy.UPGRADE}")
    ws = web.WebSocketResponse(protocols=(V5, V4), autoping=True, max_msg_size=0)
    await ws.prepare(request)
    return ws


def _response(ws: Channels) -> web.StreamResponse:
    """What the handler returns: the WebSocket, or the 101 of a SPDY upgrade."""
    return ws.response if isinstance(ws, SpdyChannels) else ws


async def _send(ws: Channels, channel: int, data: bytes) -> None:
    with contextlib.suppress(ConnectionResetError, RuntimeError):
        await ws.send_bytes(bytes([channel]) + data)


def _resize(fd: int, message: bytes) -> None:
    with contextlib.suppress(ValueError, TypeError, OSError, KeyError):
        size = json.loads(message)
        winsize = struct.pack("HHHH", int(size["Height"]), int(size["Width"]), 0, 0)
        fcntl.ioctl(fd, termios.TIOCSWINSZ, winsize)


# A TTY command leads a session of its own inside the container, the pty its controlling terminal
# (so a shell's job control sees only the container's processes); util-linux's setsid is in the
# machine's /usr, which every sandbox container has read-only.
SETSID = ("/usr/bin/setsid", "--ctty", "--wait")


async def serve_exec(api: ApiServer, request: web.Request, target: Target) -> web.StreamResponse:
    """`pods/exec`."""
    query = request.query
    pod = api.registry.get(target.res, target.namespace, target.name or "").obj
    container = pick_container(pod, query.get("container"))
    command = query.getall("command", [])
    if not command:
        raise errors.bad_request("you must specify at least one command for the container")
    stdin, stdout, stderr, tty = _options(query)
    try:
        running = running_container(pod, container)
    except NotRunning:
        return _not_found(container["name"])
    ws = await _upgrade(request, stdin=stdin, stdout=stdout, stderr=stderr, tty=tty)
    task = asyncio.current_task()
    assert task is not None
    api.streams.add(task)
    try:
        await _send(ws, STDOUT if stdout else STDERR if stderr else ERROR, b"")
        if not _command_exists(running, command[0]):
            reason = (f'exec: "{command[0]}": executable file not found in $PATH' if "/" not in command[0]
                      else f"exec: {command[0]}: no such file or directory")
            await _send(ws, ERROR, json.dumps(_failure(
                "Internal error occurred: error executing command in container: failed to exec in container: "
                "failed to start exec: "
                f"OCI runtime exec failed: exec failed: unable to start container process: {reason}: "
                "unknown")).encode())
            return _response(ws)
        argv = exec_argv(init_pid=running.init_pid, identity=running.identity, workdir=running.workdir,
                         command=[*SETSID, *command] if tty else command)
        try:
            code = await _run(ws, argv, running.env, stdin=stdin, stdout=stdout, stderr=stderr, tty=tty)
        except (OSError, SubprocessError) as exc:
            await _send(ws, ERROR, json.dumps(_failure(f"Internal error occurred: error executing command in "
                                                       f"container: {exc}")).encode())
            return _response(ws)
        if code is not None:
            status = SUCCESS if code == 0 else _exit_status(code, command)
            await _send(ws, ERROR, json.dumps(status).encode())
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    finally:
        api.streams.discard(task)
        with contextlib.suppress(Exception):
            await ws.close()
    return _response(ws)


async def _run(ws: Channels, argv: list[str], env: dict[str, str], *, stdin: bool, stdout: bool,
               stderr: bool, tty: bool) -> int | None:
    """Run argv with its streams on the WebSocket; its exit code (None if the client went away)."""
    loop = asyncio.get_running_loop()
    master = -1
    if tty:
        master, slave = os.openpty()
        proc = await asyncio.create_subprocess_exec(*argv, env=env, stdin=slave, stdout=slave, stderr=slave,
                                                    start_new_session=True)
        os.close(slave)
        os.set_blocking(master, False)
    else:
        proc = await asyncio.create_subprocess_exec(
            *argv, env=env, stdin=asyncio.subprocess.PIPE if stdin else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE if stdout else asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE if stderr else asyncio.subprocess.DEVNULL, start_new_session=True)
    pumps: list[asyncio.Task] = []

    async def pump(reader: asyncio.StreamReader, channel: int) -> None:
        while chunk := await reader.read(32768):
            await _send(ws, channel, chunk)

    async def pump_pty() -> None:
        queue: asyncio.Queue[bytes] = asyncio.Queue()

        def readable() -> None:
            try:
                data = os.read(master, 32768)
            except BlockingIOError:
                return
            except OSError:
                data = b""
            queue.put_nowait(data)
            if not data:
                loop.remove_reader(master)

        loop.add_reader(master, readable)
        try:
            while data := await queue.get():
                await _send(ws, STDOUT, data)
        finally:
            loop.remove_reader(master)

    async def receive() -> None:
        async for msg in ws:
            if msg.type != WSMsgType.BINARY or not msg.data:
                continue
            channel, data = msg.data[0], msg.data[1:]
            if channel == STDIN and stdin:
                if tty:
                    await loop.run_in_executor(None, _write_all, master, data)
                elif proc.stdin is not None:
                    with contextlib.suppress(ConnectionResetError, BrokenPipeError):
                        proc.stdin.write(data)
                        await proc.stdin.drain()
            elif channel == RESIZE and tty:
                _resize(master, data)
            elif channel == CLOSE and data[:1] == bytes([STDIN]):
                if tty:
                    await loop.run_in_executor(None, _write_all, master, b"\x04")
                elif proc.stdin is not None:
                    proc.stdin.close()

    if tty:
        pumps.append(asyncio.create_task(pump_pty()))
    else:
        if proc.stdout is not None:
            pumps.append(asyncio.create_task(pump(proc.stdout, STDOUT)))
        if proc.stderr is not None:
            pumps.append(asyncio.create_task(pump(proc.stderr, STDERR)))
    receiver = asyncio.create_task(receive())
    waiter = asyncio.create_task(proc.wait())
    try:
        done, _ = await asyncio.wait({waiter, receiver}, return_when=asyncio.FIRST_COMPLETED)
        if waiter not in done:
            return None  # the client closed the WebSocket
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.gather(*pumps, return_exceptions=True), 5)
        return waiter.result()
    finally:
        for task in (*pumps, receiver):
            task.cancel()
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            await proc.wait()
        waiter.cancel()
        if master >= 0:
            os.close(master)


def _write_all(fd: int, data: bytes) -> None:
    """Write to a non-blocking fd (a pty master) until all is written."""
    view = memoryview(data)
    while view:
        try:
            view = view[os.write(fd, view):]
        except BlockingIOError:
            import select
            select.select([], [fd], [], 1.0)
        except OSError:
            return


async def serve_attach(api: ApiServer, request: web.Request, target: Target) -> web.StreamResponse:
    """`pods/attach`: what the container writes from now on, on stdout, until it stops."""
    from . import logs

    query = request.query
    pod = api.registry.get(target.res, target.namespace, target.name or "").obj
    container = pick_container(pod, query.get("container"))
    stdin, stdout, stderr, tty = _options(query)
    try:
        running_container(pod, container)
    except NotRunning:
        return _not_found(container["name"])
    path = logs.locate(api.state_dir, pod, container["name"], previous=False)
    offset = path.stat().st_size
    ws = await _upgrade(request, stdin=stdin, stdout=stdout, stderr=stderr, tty=tty)
    task = asyncio.current_task()
    assert task is not None
    api.streams.add(task)
    loop = asyncio.get_running_loop()
    uid = pod["metadata"]["uid"]

    async def drain_stdin() -> None:
        async for _ in ws:
            pass

    reader = asyncio.create_task(drain_stdin())
    try:
        await _send(ws, STDOUT, b"")
        while not reader.done():
            raw = await loop.run_in_executor(None, logs._read_from, path, offset)
            complete, chunk = logs.take_records(raw, logs.LogOptions())  # CRI records: the lines' content
            if complete:
                offset += complete
                if chunk:
                    await _send(ws, STDOUT, chunk)
                continue
            entry = api.store.get(target.res.key, target.namespace, target.name or "")
            if entry is None or entry.obj["metadata"].get("uid") != uid or logs.newer_run_exists(path) \
                    or not logs.container_running(entry.obj, container["name"]):
                await _send(ws, ERROR, json.dumps(SUCCESS).encode())
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(reader), 0.25)
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    finally:
        reader.cancel()
        api.streams.discard(task)
        with contextlib.suppress(Exception):
            await ws.close()
    return _response(ws)
