"""Container isolation: every container runs under bubblewrap (the sandbox's OCI runtime).

A container gets its own mount, PID, UTS and IPC namespaces (``bwrap --unshare-pid
--unshare-ipc --unshare-uts``); the network stays the host's, so pods keep their loopback IPs
and the Service proxy is unchanged. Inside:

- the hostname is the pod's name; ``ps`` shows only the container's processes (its command is
  PID 1, as in a container runtime: a PID 1 without a SIGTERM handler ignores SIGTERM and is
  killed when the grace period ends);
- the root filesystem is a private tmpfs — the container's writable layer, gone when the
  container exits — with the image's layers bound read-only: the machine's ``/usr`` and
  ``/etc`` for Debian-based images, only busybox for ``busybox``, plus the image's own files;
  ``/tmp``, ``/run`` and ``/var/tmp`` are writable and private;
- the pod's ``/etc/hosts``, ``/etc/hostname`` and ``/etc/resolv.conf`` are the kubelet's
  (read-only); nothing else of the host is visible: not the repository, not the sandbox's
  state directory, not the API token, not another pod's files.

Identity: when the sandbox runs as root, the container runs as ``securityContext.runAsUser``
if set, else the image's USER — and an image whose USER is root runs as ``nobody`` (65534):
the sandbox never gives a container the host's root unless the pod asks for ``runAsUser: 0``
(then with Docker's default capabilities minus NET_RAW, MKNOD, AUDIT_WRITE, SETFCAP and
SYS_CHROOT). Every container keeps CAP_NET_BIND_SERVICE, so nginx can listen on port 80 of its
pod IP; ``no_new_privs`` is always set (setuid binaries of the host grant nothing).
``runAsNonRoot`` is verified like the kubelet does, with its messages. When the sandbox runs
as an ordinary user, bubblewrap uses a user namespace instead: the container runs as that
user (``runAsUser`` is mapped onto it), and ports below 1024 cannot be bound.

It is not a security boundary against a hostile kernel exploit: the kernel is shared.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sandbox.images import Image, busybox_applets, python_interpreter, site_packages

Obj = dict[str, Any]

NOBODY = 65534
BWRAP = "bwrap"
SETPRIV = "setpriv"
NSENTER = "nsenter"
# Docker's default capabilities for a root container, minus the ones a tutorial never needs.
ROOT_CAPS = ("chown", "dac_override", "fowner", "fsetid", "kill", "setgid", "setuid", "setpcap",
             "net_bind_service")
USER_CAPS = ("net_bind_service",)
HOST_ROOT_DIRS = ("bin", "lib", "lib32", "lib64", "libx32", "sbin")


class ConfigError(Exception):
    """The container cannot be configured (the kubelet's CreateContainerConfigError)."""


def setpriv_path() -> str:
    """util-linux's setpriv, by absolute path (a busybox image has its own, lesser, setpriv)."""
    return shutil.which(SETPRIV, path="/usr/bin:/bin:/usr/sbin:/sbin") or "/usr/bin/setpriv"


def host_is_root() -> bool:
    """The sandbox runs as root: containers switch to their own uid with setpriv."""
    return os.geteuid() == 0


def unavailable() -> str | None:
    """Why containers cannot be isolated on this machine (and how to fix it), or None."""
    missing = [tool for tool in (BWRAP, SETPRIV, NSENTER) if shutil.which(tool) is None]
    if missing:
        return (f"{', '.join(missing)} not found: the sandbox runs every container under bubblewrap. "
                "Install it with `apt-get install bubblewrap util-linux` (make demo and make test do "
                "this when they can)")
    argv = [BWRAP, "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--die-with-parent",
            *([] if host_is_root() else ["--unshare-user"]),
            "--ro-bind", "/", "/", "--proc", "/proc", "--dev", "/dev", "true"]
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"bubblewrap cannot run here ({exc})"
    if proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        return (f"bubblewrap cannot create namespaces here ({detail[0]}). Run the sandbox as root, or "
                "allow unprivileged user namespaces: `sysctl -w kernel.unprivileged_userns_clone=1` "
                "(Debian) or `sysctl -w kernel.apparmor_restrict_unprivileged_userns=0` (Ubuntu 24.04); "
                "in a container, run it with --privileged or a seccomp profile that allows unshare")
    return None


@dataclass(frozen=True)
class Identity:
    """Who the container's processes are."""

    uid: int
    gid: int
    groups: tuple[int, ...] = ()


def _format_pod(pod: Obj) -> str:
    """The kubelet's ``format.Pod``: ``name_namespace(uid)``."""
    meta = pod.get("metadata") or {}
    return f"{meta.get('name')}_{meta.get('namespace')}({meta.get('uid')})"


def effective_security_context(pod: Obj, container: Obj) -> Obj:
    """``DetermineEffectiveSecurityContext``: the container's fields override the pod's."""
    pod_sc = (pod.get("spec") or {}).get("securityContext") or {}
    ctr_sc = container.get("securityContext") or {}
    out = {k: pod_sc[k] for k in ("runAsUser", "runAsGroup", "runAsNonRoot") if pod_sc.get(k) is not None}
    out.update({k: v for k, v in ctr_sc.items() if v is not None})
    return out


def resolve_identity(pod: Obj, container: Obj, image: Image) -> Identity:
    """The container's uid, gid and groups; ConfigError with the kubelet's message when
    runAsNonRoot cannot be honoured."""
    sc = effective_security_context(pod, container)
    run_as_user = sc.get("runAsUser")
    if sc.get("runAsNonRoot"):
        name = container.get("name", "")
        if run_as_user is not None:
            if int(run_as_user) == 0:
                raise ConfigError("container's runAsUser breaks non-root policy "
                                  f"(pod: \"{_format_pod(pod)}\", container: {name})")
        elif image.user == 0:
            raise ConfigError(f"container has runAsNonRoot and image will run as root (pod: "
                              f"\"{_format_pod(pod)}\", container: {name})")
    if run_as_user is not None:
        uid = int(run_as_user)
        gid = int(sc["runAsGroup"]) if sc.get("runAsGroup") is not None else (
            image.group if uid == image.user else uid)
    else:
        uid = image.user or NOBODY
        gid = int(sc["runAsGroup"]) if sc.get("runAsGroup") is not None else (image.group or uid)
    pod_sc = (pod.get("spec") or {}).get("securityContext") or {}
    groups = [int(g) for g in pod_sc.get("supplementalGroups") or []]
    if pod_sc.get("fsGroup") is not None:
        groups.append(int(pod_sc["fsGroup"]))
    return Identity(uid, gid, tuple(sorted(set(groups))))


def home_of(identity: Identity) -> str:
    """HOME the runtime sets: /root for root, else /."""
    return "/root" if identity.uid == 0 else "/"


def _parents(path: str) -> list[str]:
    parts = Path(path).parts[1:-1]
    return ["/" + "/".join(parts[: i + 1]) for i in range(len(parts))]


def _dirs(argv: list[str], path: str, made: set[str]) -> None:
    """Create ``path``'s missing parents in the container, world-traversable."""
    for parent in _parents(path):
        if parent not in made:
            made.add(parent)
            argv += ["--perms", "0755", "--dir", parent]


def _under(path: str, roots: tuple[str, ...]) -> bool:
    return any(path == r or path.startswith(r.rstrip("/") + "/") for r in roots)


@dataclass(frozen=True)
class Mount:
    """A host path in the container (``read_only`` or writable)."""

    source: str
    target: str
    read_only: bool = True


def sandbox_argv(
    *,
    image: Image,
    hostname: str,
    identity: Identity,
    workdir: str,
    mounts: list[Mount],
    info_fd: int,
    command: list[str],
) -> list[str]:
    """The bubblewrap command line that runs ``command`` as one isolated container."""
    argv = [BWRAP, "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--hostname", hostname,
            "--die-with-parent", "--as-pid-1", "--info-fd", str(info_fd)]
    root = host_is_root()
    if not root:
        argv += ["--unshare-user", "--uid", str(identity.uid), "--gid", str(identity.gid)]
    argv += ["--perms", "0755", "--tmpfs", "/"]
    made: set[str] = {"/"}
    bound: list[str] = []
    if image.base == "debian":
        argv += ["--ro-bind", "/usr", "/usr", "--ro-bind", "/etc", "/etc"]
        bound += ["/usr", "/etc"]
        for name in HOST_ROOT_DIRS:
            host = Path("/") / name
            if host.is_symlink():
                argv += ["--symlink", os.readlink(host), f"/{name}"]
            elif host.is_dir():
                argv += ["--ro-bind", str(host), f"/{name}"]
                bound.append(f"/{name}")
    else:
        # A scratch image has no /etc or /bin of its own making; the machine's /usr is there
        # read-only only because the runtime's helper (setpriv) lives in it.
        argv += ["--perms", "0755", "--dir", "/etc", "--ro-bind", "/usr", "/usr"]
        bound.append("/usr")
        for name in ("lib", "lib32", "lib64", "libx32"):
            host = Path("/") / name
            if host.is_symlink():
                argv += ["--symlink", os.readlink(host), f"/{name}"]
            elif host.is_dir():
                argv += ["--ro-bind", str(host), f"/{name}"]
                bound.append(f"/{name}")
    made.update({"/etc", "/usr"})
    argv += ["--proc", "/proc", "--dev", "/dev", "--perms", "1777", "--tmpfs", "/tmp",
             "--perms", "0755", "--dir", "/var", "--perms", "1777", "--dir", "/var/tmp",
             "--perms", "1777", "--dir", "/run"]
    made.update({"/var", "/var/tmp", "/run", "/tmp", "/proc", "/dev"})
    if image.busybox:
        argv += ["--perms", "0755", "--dir", "/bin", "--ro-bind", "/bin/busybox", "/bin/busybox"]
        for applet in busybox_applets():
            argv += ["--symlink", "busybox", f"/bin/{applet}"]
        made.add("/bin")
    if image.python:
        python = str(python_interpreter())
        prefix = str(Path(python).parent.parent)
        if not _under(prefix, ("/usr",)):
            _dirs(argv, prefix + "/x", made)
            argv += ["--ro-bind", prefix, prefix]
        if Path("/usr/local/bin").is_dir() and image.base == "debian":
            argv += ["--tmpfs", "/usr/local/bin", "--symlink", python, "/usr/local/bin/python",
                     "--symlink", python, "/usr/local/bin/python3"]
    packages = site_packages() if image.python and image.packages else None
    if packages is not None:
        argv += ["--ro-bind", *packages]
    for source, target in image.files:
        _dirs(argv, target, made)
        argv += ["--ro-bind", source, target]
    for mount in mounts:
        if not _under(mount.target, tuple(bound)):
            _dirs(argv, mount.target, made)
        argv += ["--ro-bind" if mount.read_only else "--bind", mount.source, mount.target]
    if workdir != "/" and not _under(workdir, (*bound, *(m.target for m in mounts),
                                               *(t for _, t in image.files))):
        _dirs(argv, workdir + "/x", made)
    argv += ["--chdir", workdir]
    if root:
        caps = ROOT_CAPS if identity.uid == 0 else USER_CAPS
        plus = ",".join(f"+{c}" for c in caps)
        argv += ["--", setpriv_path(), "--reuid", str(identity.uid), "--regid", str(identity.gid),
                 *_groups(identity), f"--inh-caps=-all,{plus}", f"--ambient-caps={plus}",
                 # Changing the uid clears the parent-death signal bwrap set: set it again, so the
                 # container dies with its bwrap whoever kills that.
                 f"--bounding-set=-all,{plus}", "--no-new-privs", "--pdeathsig", "SIGKILL", "--"]
    else:
        argv += ["--"]
    return argv + command


def exec_argv(*, init_pid: int, identity: Identity, workdir: str, command: list[str]) -> list[str]:
    """A command run inside a running container's namespaces (exec probes, preStop, kubectl exec)."""
    # --root/--wd without a value: the container's root and cwd (a path given to --wd would be
    # opened on the host); env -C then moves to the container's workingDir inside it.
    argv = [NSENTER, "--target", str(init_pid), "--mount", "--uts", "--ipc", "--pid", "--root", "--wd"]
    chdir = ["/usr/bin/env", "-C", workdir]
    if not host_is_root():
        return [*argv, "--user", "--preserve-credentials", "--", *chdir, *command]
    plus = ",".join(f"+{c}" for c in (ROOT_CAPS if identity.uid == 0 else USER_CAPS))
    return [*argv, "--", *chdir, setpriv_path(), "--reuid", str(identity.uid), "--regid", str(identity.gid),
            *_groups(identity), f"--inh-caps=-all,{plus}", f"--ambient-caps={plus}",
            f"--bounding-set=-all,{plus}", "--no-new-privs", "--", *command]


def _groups(identity: Identity) -> list[str]:
    return ["--groups", ",".join(map(str, identity.groups))] if identity.groups else ["--clear-groups"]


def command_missing(command: str, image: Image, path: str, mounts: list[Mount]) -> str | None:
    """containerd's ``exec: "x": executable file not found in $PATH`` (or ``stat x: no such
    file or directory``) when the command cannot exist in the container's filesystem, else None."""
    def exists(target: str) -> bool:
        for mount in mounts:
            if _under(target, (mount.target,)):
                return Path(mount.source, os.path.relpath(target, mount.target)).exists()
        for source, dest in image.files:
            if _under(target, (dest,)):
                return Path(source, os.path.relpath(target, dest)).exists()
        name = Path(target).name
        directory = str(Path(target).parent)
        applet = name == "busybox" or name in busybox_applets()
        if image.busybox and directory in ("/bin", "/usr/bin") and applet:
            return True
        if image.python and directory == "/usr/local/bin" and name in ("python", "python3"):
            return True
        if image.base == "debian" and _under(target, ("/usr", "/etc", *(f"/{d}" for d in HOST_ROOT_DIRS))):
            return os.path.exists(target)
        return False

    if "/" in command:
        return None if exists(command) else f"stat {command}: no such file or directory"
    if any(exists(f"{d or '.'}/{command}") for d in path.split(":") if d.startswith("/")):
        return None
    return f'"{command}": executable file not found in $PATH'

