"""Container probes (httpGet, tcpSocket, exec) with the kubelet's result messages.

Each probe returns ``(ok, message)``; the message is what the kubelet writes in its
``Unhealthy`` event, e.g. ``HTTP probe failed with statuscode: 503`` or
``Get "http://127.244.1.3:8080/readyz": dial tcp 127.244.1.3:8080: connect: connection refused``.
HTTP probes open a fresh connection per probe with ``Connection: close``, like the kubelet,
and count 200-399 as success.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

Obj = dict[str, Any]
# Runs a command inside the container: (argv, timeout) -> (exit code, output).
ExecIn = Callable[[list[str], float], Awaitable[tuple[int, str]]]


def resolve_probe_port(port: Any, containers: list[Obj]) -> int | None:
    """A probe port: a number or the name of a containerPort."""
    if isinstance(port, int) or (isinstance(port, str) and port.isdigit()):
        return int(port)
    for container in containers:
        for p in container.get("ports") or []:
            if p.get("name") == port:
                return int(p["containerPort"])
    return None


async def http_probe(
    *, host: str, port: int, path: str, scheme: str, headers: list[Obj], timeout: float
) -> tuple[bool, str]:
    """GET ``path``; success is a 2xx/3xx status."""
    url = f"{scheme.lower()}://{host}:{port}{path}"
    if scheme.upper() != "HTTP":
        return False, f'Get "{url}": the sandbox kubelet probes plain HTTP only'
    writer = None
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(host, port)
            extra = "".join(f"{h['name']}: {h['value']}\r\n" for h in headers if h.get("name"))
            host_header = (
                ""
                if any(h.get("name", "").lower() == "host" for h in headers)
                else f"Host: {host}:{port}\r\n"
            )
            writer.write(
                f"GET {path} HTTP/1.1\r\n{host_header}User-Agent: kube-probe/1.37\r\n"
                f"Accept: */*\r\nConnection: close\r\n{extra}\r\n".encode()
            )
            line = await reader.readline()
    except TimeoutError:
        return False, (
            f'Get "{url}": context deadline exceeded (Client.Timeout exceeded while awaiting headers)'
        )
    except ConnectionRefusedError:
        return False, f'Get "{url}": dial tcp {host}:{port}: connect: connection refused'
    except OSError as exc:
        return False, f'Get "{url}": dial tcp {host}:{port}: {exc.strerror or exc}'
    finally:
        if writer is not None:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
    parts = line.decode("latin-1").split()
    if len(parts) < 2 or not parts[1].isdigit():
        return False, f'Get "{url}": malformed HTTP response'
    code = int(parts[1])
    if 200 <= code < 400:
        return True, ""
    return False, f"HTTP probe failed with statuscode: {code}"


async def tcp_probe(*, host: str, port: int, timeout: float) -> tuple[bool, str]:
    """Open (and close) a TCP connection."""
    try:
        async with asyncio.timeout(timeout):
            _, writer = await asyncio.open_connection(host, port)
    except TimeoutError:
        return False, f"dial tcp {host}:{port}: i/o timeout"
    except OSError as exc:
        reason = "connect: connection refused" if isinstance(exc, ConnectionRefusedError) else str(exc)
        return False, f"dial tcp {host}:{port}: {reason}"
    writer.close()
    return True, ""


async def exec_probe(
    *, command: list[str], exec_in: ExecIn, timeout: float
) -> tuple[bool, str]:
    """Run the command; success is exit code 0."""
    if not command:
        return False, "exec probe without a command"
    try:
        code, output = await exec_in(command, timeout)
    except TimeoutError:
        return False, f"command {command!r} timed out"
    except OSError as exc:
        return False, f"exec failed: {exc}"
    if code == 0:
        return True, ""
    return False, output.strip()[:1024] or f"command {command!r} exited with {code}"


async def run_probe(
    probe: Obj, *, pod_ip: str, containers: list[Obj], exec_in: ExecIn
) -> tuple[bool, str]:
    """Run one probe of any kind against the pod."""
    timeout = float(probe.get("timeoutSeconds") or 1)
    if "httpGet" in probe:
        spec = probe["httpGet"]
        port = resolve_probe_port(spec.get("port"), containers)
        if port is None:
            return False, f"unknown probe port {spec.get('port')!r}"
        return await http_probe(
            host=spec.get("host") or pod_ip,
            port=port,
            path=spec.get("path") or "/",
            scheme=spec.get("scheme") or "HTTP",
            headers=spec.get("httpHeaders") or [],
            timeout=timeout,
        )
    if "tcpSocket" in probe:
        spec = probe["tcpSocket"]
        port = resolve_probe_port(spec.get("port"), containers)
        if port is None:
            return False, f"unknown probe port {spec.get('port')!r}"
        return await tcp_probe(host=spec.get("host") or pod_ip, port=port, timeout=timeout)
    if "exec" in probe:
        return await exec_probe(
            command=list((probe["exec"] or {}).get("command") or []), exec_in=exec_in, timeout=timeout
        )
    if "grpc" in probe:
        return False, "grpc probes are not supported by the sandbox kubelet"
    return True, ""
