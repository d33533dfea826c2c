"""`kubectl exec` (plain, -i, -it with resize), `kubectl cp` and their errors, with real kubectl
over the WebSocket `v5.channel.k8s.io` protocol against a live sandbox."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.conftest import KUBECTL
from tests.sandbox.conftest import Kube, wait_until
from tests.terminal import Terminal


def kubectl(kube: Kube, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run kubectl in the test's namespace; the completed process whatever its exit code."""
    return subprocess.run([str(KUBECTL), "--namespace", str(kube.namespace), *args],
                          env=kube.box.kubectl_env(), input=stdin, text=True, capture_output=True, timeout=60)


def test_exec_runs_inside_the_container_with_its_streams_and_exit_code(kube: Kube) -> None:
    pod = kube.ready_pods()[0]["metadata"]["name"]
    done = kubectl(kube, "exec", pod, "--", "sh", "-c", "pwd; hostname; echo $VERSION; ps -o pid= -o comm=; "
                   "echo oops >&2; exit 3")
    lines = done.stdout.split("\n")
    assert lines[:3] == ["/app", pod, "v1"]
    assert lines[3].split() == ["1", "python"]  # PID 1 is the container's own process
    assert done.stderr == "oops\ncommand terminated with exit code 3\n"
    assert done.returncode == 3
    done = kubectl(kube, "exec", "-i", pod, "--", "wc", "-c", stdin="x" * 100_000)
    assert (done.returncode, done.stdout.strip()) == (0, "100000")


def test_exec_errors_are_the_real_ones(kube: Kube) -> None:
    pod = kube.ready_pods()[0]["metadata"]["name"]
    done = kubectl(kube, "exec", pod, "--", "no-such-command")
    assert done.returncode == 1
    assert 'exec: "no-such-command": executable file not found in $PATH' in done.stderr
    done = kubectl(kube, "exec", "nope", "--", "ls")
    assert done.stderr.strip() == 'Error from server (NotFound): pods "nope" not found'
    kube.run("run", "broken", "--image=lb-demo:nope")
    wait_until(lambda: "ImagePull" in kube.run("get", "pod", "broken", "--no-headers"),
               what="an image pull error")
    done = kubectl(kube, "exec", "broken", "--", "ls")
    assert done.stderr.strip() == 'error: unable to upgrade connection: container not found ("broken")'


def test_cp_copies_files_both_ways(kube: Kube, tmp_path: Path) -> None:
    pod = kube.ready_pods()[0]["metadata"]["name"]
    source = tmp_path / "notes.txt"
    source.write_text("copied into the pod\n" * 1000)
    assert kubectl(kube, "cp", str(source), f"{pod}:/tmp/notes.txt").returncode == 0
    assert kubectl(kube, "exec", pod, "--", "wc", "-l", "/tmp/notes.txt").stdout.split()[0] == "1000"
    back = tmp_path / "back.txt"
    done = kubectl(kube, "cp", f"{pod}:/tmp/notes.txt", str(back))
    assert done.returncode == 0, done.stderr
    assert back.read_text() == source.read_text()


def test_exec_tty_follows_the_terminal_size(kube: Kube) -> None:
    pod = kube.ready_pods()[0]["metadata"]["name"]
    terminal = Terminal([str(KUBECTL), "-n", str(kube.namespace), "exec", "-it", pod, "--", "sh"],
                        kube.box.kubectl_env())
    try:
        terminal.resize(33, 111, notify=False)
        terminal.write(b"stty size; echo $((6*7))\r")
        assert terminal.read_until(b"33 111\r\n42\r\n"), terminal.output
        terminal.resize(40, 120)
        # the resize message races the next command: ask until it has arrived
        assert terminal.ask_until(b"stty size\r", b"\n40 120\r\n"), terminal.output
        terminal.write(b"exit 5\r")
        assert terminal.read_until(b"command terminated with exit code 5"), terminal.output
        assert terminal.wait() == 5
    finally:
        terminal.close()


def test_attach_streams_the_containers_output_until_it_stops(kube: Kube) -> None:
    kube.run("run", "once", "--image=busybox", "--restart=Never", "--",
             "sh", "-c", "sleep 4; echo from-the-container; exit 0")
    wait_until(lambda: kube.run("get", "pod", "once", "-o", "jsonpath={.status.phase}") == "Running",
               what="pod once running")
    done = kubectl(kube, "attach", "once")
    assert done.returncode == 0, done.stderr
    assert "from-the-container" in done.stdout
