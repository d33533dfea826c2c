"""Pod network and IPs: node names and addresses, the per-node pod IP allocator.

A sandbox has no network namespaces: pods share the host's network and each gets a loopback
address of its own. Node ``i`` is ``127.<B>.0.<i>``; its pods get ``127.<B>.<i + 50k>.<2..254>``
where ``B`` (128..254) is drawn once per state directory so sandboxes running side by side on
one machine never collide. An address is not handed out twice while the state directory lives.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import time
from pathlib import Path

from sandbox import statedir


def node_name(index: int) -> str:
    """Node names: sandbox-node-1, sandbox-node-2, ..."""
    return f"sandbox-node-{index}"


def node_ip(index: int, network_octet: int) -> str:
    """The InternalIP of node ``index``: ``127.<B>.0.<index>`` in this sandbox's network, so
    NodePorts bound on it never collide with another sandbox's on the same machine."""
    return f"127.{network_octet}.0.{index}"


def pod_cidr(index: int, network_octet: int) -> str:
    """The podCIDR the Node object reports."""
    return f"127.{network_octet}.{index}.0/24"


class IpAllocator:
    """Hands out pod IPs ``127.<B>.<node + 50k>.<2..254>`` from a counter persisted per node.

    An address that has a socket bound on it anyway is skipped. An IP is not handed out twice
    while the state directory lives (until 1265 pods per node)."""

    def __init__(self, state_dir: Path, node_index: int) -> None:
        self.path = statedir.ipam(state_dir) / f"{node_name(node_index)}.json"
        self.node_index = node_index
        self.base = pod_network_octet(Path(state_dir))
        try:
            self.counter = int(json.loads(self.path.read_text())["next"])
        except (OSError, ValueError, KeyError):
            self.counter = 0

    def _next(self) -> str:
        c = self.counter % (5 * 253)
        self.counter += 1
        return f"127.{self.base}.{self.node_index + 50 * (c // 253)}.{2 + c % 253}"

    def allocate(self) -> str:
        """The next pod IP with nothing bound on it."""
        busy = bound_addresses()
        ip = self._next()
        for _ in range(5 * 253):
            if ip not in busy:
                break
            ip = self._next()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"next": self.counter}))
        os.replace(tmp, self.path)
        return ip


def pod_network_octet(state_dir: Path) -> int:
    """The second octet of this sandbox's pod network, chosen at first boot and kept."""
    path = statedir.ipam(state_dir) / "network.json"
    try:
        return int(json.loads(path.read_text())["octet"])
    except (OSError, ValueError, KeyError):
        pass
    taken = {int(ip.split(".")[1]) for ip in bound_addresses() if ip.startswith("127.")}
    choices = [o for o in range(128, 255) if o not in taken] or list(range(128, 255))
    octet = random.choice(choices)
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        with os.fdopen(fd, "w") as handle:
            handle.write(json.dumps({"octet": octet}))
        return octet
    return int(json.loads(path.read_text())["octet"])


def bound_addresses() -> set[str]:
    """Local IPv4 addresses with a listening TCP socket right now (from /proc/net/tcp; cached 1 s)."""
    now = time.monotonic()
    if _bound_cache and now - _bound_cache[0] < 1.0:
        return _bound_cache[1]
    out: set[str] = set()
    try:
        lines = Path("/proc/net/tcp").read_text().splitlines()[1:]
    except OSError:
        return out
    for line in lines:
        parts = line.split(None, 4)
        if len(parts) > 3 and parts[3] == "0A":
            hex_ip = parts[1][:8]
            out.add(".".join(str(int(hex_ip[i : i + 2], 16)) for i in (6, 4, 2, 0)))
    _bound_cache[:] = [now, out]
    return out


_bound_cache: list = []
