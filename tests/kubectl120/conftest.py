"""Debian's kubectl 1.20 (package `kubernetes-client`) against the shared sandbox.

/usr/bin/kubectl may belong to another package here, so the Debian package is not installed:
``kubectl120`` downloads it once (`apt-get download` + `dpkg-deb -x`, the lists refreshed with
`apt-get update` when the download finds nothing) into `.venv/debian/kubernetes-client/` and
reuses it afterwards. kubectl 1.20 is the client that needs what kubectl 1.37 no longer asks
for: `/openapi/v2` as protobuf (apply's validation, explain), the plain `Upgrade: SPDY/3.1` of
exec and port-forward, and autoscaling/v1 for `kubectl autoscale`.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import REPO, Sandbox

PACKAGE = "kubernetes-client"
ROOT = REPO / ".venv" / "debian" / PACKAGE
BINARY = ROOT / "usr" / "bin" / "kubectl"


def _download(target: Path) -> None:
    """Fetch and unpack Debian's kubernetes-client into ``target`` (refreshing the lists once)."""
    with tempfile.TemporaryDirectory() as work:
        fetch = ["apt-get", "download", "-q", PACKAGE]
        if subprocess.run(fetch, cwd=work, capture_output=True, timeout=300).returncode != 0:
            subprocess.run(["apt-get", "update", "-qq"], check=True, capture_output=True, timeout=600)
            subprocess.run(fetch, cwd=work, check=True, capture_output=True, timeout=300)
        (deb,) = Path(work).glob(f"{PACKAGE}_*.deb")
        unpacked = Path(work) / "root"
        subprocess.run(["dpkg-deb", "-x", str(deb), str(unpacked)], check=True, timeout=120)
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.exists():  # another test process may have unpacked it meanwhile
            shutil.move(str(unpacked), str(target))


@pytest.fixture(scope="session")
def kubectl120_binary() -> Path:
    """The path of Debian's kubectl 1.20, downloaded the first time."""
    if not BINARY.exists():
        _download(ROOT)
    version = subprocess.run([str(BINARY), "version", "--client", "--short"], capture_output=True, text=True,
                             timeout=30)
    assert "v1.20" in version.stdout, version
    return BINARY


@dataclass
class Kubectl120:
    """kubectl 1.20 pointed at the shared sandbox, in a namespace of its own."""

    binary: Path
    box: Sandbox
    namespace: str

    def argv(self, *args: str) -> list[str]:
        return [str(self.binary), "--namespace", self.namespace, *args]

    def run(self, *args: str, stdin: str | None = None,
            timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
        """Run it; the completed process whatever its exit code."""
        return subprocess.run(self.argv(*args), env=self.box.kubectl_env(), input=stdin, text=True,
                              capture_output=True, timeout=timeout)

    def ok(self, *args: str, stdin: str | None = None, timeout: float = 60.0) -> str:
        """Run it; its stdout (a failure fails the test with kubectl's stderr)."""
        done = self.run(*args, stdin=stdin, timeout=timeout)
        assert done.returncode == 0, \
            f"kubectl 1.20 {' '.join(args)} failed ({done.returncode}):\n{done.stderr}"
        return done.stdout


@pytest.fixture
def kubectl120(kubectl120_binary: Path, sandbox: Sandbox) -> Iterator[Kubectl120]:
    """Debian's kubectl 1.20 in a fresh namespace of the shared sandbox (deleted afterwards)."""
    namespace = f"k120-{uuid.uuid4().hex[:8]}"
    sandbox.kubectl("create", "namespace", namespace)
    yield Kubectl120(kubectl120_binary, sandbox, namespace)
    sandbox.kubectl("delete", "namespace", namespace, "--wait=false")
