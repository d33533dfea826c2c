"""The sandbox's images: a catalogue standing in for the machine's local Docker, and the
node's image store that the kubelet pulls from.

This reproduces the seed notes' minikube lesson. An image that exists "on your laptop"
(the catalogue) is not automatically on the cluster's node: a pod using it fails with
ErrImagePull / ImagePullBackOff until ``python -m sandbox image load NAME[:TAG]`` copies it
into the node's store (``STATE_DIR/images.json``), exactly like ``minikube image load``.

An image here is what the kubelet needs to start a container: an entrypoint (``python -m
backend_pod``) and environment defaults (VERSION, COLOR), like a Dockerfile's CMD and ENV.
`lb-demo` (= `lb-demo:latest`, also tagged `v1`) and `lb-demo:v2` are loaded on first boot;
`lb-demo:v3` is in the catalogue only.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from sandbox import statedir

DEFAULT_LOADED = ("lb-demo:latest", "lb-demo:v2")


@dataclass(frozen=True)
class Image:
    """One image: how to run it and what it sets in the environment."""

    name: str
    entrypoint: tuple[str, ...]
    env: dict[str, str] = field(default_factory=dict)
    size: int = 48_234_496

    @property
    def id(self) -> str:
        """A content digest standing in for the image ID."""
        config = json.dumps({"entrypoint": self.entrypoint, "env": self.env}, sort_keys=True)
        return "sha256:" + hashlib.sha256(config.encode()).hexdigest()

    def command(self) -> list[str]:
        """argv of the entrypoint; ``python`` is this interpreter."""
        return [sys.executable if arg in ("python", "python3") else arg for arg in self.entrypoint]


_BACKEND = ("python", "-m", "backend_pod")
REPO = Path(__file__).resolve().parent.parent
# Dockerfile.backend's ENV, plus where the backend_pod package is.
_PY_ENV = {"PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1", "PYTHONDONTWRITEBYTECODE": "1"}
CATALOGUE: dict[str, Image] = {
    "lb-demo:latest": Image("lb-demo:latest", _BACKEND, {**_PY_ENV, "VERSION": "v1", "COLOR": "#2563eb"}),
    "lb-demo:v1": Image("lb-demo:v1", _BACKEND, {**_PY_ENV, "VERSION": "v1", "COLOR": "#2563eb"}),
    "lb-demo:v2": Image("lb-demo:v2", _BACKEND, {**_PY_ENV, "VERSION": "v2", "COLOR": "#16a34a"}),
    "lb-demo:v3": Image("lb-demo:v3", _BACKEND, {**_PY_ENV, "VERSION": "v3", "COLOR": "#db2777"}),
}


class ImageError(Exception):
    """Every error of the image path: a reference that does not parse, an image that is not in
    the catalogue, a store that cannot be read. The kubelet catches this one class."""


class InvalidReference(ImageError):
    """A reference the distribution grammar rejects (the kubelet's InvalidImageName)."""


# github.com/distribution/reference's grammar: [domain/]path[:tag][@digest].
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_DOMAIN_PART = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = rf"(?:{_DOMAIN_PART}(?:\.{_DOMAIN_PART})*|\[[0-9a-fA-F:.]+\])(?::[0-9]+)?"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
_REFERENCE = re.compile(
    rf"^(?P<name>(?:{_DOMAIN}/)?{_COMPONENT}(?:/{_COMPONENT})*)(?::(?P<tag>{_TAG}))?(?:@(?P<digest>{_DIGEST}))?$"
)
NAME_TOTAL_LENGTH_MAX = 255


def parse_reference(ref: str) -> str:
    """Validate ``ref`` like ``reference.ParseNormalizedNamed``; InvalidReference with the
    kubelet's wording (``couldn't parse image reference "x": invalid reference format``)."""
    def invalid(detail: str = "invalid reference format") -> InvalidReference:
        return InvalidReference(f"couldn't parse image reference {json.dumps(ref)}: {detail}")

    if not isinstance(ref, str) or not ref:
        raise invalid()
    match = _REFERENCE.match(ref)
    if match is None:
        if _REFERENCE.match(ref.lower()):  # only the repository path may not hold capitals
            raise invalid("invalid reference format: repository name must be lowercase")
        raise invalid()
    if len(match.group("name")) > NAME_TOTAL_LENGTH_MAX:
        raise invalid("repository name must not be more than 255 characters")
    return ref


def normalize(ref: str) -> str:
    """``lb-demo`` -> ``lb-demo:latest``; ``docker.io/library/x:t`` -> ``x:t``; InvalidReference
    for what no container runtime would accept (``lb-demo:bad tag``, ``Lb-Demo``)."""
    parse_reference(ref)
    for prefix in ("docker.io/library/", "index.docker.io/library/", "docker.io/", "library/"):
        if ref.startswith(prefix):
            ref = ref[len(prefix) :]
    last = ref.rsplit("/", 1)[-1]
    if "@" not in last and ":" not in last:
        ref += ":latest"
    return ref


def sandbox_image_store(state_dir: Path) -> ImageStore:
    """The image store of the sandbox whose state lives in ``state_dir``, running or stopped
    (loading before the first start after a boot is legitimate); an ImageError when no sandbox
    ever ran there, so `image load` cannot silently fill a directory no sandbox reads."""
    if not statedir.store(state_dir).is_file():
        raise ImageError(
            f"no sandbox state in {state_dir} (start one with: python -m sandbox up --state-dir {state_dir})"
        )
    return ImageStore(state_dir)


class ImageStore:
    """The node's loaded images, persisted in ``STATE_DIR/images.json`` (safe across processes)."""

    def __init__(self, state_dir: Path) -> None:
        self.path = statedir.images(state_dir)
        self._cache: tuple[float, dict[str, dict]] | None = None

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_suffix(".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    def _read(self) -> dict[str, dict]:
        try:
            mtime = self.path.stat().st_mtime
        except FileNotFoundError:
            return {}
        if self._cache and self._cache[0] == mtime:
            return self._cache[1]
        try:
            data = json.loads(self.path.read_text()).get("images", {})
        except (OSError, ValueError):
            return {}
        self._cache = (mtime, data)
        return data

    def _write(self, images: dict[str, dict]) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"images": images}, indent=2, sort_keys=True))
        os.replace(tmp, self.path)

    def load(self, ref: str) -> Image:
        """Copy an image from the catalogue into the node (``image load``)."""
        name = normalize(ref)
        image = CATALOGUE.get(name)
        if image is None:
            known = ", ".join(sorted(CATALOGUE))
            raise ImageError(f"image {ref!r} not found in the local image catalogue (known: {known})")
        with self._locked():
            images = dict(self._read())
            images[name] = {
                "id": image.id,
                "size": image.size,
                "loadedAt": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            }
            self._write(images)
        return image

    def ensure_defaults(self) -> None:
        """On first boot, load the images the sample manifests use."""
        with self._locked():
            if self.path.exists():
                return
        for name in DEFAULT_LOADED:
            self.load(name)

    def in_catalogue(self, ref: str) -> bool:
        """Whether ``image load ref`` can succeed."""
        try:
            return normalize(ref) in CATALOGUE
        except ImageError:
            return False

    def lookup(self, ref: str, *, node: str | None = None) -> Image | None:
        """The loaded image ``ref`` refers to, or None if it is not on the node."""
        try:
            name = normalize(ref)
        except ImageError:
            return None
        if name not in self._read():
            return None
        return CATALOGUE.get(name)

    def list(self) -> list[tuple[str, dict]]:
        """Loaded images with their metadata, sorted by name."""
        return sorted(self._read().items())
