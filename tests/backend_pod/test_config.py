"""Settings from env and flags: defaults, precedence, and exit status 2 with a clear message on bad input."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from backend_pod.config import ConfigError, Settings, load_settings
from tests.backend_pod.conftest import TIMEOUT, spawn, wait_until


def test_defaults() -> None:
    settings = load_settings([], {"HOSTNAME": "backend-abc"})
    assert settings == Settings(pod_name="backend-abc")
    assert (settings.host, settings.port, settings.version) == ("0.0.0.0", 8080, "v1")
    assert settings.color == "#2f7ed8"
    assert (settings.shutdown_mode, settings.drain_seconds, settings.access_log) == ("drain", 5.0, "conn")


def test_env_is_read_and_flags_override_it() -> None:
    env = {"PORT": "9000", "BIND_ADDRESS": "127.244.0.7", "POD_NAME": "pod-x", "HOSTNAME": "ignored",
           "POD_IP": "127.244.0.7", "NODE_NAME": "node-1", "POD_NAMESPACE": "default", "VERSION": "v2",
           "COLOR": "#c92a2a", "START_DELAY": "1.5", "MAX_CONN_REQUESTS": "10", "MAX_CONN_AGE": "30",
           "SHUTDOWN_MODE": "abrupt", "DRAIN_SECONDS": "3", "ACCESS_LOG": "1"}
    settings = load_settings([], env)
    assert settings == Settings(host="127.244.0.7", port=9000, pod_name="pod-x", pod_ip="127.244.0.7",
                                node_name="node-1", namespace="default", version="v2", color="#c92a2a",
                                start_delay=1.5, max_conn_requests=10, max_conn_age=30.0,
                                shutdown_mode="abrupt", drain_seconds=3.0, access_log="all")
    flags = load_settings(["--port", "9100", "--shutdown-mode", "drain", "--app-version", "v3",
                           "--access-log", "off", "--host", "::1"], env)
    assert (flags.port, flags.shutdown_mode, flags.version, flags.access_log, flags.host) == (
        9100, "drain", "v3", "off", "::1")


def test_empty_variables_count_as_unset() -> None:
    env = {"PORT": "", "POD_NAME": "", "HOSTNAME": "h", "START_DELAY": "", "POD_IP": ""}
    settings = load_settings([], env)
    assert (settings.port, settings.pod_name, settings.start_delay, settings.pod_ip) == (8080, "h", 0.0, "")


@pytest.mark.parametrize(("env", "message"), [
    ({"PORT": "http"}, "PORT='http' is not a non-negative integer"),
    ({"PORT": "70000"}, "PORT='70000' must be at most 65535"),
    ({"BIND_ADDRESS": "localhost"}, "BIND_ADDRESS='localhost' is not an IP address"),
    ({"POD_IP": "10.0.0.300"}, "POD_IP='10.0.0.300' is not an IP address"),
    ({"START_DELAY": "soon"}, "START_DELAY='soon' is not a number of seconds"),
    ({"START_DELAY": "-1"}, "START_DELAY='-1' must be between 0 and"),
    ({"MAX_CONN_AGE": "nan"}, "MAX_CONN_AGE='nan' must be between 0 and"),
    ({"MAX_CONN_REQUESTS": "1.5"}, "MAX_CONN_REQUESTS='1.5' is not a non-negative integer"),
    ({"SHUTDOWN_MODE": "graceful"}, "SHUTDOWN_MODE='graceful' must be one of drain, abrupt"),
    ({"DRAIN_SECONDS": "inf"}, "DRAIN_SECONDS='inf' must be between 0 and"),
    ({"ACCESS_LOG": "maybe"}, "ACCESS_LOG='maybe' must be one of off (0), conn, all (1)"),
    ({"COLOR": "red;}body{"}, "COLOR='red;}body{' must be a CSS colour"),
    ({"COLOR": "#12345"}, "must be a CSS colour"),
    ({"VERSION": "v 2"}, "VERSION='v 2' must be 1-64 printable ASCII characters"),
    ({"POD_NAME": "bad\nname"}, "POD_NAME='bad\\nname' must be 1-253 printable ASCII characters"),
])
def test_bad_values_are_named(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings([], {"HOSTNAME": "h", **env})
    assert message in str(info.value)


def test_bad_env_exits_2_with_message_before_listening(tmp_path: Path) -> None:
    log = tmp_path / "out.log"
    proc = spawn(log, env={"PORT": "eighty"})
    assert proc.wait(timeout=TIMEOUT) == 2
    assert log.read_text() == "backend_pod: error: PORT='eighty' is not a non-negative integer\n"


def test_bad_flag_exits_2_with_usage(tmp_path: Path) -> None:
    log = tmp_path / "out.log"
    assert spawn(log, args=["--shutdown-mode", "later"]).wait(timeout=TIMEOUT) == 2
    assert "--shutdown-mode='later' must be one of drain, abrupt" in log.read_text()
    log2 = tmp_path / "out2.log"
    assert spawn(log2, args=["--no-such-flag"]).wait(timeout=TIMEOUT) == 2
    assert "unrecognized arguments: --no-such-flag" in log2.read_text()


def test_port_in_use_is_a_clear_error(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        log = tmp_path / "out.log"
        proc = spawn(log, env={"PORT": str(port), "BIND_ADDRESS": "127.0.0.1", "POD_NAME": "p"})
        assert proc.wait(timeout=TIMEOUT) == 1
    assert f"backend_pod: error: cannot listen on 127.0.0.1:{port}" in log.read_text()


def test_help_lists_every_variable() -> None:
    out = subprocess.run([sys.executable, "-m", "backend_pod", "--help"],
                         capture_output=True, text=True, timeout=TIMEOUT, check=True).stdout
    for var in ("PORT", "BIND_ADDRESS", "POD_NAME", "POD_IP", "NODE_NAME", "POD_NAMESPACE", "VERSION",
                "COLOR", "START_DELAY", "MAX_CONN_REQUESTS", "MAX_CONN_AGE", "SHUTDOWN_MODE",
                "DRAIN_SECONDS", "ACCESS_LOG"):
        assert f"[{var}]" in out


def test_port_zero_listens_on_a_free_port_and_logs_it(tmp_path: Path) -> None:
    log = tmp_path / "out.log"
    proc = spawn(log, env={"PORT": "0", "BIND_ADDRESS": "127.0.0.1", "POD_NAME": "p"})
    try:
        match = wait_until(lambda: re.search(r"event=listening address=127\.0\.0\.1:(\d+)", log.read_text()),
                           what="the listening line")
        with socket.create_connection(("127.0.0.1", int(match.group(1))), timeout=TIMEOUT) as sock:
            sock.sendall(b"GET /healthz HTTP/1.0\r\n\r\n")
            assert sock.recv(65536).startswith(b"HTTP/1.1 200 OK")
    finally:
        proc.kill()
        proc.wait(timeout=TIMEOUT)
