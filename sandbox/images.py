"""The sandbox's images: a catalogue standing in for the machine's local Docker, and the
nodes' image store that the kubelet pulls from.

This reproduces the seed notes' minikube lesson. An image that exists "on your laptop"
(the catalogue) is not automatically on the cluster's nodes: a pod using it fails with
ErrImagePull / ImagePullBackOff until ``python -m sandbox image load NAME[:TAG]`` copies it
onto the nodes (``STATE_DIR/images.json`` records which node holds what), exactly like
``minikube image load``. Nothing is ever pulled from a registry.

An image is what the kubelet needs to run a container under bubblewrap
(`sandbox.kubelet.isolation`): a root filesystem, ENTRYPOINT and CMD, ENV, WORKDIR and USER,
like a Dockerfile's. The images are made from what is on this machine:

- ``lb-demo`` (= ``lb-demo:latest``, also ``v1``), ``lb-demo:v2``, ``lb-demo:v3``: the sample
  backend (``python -m backend_pod``, USER 10001, WORKDIR /app) on the machine's Debian
  ``/usr`` and the machine's Python; v1 and v2 are loaded on first boot, v3 only on request;
- ``busybox``: Debian's busybox-static and nothing else (sh, wget, nc, nslookup, sleep …);
- ``nginx``: Debian's nginx serving its default page on port 80 of the pod's IP;
- ``python``: the machine's Python 3 (``python3`` as CMD) with the project's pinned packages
  (``requirements*.txt``: the official ``kubernetes`` client among them) installed, as an image
  built ``FROM python`` + ``pip install -r requirements.txt`` has them: the sandbox's
  virtualenv's site-packages, bound read-only (`site_packages`);
- ``lb-demo-dashboard``: the dashboard, as ``Dockerfile.dashboard`` builds it (``manage.py``,
  ``dashboard/``, ``servinggate/``, ``k8s/backend.yaml`` in /app, USER 10001, the same CMD)
  on the python image's interpreter and packages; daphne binds the pod IP (``BIND_ADDRESS``).

busybox, nginx and python are public images: as on a real cluster, a node that lacks one pulls
it by itself (from the catalogue: no network). lb-demo exists only "on your laptop": it must
be loaded, which is the lesson.

An image whose software is missing on the machine (nginx or busybox not installed) is listed
as unavailable and cannot be loaded; the error says which Debian package provides it.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import subprocess
import sys
import sysconfig
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from pathlib import Path

from sandbox import statedir

REPO = Path(__file__).resolve().parent.parent
IMAGE_FILES = Path(__file__).resolve().parent / "imagefs"
DEFAULT_LOADED = ("lb-demo:latest", "lb-demo:v2")
BUSYBOX = Path("/bin/busybox")
NGINX = Path("/usr/sbin/nginx")


@cache
def python_interpreter() -> Path:
    """The machine's real Python 3 (not a virtualenv's): what ``python``/``python3`` run in images."""
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    for candidate in (Path(sys.base_prefix) / "bin" / version, Path(sys.base_prefix) / "bin" / "python3"):
        if candidate.exists():
            return candidate.resolve()
    return Path(sys.executable).resolve()


@cache
def site_packages() -> tuple[str, str] | None:
    """(host directory, directory in the container) that gives images with ``packages`` the
    project's Python packages: the sandbox's virtualenv's site-packages, bound read-only over the
    machine interpreter's own site-packages directory (on its sys.path, so no PYTHONPATH is
    needed and a pod's env cannot lose it). None outside a virtualenv (the interpreter's
    packages are already there) or when that interpreter has no site-packages directory."""
    if sys.prefix == sys.base_prefix:
        return None
    venv_site = sysconfig.get_path("purelib")
    try:
        probe = [str(python_interpreter()), "-I", "-c", "import site; print(*site.getsitepackages())"]
        out = subprocess.run(probe, capture_output=True, text=True, timeout=30).stdout.split()
    except OSError:
        return None
    target = next((d for d in out if Path(d).is_dir()), None)
    return (venv_site, target) if target and Path(venv_site).is_dir() else None


@cache
def busybox_applets() -> tuple[str, ...]:
    """The applets of the machine's busybox (empty if it is not installed)."""
    try:
        out = subprocess.run([str(BUSYBOX), "--list"], capture_output=True, text=True, timeout=10).stdout
    except OSError:
        return ()
    return tuple(name for name in out.split() if name and "/" not in name and name != "busybox")


@dataclass(frozen=True)
class Image:
    """One image: its filesystem and how to run it (a Dockerfile's FROM, COPY, ENV, WORKDIR,
    USER, ENTRYPOINT, CMD, EXPOSE)."""

    name: str
    entrypoint: tuple[str, ...] = ()
    cmd: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    working_dir: str = "/"
    user: int = 0
    group: int = 0
    # "debian": the machine's /usr and /etc, read-only; "scratch": only the image's own files.
    base: str = "debian"
    # The image's own layer: (host path, path in the container), bound read-only.
    files: tuple[tuple[str, str], ...] = ()
    python: bool = False  # python and python3 on PATH are the machine's interpreter
    # The project's pinned Python packages (requirements*.txt, the sandbox's virtualenv) are
    # installed in the interpreter's site-packages, as `pip install -r requirements.txt` in a
    # Dockerfile would put them (see `site_packages`).
    packages: bool = False
    busybox: bool = False  # /bin holds busybox and its applets
    exposed: tuple[int, ...] = ()
    requires: tuple[str, ...] = ()  # machine files without which the image cannot exist
    package: str = ""  # the Debian package that provides it
    size: int = 48_234_496
    # A public image (busybox, nginx, python exist on Docker Hub): the kubelet "pulls" it onto
    # its node by itself. lb-demo exists only on this machine: it must be loaded.
    public: bool = False

    @property
    def id(self) -> str:
        """A content digest standing in for the image ID."""
        config = json.dumps(
            {"entrypoint": self.entrypoint, "cmd": self.cmd, "env": self.env, "user": self.user,
             "workdir": self.working_dir, "files": self.files, "base": self.base},
            sort_keys=True,
        )
        return "sha256:" + hashlib.sha256(config.encode()).hexdigest()

    @property
    def repository(self) -> str:
        """``lb-demo`` of ``lb-demo:v2``."""
        return self.name.rsplit(":", 1)[0]

    def missing(self) -> str | None:
        """Why this machine cannot provide the image, or None."""
        for required in self.requires:
            if not Path(required).exists():
                return f"{required} is missing (install Debian's {self.package or 'package'})"
        return None


def _lb_demo(tag: str, version: str, color: str) -> Image:
    return Image(
        f"lb-demo:{tag}",
        entrypoint=("python", "-m", "backend_pod"),
        env={"PYTHONDONTWRITEBYTECODE": "1", "PYTHONUNBUFFERED": "1", "VERSION": version, "COLOR": color},
        working_dir="/app",
        user=10001,
        group=10001,
        files=((str(REPO / "backend_pod"), "/app/backend_pod"),),
        python=True,
        exposed=(8080,),
    )


# Dockerfile.dashboard's COPY lines and CMD, with two differences: daphne binds the pod's IP
# (pods share the host network) and runs as `python -m daphne` (the packages come without their
# console scripts).
DASHBOARD_FILES = ("manage.py", "dashboard", "servinggate", "k8s/backend.yaml")
DASHBOARD_CMD = ("sh", "-c", "python manage.py migrate --noinput && exec python -m daphne "
                 "-b ${BIND_ADDRESS:-0.0.0.0} -p 8000 dashboard.asgi:application")

CATALOGUE: dict[str, Image] = {
    image.name: image
    for image in (
        _lb_demo("latest", "v1", "#2563eb"),
        _lb_demo("v1", "v1", "#2563eb"),
        _lb_demo("v2", "v2", "#16a34a"),
        _lb_demo("v3", "v3", "#db2777"),
        Image("busybox:latest", cmd=("sh",), base="scratch", busybox=True, env={"PATH": "/bin"},
              requires=(str(BUSYBOX),), package="busybox-static", size=1_166_848, public=True),
        Image("nginx:latest", entrypoint=("/docker-entrypoint.sh",), cmd=("nginx", "-g", "daemon off;"),
              files=((str(IMAGE_FILES / "nginx" / "docker-entrypoint.sh"), "/docker-entrypoint.sh"),
                     (str(IMAGE_FILES / "nginx" / "nginx.conf"), "/docker-entrypoint.d/nginx.conf")),
              exposed=(80,), requires=(str(NGINX),), package="nginx", size=67_108_864, public=True),
        Image("python:latest", cmd=("python3",), env={"LANG": "C.UTF-8"}, python=True, packages=True,
              size=52_428_800, public=True),
        Image("lb-demo-dashboard:latest", cmd=DASHBOARD_CMD, working_dir="/app", user=10001, group=10001,
              env={"PYTHONDONTWRITEBYTECODE": "1", "PYTHONUNBUFFERED": "1",
                   "DJANGO_SETTINGS_MODULE": "dashboard.settings_production"},
              files=tuple((str(REPO / path), f"/app/{path}") for path in DASHBOARD_FILES),
              python=True, packages=True, exposed=(8000,), size=157_286_400),
    )
}
_PY_TAG = f"python:{sys.version_info.major}.{sys.version_info.minor}"
ALIASES = {"python:3": "python:latest", _PY_TAG: "python:latest"}


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


def catalogue_image(ref: str) -> Image | None:
    """The catalogue's image for a reference (aliases such as ``python:3`` included)."""
    name = normalize(ref)
    return CATALOGUE.get(ALIASES.get(name, name))


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
    """The nodes' loaded images, persisted in ``STATE_DIR/images.json`` (safe across processes):
    ``{"nodes": [names], "images": {name: {id, size, loadedAt, nodes: [names]}}}``."""

    def __init__(self, state_dir: Path) -> None:
        self.path = statedir.images(state_dir)
        self._cache: tuple[float, dict] | None = None

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_suffix(".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    def _read_all(self) -> dict:
        try:
            mtime = self.path.stat().st_mtime_ns
        except FileNotFoundError:
            return {}
        if self._cache and self._cache[0] == mtime:
            return self._cache[1]
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}
        data = data if isinstance(data, dict) else {}
        self._cache = (mtime, data)
        return data

    def _read(self) -> dict[str, dict]:
        images = self._read_all().get("images")
        return images if isinstance(images, dict) else {}

    def nodes(self) -> list[str]:
        """The nodes this sandbox has (as registered by its last start)."""
        nodes = self._read_all().get("nodes")
        return [str(n) for n in nodes] if isinstance(nodes, list) else []

    def _write(self, data: dict) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True))
        os.replace(tmp, self.path)

    def register_nodes(self, nodes: list[str]) -> None:
        """Record the sandbox's nodes; a node seen for the first time gets the default images
        (a fresh node of a real cluster has none: these stand for the images minikube ships)."""
        with self._locked():
            data = dict(self._read_all())
            known = set(data.get("nodes") or [])
            first_boot = not self.path.exists()
            data["nodes"] = list(nodes)
            images = {k: dict(v) for k, v in (data.get("images") or {}).items()}
            for entry in images.values():
                entry.setdefault("nodes", sorted(known) if known else list(nodes))
            new_nodes = [n for n in nodes if n not in known]
            if first_boot or new_nodes:
                for name in DEFAULT_LOADED:
                    image = CATALOGUE[name]
                    entry = images.setdefault(name, self._entry(image, []))
                    entry["nodes"] = sorted(set(entry.get("nodes") or []) | set(new_nodes or nodes))
            data["images"] = images
            self._write(data)

    @staticmethod
    def _entry(image: Image, nodes: list[str]) -> dict:
        return {"id": image.id, "size": image.size,
                "loadedAt": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), "nodes": sorted(nodes)}

    def load(self, ref: str, *, nodes: list[str] | None = None) -> Image:
        """Copy an image from the catalogue onto the nodes (``image load``), every node by default."""
        image = catalogue_image(ref)
        if image is None:
            known = ", ".join(sorted(CATALOGUE))
            raise ImageError(f"image {ref!r} not found in the local image catalogue (known: {known})")
        why = image.missing()
        if why:
            raise ImageError(f"image {image.name} is not available on this machine: {why}")
        with self._locked():
            data = dict(self._read_all())
            targets = nodes or data.get("nodes") or []
            unknown = [n for n in targets if data.get("nodes") and n not in data["nodes"]]
            if unknown:
                raise ImageError(f"no node named {unknown[0]} (nodes: {', '.join(data['nodes'])})")
            images = {k: dict(v) for k, v in (data.get("images") or {}).items()}
            before = set((images.get(image.name) or {}).get("nodes") or [])
            images[image.name] = self._entry(image, sorted(before | set(targets)))
            data["images"] = images
            self._write(data)
        return image

    def ensure_defaults(self) -> None:
        """On first boot, load the images the sample manifests use (onto the registered nodes)."""
        if not self.path.exists():
            self.register_nodes(self.nodes())

    def in_catalogue(self, ref: str) -> bool:
        """Whether ``image load ref`` can succeed: in the catalogue and available here."""
        try:
            image = catalogue_image(ref)
        except ImageError:
            return False
        return image is not None and image.missing() is None

    def lookup(self, ref: str, *, node: str | None = None) -> Image | None:
        """The loaded image ``ref`` refers to, or None if it is not on the node."""
        try:
            image = catalogue_image(ref)
        except ImageError:
            return None
        if image is None:
            return None
        entry = self._read().get(image.name)
        if entry is None:
            return None
        holders = entry.get("nodes")
        if node is not None and isinstance(holders, list) and holders and node not in holders:
            return None
        return image

    def list(self) -> list[tuple[str, dict]]:
        """Loaded images with their metadata, sorted by name."""
        return sorted(self._read().items())
