"""The kubelet's AtomicWriter (`pkg/volume/util/atomic_writer.go`): how configMap, secret,
downwardAPI and projected volumes are laid out and updated, so a container never sees half an
update and a program can watch one symlink for changes.

A volume directory holds the files of one version in a timestamped directory
``..2026_12_01_15_04_05.123456789/``, a symlink ``..data -> ..2026_…`` to it, and one symlink per
top-level user-visible name into it (``token -> ..data/token``, ``conf -> ..data/conf`` for
``conf/app.yaml``), as ``ls -la /var/run/secrets/kubernetes.io/serviceaccount`` shows in a real pod.
An update writes a whole new timestamped directory, points ``..data_tmp`` at it and renames that
over ``..data`` (the one atomic step), adds and removes the top-level symlinks, then deletes the
old directory; nothing is written when content and modes are unchanged.
"""

from __future__ import annotations

import os
import secrets
import shutil
import time
from pathlib import Path

DATA_DIR = "..data"
NEW_DATA_DIR = "..data_tmp"
MAX_PATH = 4096
MAX_NAME = 255

Payload = dict[str, tuple[bytes, int]]  # user-visible path -> (content, mode)


class PayloadError(ValueError):
    """A payload path the writer refuses (`validatePath`)."""


def validate_path(path: str) -> str:
    """`validatePath`: relative, no ``..`` element, not starting with ``..``, bounded lengths."""
    if not path:
        raise PayloadError(f"invalid path: must not be empty: {path!r}")
    if path.startswith("/"):
        raise PayloadError(f"invalid path: must be relative path: {path}")
    if len(path) > MAX_PATH:
        raise PayloadError(f"invalid path: must be less than or equal to {MAX_PATH} characters")
    items = path.split("/")
    for item in items:
        if item == "..":
            raise PayloadError(f"invalid path: must not contain '..': {path}")
        if len(item) > MAX_NAME:
            raise PayloadError(f"invalid path: filenames must be less than or equal to {MAX_NAME} characters")
    if items[0].startswith("..") and len(items[0]) > 2:
        raise PayloadError(f"invalid path: must not start with '..': {path}")
    return os.path.normpath(path)


def _unchanged(payload: Payload, old: Path) -> bool:
    """Whether the old version holds exactly these files with these contents and modes."""
    present = {str(p.relative_to(old)) for p in old.rglob("*") if p.is_file()}
    if present != set(payload):
        return False
    for rel, (content, mode) in payload.items():
        path = old / rel
        if (path.stat().st_mode & 0o777) != (mode & 0o777) or path.read_bytes() != content:
            return False
    return True


def _timestamp_dir(target: Path) -> Path:
    stamp = time.strftime("..%Y_%m_%d_%H_%M_%S.", time.gmtime())
    while True:
        path = target / f"{stamp}{secrets.randbelow(10**9):09d}"
        try:
            path.mkdir()
        except FileExistsError:
            continue
        os.chmod(path, 0o755)  # group and other may traverse, whatever the umask
        return path


def _remove(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.is_dir():
        shutil.rmtree(path)


def write(target: Path, files: Payload) -> bool:
    """Make ``target`` show exactly ``files``, atomically; False when nothing had to change.
    Raises PayloadError (before touching anything) for a path the kubelet refuses."""
    payload = {validate_path(rel): (content, mode) for rel, (content, mode) in files.items()}
    target.mkdir(parents=True, exist_ok=True)
    os.chmod(target, 0o755)
    link = target / DATA_DIR
    old_name = os.readlink(link) if link.is_symlink() else ""
    old = target / old_name if old_name else None
    visible = {rel.split("/", 1)[0] for rel in payload}
    current = {p.name for p in target.iterdir() if not p.name.startswith("..")}
    in_place = all((target / name).is_symlink() and os.readlink(target / name) == f"{DATA_DIR}/{name}"
                   for name in visible)
    if old is not None and old.is_dir() and current == visible and in_place and _unchanged(payload, old):
        return False
    fresh = _timestamp_dir(target)
    for rel, (content, mode) in payload.items():
        path = fresh / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        os.chmod(path, mode & 0o777)
    for name in visible:  # user-visible links (replacing plain files an older layout left)
        entry = target / name
        if entry.is_symlink() and os.readlink(entry) == f"{DATA_DIR}/{name}":
            continue
        _remove(entry)
        entry.symlink_to(f"{DATA_DIR}/{name}")
    tmp = target / NEW_DATA_DIR
    _remove(tmp)
    tmp.symlink_to(fresh.name)
    os.replace(tmp, link)
    for name in current - visible:
        _remove(target / name)
    for stale in target.iterdir():  # the previous version, and any a crash left behind
        keep = stale.name in (DATA_DIR, fresh.name) or stale.is_symlink()
        if stale.name.startswith("..") and not keep:
            shutil.rmtree(stale, ignore_errors=True)
    return True
