"""The kubelet's AtomicWriter layout (`sandbox/kubelet/atomicwriter.py`): what `ls -la` of a
configMap/secret/projected volume shows in a real pod, and updates that swap one symlink."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from sandbox.kubelet import atomicwriter


def listing(target: Path) -> dict[str, str]:
    """name -> symlink target ('' for a plain entry), as `ls -la` would show it."""
    return {p.name: os.readlink(p) if p.is_symlink() else "" for p in target.iterdir()}


def test_files_live_in_a_timestamped_directory_behind_data_and_visible_symlinks(tmp_path: Path) -> None:
    target = tmp_path / "kube-api-access-x1y2z"
    files = {"token": (b"jwt", 0o644), "ca.crt": (b"pem", 0o644), "namespace": (b"default", 0o644),
             "conf/app.yaml": (b"a: 1", 0o600)}
    assert atomicwriter.write(target, files)
    shown = listing(target)
    data_dir = shown.pop("..data")
    assert shown.pop(data_dir) == "" and data_dir.startswith("..20")
    assert shown == {"token": "..data/token", "ca.crt": "..data/ca.crt", "namespace": "..data/namespace",
                     "conf": "..data/conf"}
    assert (target / "token").read_bytes() == b"jwt"
    assert (target / "conf" / "app.yaml").read_bytes() == b"a: 1"
    assert (target / data_dir / "conf" / "app.yaml").stat().st_mode & 0o777 == 0o600
    assert (target / data_dir).stat().st_mode & 0o777 == 0o755
    assert not atomicwriter.write(target, dict(files))
    assert os.readlink(target / "..data") == data_dir  # nothing changed, nothing written


def test_an_update_swaps_data_and_prunes_old_names_and_the_old_version(tmp_path: Path) -> None:
    target = tmp_path / "config"
    atomicwriter.write(target, {"greeting": (b"hello", 0o644), "old": (b"x", 0o644)})
    first = os.readlink(target / "..data")
    assert atomicwriter.write(target, {"greeting": (b"bonjour", 0o644), "new": (b"y", 0o644)})
    second = os.readlink(target / "..data")
    assert second != first
    assert sorted(listing(target)) == sorted(["..data", second, "greeting", "new"])
    assert (target / "greeting").read_bytes() == b"bonjour"
    # a mode change alone is a new version too
    assert atomicwriter.write(target, {"greeting": (b"bonjour", 0o400), "new": (b"y", 0o644)})


def test_a_reader_never_sees_half_an_update(tmp_path: Path) -> None:
    """Two files always change together: a reader going through ..data sees both old or both new."""
    target = tmp_path / "pair"
    atomicwriter.write(target, {"a": (b"0", 0o644), "b": (b"0", 0o644)})
    torn: list[tuple[bytes, bytes]] = []
    done = threading.Event()

    def reader() -> None:
        while not done.is_set():
            try:
                version = os.readlink(target / "..data")
                pair = ((target / version / "a").read_bytes(), (target / version / "b").read_bytes())
            except FileNotFoundError:
                continue  # that version was removed between the readlink and the read
            if pair[0] != pair[1]:
                torn.append(pair)

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for i in range(1, 200):
            atomicwriter.write(target, {"a": (str(i).encode(), 0o644), "b": (str(i).encode(), 0o644)})
    finally:
        done.set()
        thread.join(10)
    assert torn == []
    assert (target / "a").read_bytes() == (target / "b").read_bytes() == b"199"


def test_plain_files_of_an_older_layout_become_links(tmp_path: Path) -> None:
    target = tmp_path / "secret"
    target.mkdir()
    (target / "password").write_bytes(b"old")
    (target / "gone").write_bytes(b"x")
    atomicwriter.write(target, {"password": (b"s3cret", 0o644)})
    assert os.readlink(target / "password") == "..data/password"
    assert not (target / "gone").exists()
    assert (target / "password").read_bytes() == b"s3cret"


@pytest.mark.parametrize(("path", "message"), [
    ("/etc/passwd", "invalid path: must be relative path: /etc/passwd"),
    ("a/../../b", "invalid path: must not contain '..': a/../../b"),
    ("..data/x", "invalid path: must not start with '..': ..data/x"),
    ("", "invalid path: must not be empty: ''"),
])
def test_paths_the_kubelet_refuses_change_nothing(tmp_path: Path, path: str, message: str) -> None:
    target = tmp_path / "v"
    atomicwriter.write(target, {"ok": (b"1", 0o644)})
    before = listing(target)
    with pytest.raises(atomicwriter.PayloadError) as refused:
        atomicwriter.write(target, {path: (b"x", 0o644), "ok": (b"2", 0o644)})
    assert str(refused.value) == message
    assert listing(target) == before and (target / "ok").read_bytes() == b"1"
