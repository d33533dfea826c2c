"""Start-up settings of backend_pod, read from environment variables with flags overriding them.

Kubernetes configures containers through env (the Deployment's `env:` and the downward API:
POD_NAME, POD_IP, NODE_NAME, POD_NAMESPACE), while a human running the backend by hand reaches
for flags; both land in one validated, frozen `Settings`. An invalid value is reported by name
on stderr and the process exits with status 2 before it listens, so a typo in a manifest shows
up as a clear CrashLoopBackOff reason instead of a half-configured pod. An empty variable counts
as unset (the downward API writes "" for fields it cannot fill).
"""

from __future__ import annotations

import argparse
import ipaddress
import math
import os
import re
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

DEFAULT_COLOR = "#2f7ed8"
SHUTDOWN_MODES = ("drain", "abrupt")
ACCESS_LOG_ALIASES = {
    "0": "off", "false": "off", "no": "off", "off": "off",
    "conn": "conn", "connections": "conn",
    "1": "all", "true": "all", "yes": "all", "on": "all", "all": "all",
}
MAX_SECONDS = 86_400.0
MAX_CONN_REQUESTS = 1_000_000_000

# Identity strings end up in response headers, JSON and HTML: printable ASCII only, no spaces,
# so no header injection is possible and logs stay one token per value.
_IDENT = re.compile(r"[\x21-\x7e]{1,253}\Z")
_VERSION = re.compile(r"[\x21-\x7e]{1,64}\Z")
_COLOR = re.compile(r"#(?:[0-9a-fA-F]{3,4}|[0-9a-fA-F]{6}|[0-9a-fA-F]{8})\Z|[a-zA-Z]{3,30}\Z")


class ConfigError(ValueError):
    """A setting has an invalid value; the message names the variable or flag."""


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything the backend needs to start; identity fields are shown on every response."""

    host: str = "0.0.0.0"
    port: int = 8080
    pod_name: str = "backend"
    pod_ip: str = ""
    node_name: str = ""
    namespace: str = ""
    version: str = "v1"
    color: str = DEFAULT_COLOR
    start_delay: float = 0.0
    max_conn_requests: int = 0
    max_conn_age: float = 0.0
    shutdown_mode: str = "drain"
    drain_seconds: float = 5.0
    access_log: str = "conn"


def parse_seconds(value: str, *, name: str, maximum: float = MAX_SECONDS) -> float:
    """A non-negative, finite number of seconds no larger than ``maximum``."""
    try:
        seconds = float(value)
    except ValueError:
        raise ConfigError(f"{name}={value!r} is not a number of seconds") from None
    if not math.isfinite(seconds) or seconds < 0 or seconds > maximum:
        raise ConfigError(f"{name}={value!r} must be between 0 and {maximum:g} seconds")
    return seconds


def parse_count(value: str, *, name: str, maximum: int = MAX_CONN_REQUESTS) -> int:
    """A non-negative integer no larger than ``maximum``."""
    text = value.strip()
    if not text.isdigit() or not text.isascii():
        raise ConfigError(f"{name}={value!r} is not a non-negative integer")
    count = int(text)
    if count > maximum:
        raise ConfigError(f"{name}={value!r} must be at most {maximum}")
    return count


def parse_access_log(value: str, *, name: str) -> str:
    """One of off/conn/all (or 0/1 style aliases)."""
    mode = ACCESS_LOG_ALIASES.get(value.strip().lower())
    if mode is None:
        raise ConfigError(f"{name}={value!r} must be one of off (0), conn, all (1)")
    return mode


def _port(value: str, *, name: str) -> int:
    """A TCP port number (0 lets the kernel choose)."""
    return parse_count(value, name=name, maximum=65535)


def _host(value: str, *, name: str) -> str:
    """An IPv4 or IPv6 address literal, normalised."""
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError:
        raise ConfigError(f"{name}={value!r} is not an IP address (e.g. 0.0.0.0 or 127.244.0.7)") from None


def _ident(value: str, *, name: str) -> str:
    """An identity value that is safe in headers, JSON and HTML."""
    if not _IDENT.match(value):
        raise ConfigError(f"{name}={value!r} must be 1-253 printable ASCII characters without spaces")
    return value


def _version(value: str, *, name: str) -> str:
    """A short, header-safe version label."""
    if not _VERSION.match(value):
        raise ConfigError(f"{name}={value!r} must be 1-64 printable ASCII characters without spaces")
    return value


def _color(value: str, *, name: str) -> str:
    """A CSS colour that is safe to put into a stylesheet."""
    if not _COLOR.match(value):
        raise ConfigError(f"{name}={value!r} must be a CSS colour: #rgb, #rrggbb, #rrggbbaa or a name "
                          "like teal")
    return value


def _mode(value: str, *, name: str) -> str:
    """drain or abrupt."""
    mode = value.strip().lower()
    if mode not in SHUTDOWN_MODES:
        raise ConfigError(f"{name}={value!r} must be one of {', '.join(SHUTDOWN_MODES)}")
    return mode


# field -> (env variable, flag, converter); the order is the order of --help.
_FIELDS = {
    "port": ("PORT", "--port", _port),
    "host": ("BIND_ADDRESS", "--host", _host),
    "pod_name": ("POD_NAME", "--pod-name", _ident),
    "pod_ip": ("POD_IP", "--pod-ip", _host),
    "node_name": ("NODE_NAME", "--node-name", _ident),
    "namespace": ("POD_NAMESPACE", "--namespace", _ident),
    "version": ("VERSION", "--app-version", _version),
    "color": ("COLOR", "--color", _color),
    "start_delay": ("START_DELAY", "--start-delay", parse_seconds),
    "max_conn_requests": ("MAX_CONN_REQUESTS", "--max-conn-requests", parse_count),
    "max_conn_age": ("MAX_CONN_AGE", "--max-conn-age", parse_seconds),
    "shutdown_mode": ("SHUTDOWN_MODE", "--shutdown-mode", _mode),
    "drain_seconds": ("DRAIN_SECONDS", "--drain-seconds", parse_seconds),
    "access_log": ("ACCESS_LOG", "--access-log", parse_access_log),
}

_HELP = {
    "port": "TCP port to listen on (default 8080; 0 picks a free one)",
    "host": "IP address to bind (default 0.0.0.0; the sandbox passes the pod IP)",
    "pod_name": "pod name shown on every response (default $HOSTNAME, then the host name)",
    "pod_ip": "pod IP shown on responses (default: the address the connection arrived on)",
    "node_name": "node name shown on responses",
    "namespace": "namespace shown on responses",
    "version": "application version shown on responses (default v1)",
    "color": f"CSS colour of the HTML page (default {DEFAULT_COLOR})",
    "start_delay": "seconds after start before /readyz reports ready (default 0)",
    "max_conn_requests": "close each connection after this many requests (0 = never)",
    "max_conn_age": "close each connection with the first response after this many seconds (0 = never)",
    "shutdown_mode": "on SIGTERM: drain (default) or abrupt",
    "drain_seconds": "drain: seconds to keep serving after SIGTERM (default 5)",
    "access_log": "off, conn (default: a line per closed connection that carried more than probes) "
                  "or all (every connection and request)",
}


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface; each flag overrides its environment variable."""
    parser = argparse.ArgumentParser(
        prog="python -m backend_pod",
        description="lb-demo sample backend: tells which pod and which TCP connection served each request.",
        epilog="Every flag can also be set by the environment variable in brackets; the flag wins.",
    )
    for field, (env, flag, _convert) in _FIELDS.items():
        parser.add_argument(flag, dest=field, metavar=env, help=f"{_HELP[field]} [{env}]")
    return parser


def load_settings(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """Build Settings from ``environ`` (default os.environ) and ``argv``; raise ConfigError on bad input.

    argparse itself exits with status 2 on unknown flags.
    """
    env = os.environ if environ is None else environ
    args = build_parser().parse_args(argv)
    values: dict[str, object] = {}
    for field, (var, flag, convert) in _FIELDS.items():
        flag_value = getattr(args, field)
        if flag_value is not None:
            values[field] = convert(flag_value, name=flag)
        elif env.get(var, ""):
            values[field] = convert(env[var], name=var)
    if "pod_name" not in values:
        fallback = env.get("HOSTNAME", "") or socket.gethostname() or "backend"
        values["pod_name"] = _ident(fallback, name="HOSTNAME")
    return Settings(**values)  # type: ignore[arg-type]
