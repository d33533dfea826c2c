"""`/healthz`, `/livez` and `/readyz` as kube-apiserver serves them (`k8s.io/apiserver/pkg/server/
healthz`): `ok`, or with `?verbose` one `[+]<check> ok` line per check and `<name> check passed`;
`?exclude=<check>` skips a check (`[+]<check> excluded: ok`, and a `warn:` line naming excludes
that match nothing); `/<endpoint>/<check>` runs one check; a failing check makes the endpoint
answer 500 with `[-]<check> failed: reason withheld` (these endpoints are public).

The checks are the real ones' names for what the sandbox has: the store (`etcd`), start-up
objects (`poststarthook/rbac/bootstrap-roles`, `poststarthook/bootstrap-controller`), and for
readiness whether the server is shutting down (`shutdown`)."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from multidict import MultiMapping

    from sandbox.apiserver.server import ApiServer

Check = Callable[["ApiServer"], str | None]  # an error message, or None when healthy


def _ok(_: ApiServer) -> str | None:
    return None


def etcd_check(server: ApiServer) -> str | None:
    """The store answers (the `etcd` check; also ComponentStatus etcd-0)."""
    return None if server.store.is_open else "the object store is not open"


def _bootstrapped(server: ApiServer) -> str | None:
    return None if server.bootstrapped else "not finished"


def _shutdown(server: ApiServer) -> str | None:
    return "process is shutting down" if server.shutting_down else None


LIVE: dict[str, Check] = {
    "ping": _ok,
    "log": _ok,
    "etcd": etcd_check,
    "poststarthook/start-apiserver-admission-initializer": _ok,
    "poststarthook/generic-apiserver-start-informers": _ok,
    "poststarthook/rbac/bootstrap-roles": _bootstrapped,
    "poststarthook/bootstrap-controller": _bootstrapped,
}
READY: dict[str, Check] = {
    **{name: check for name, check in LIVE.items() if name in ("ping", "log", "etcd")},
    "etcd-readiness": etcd_check,
    "informer-sync": _ok,
    **{name: check for name, check in LIVE.items() if name.startswith("poststarthook/")},
    "shutdown": _shutdown,
}
ENDPOINTS: Mapping[str, dict[str, Check]] = {"healthz": LIVE, "livez": LIVE, "readyz": READY}
TEXT = "text/plain"


def is_health_path(path: str) -> bool:
    """Whether ``path`` is one of the public health endpoints or one of their checks."""
    return path.strip("/").split("/", 1)[0] in ENDPOINTS


def respond(server: ApiServer, path: str, query: MultiMapping[str]) -> web.Response:
    """Answer a health request (`handleRootHealth` / `adaptCheckToHandler`)."""
    name, _, single = path.strip("/").partition("/")
    checks = ENDPOINTS[name]
    headers = {"X-Content-Type-Options": "nosniff"}
    if single:
        check = checks.get(single)
        if check is None:
            return web.Response(status=404, text="404 page not found\n", content_type=TEXT, headers=headers)
        failure = check(server)
        if failure is not None:
            return web.Response(status=500, text=f"internal server error: {failure}\n", content_type=TEXT,
                                headers=headers)
        return web.Response(text="ok", content_type=TEXT, headers=headers)
    excluded = set(query.getall("exclude", []))
    lines, failed = [], False
    for check_name, check in checks.items():
        if check_name in excluded:
            excluded.discard(check_name)
            lines.append(f"[+]{check_name} excluded: ok")
        elif check(server) is not None:
            failed = True
            lines.append(f"[-]{check_name} failed: reason withheld")
        else:
            lines.append(f"[+]{check_name} ok")
    if excluded:
        quoted = ",".join(json.dumps(e) for e in sorted(excluded))
        lines.append(f"warn: some health checks cannot be excluded: no matches for {quoted}")
    if failed:
        return web.Response(status=500, text="\n".join(lines) + f"\n{name} check failed\n", content_type=TEXT,
                            headers=headers)
    if "verbose" not in query:
        return web.Response(text="ok", content_type=TEXT, headers=headers)
    text = "\n".join(lines) + f"\n{name} check passed\n"
    return web.Response(text=text, content_type=TEXT, headers=headers)
