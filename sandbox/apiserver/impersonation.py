"""User impersonation (`Impersonate-*` headers), kube-apiserver's
`k8s.io/apiserver/pkg/endpoints/filters/impersonation.go`.

`kubectl --as=USER [--as-group=G]... [--as-uid=U]` (and so `kubectl auth can-i --as=…`) sends
`Impersonate-User`, `Impersonate-Group`, `Impersonate-Uid` and `Impersonate-Extra-<key>`. Each
one is authorized for the requesting user as the verb `impersonate` on `users`, `groups`,
`uids`, `userextras/<key>` or, for `system:serviceaccount:<ns>:<name>`, on the
ServiceAccount `serviceaccounts/<name>` in `<ns>` — a denial is RBAC's usual 403 (`users "bob"
is forbidden: User "x" cannot impersonate resource "users" …`). The request then runs as the
impersonated user: a ServiceAccount with its fixed groups (`system:serviceaccounts`,
`system:serviceaccounts:<ns>`) unless groups are given, and `system:authenticated` added, as
the real filter does. Only the admin (system:masters) may impersonate in a fresh sandbox.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sandbox.apiserver import errors, rbac
from sandbox.apiserver.auth import SA_PREFIX, UserInfo

if TYPE_CHECKING:
    from multidict import CIMultiDictProxy

    from sandbox.apiserver.rbac import Authorizer

USER_HEADER, GROUP_HEADER, UID_HEADER = "Impersonate-User", "Impersonate-Group", "Impersonate-Uid"
EXTRA_PREFIX = "Impersonate-Extra-"
AUTHENTICATED = "system:authenticated"
ANONYMOUS = "system:anonymous"


def impersonate(user: UserInfo, headers: CIMultiDictProxy[str], authorizer: Authorizer) -> UserInfo:
    """The user a request acts as: ``user`` itself without `Impersonate-*` headers, else the
    impersonated user once every part of it is authorized (ApiError 403 otherwise)."""
    name = headers.get(USER_HEADER, "")
    groups_given = headers.getall(GROUP_HEADER, [])
    uid = headers.get(UID_HEADER, "")
    extra: dict[str, list[str]] = {}
    for key, value in headers.items():
        if key.lower().startswith(EXTRA_PREFIX.lower()):
            extra.setdefault(key[len(EXTRA_PREFIX):].lower(), []).append(value)
    if not name:
        if groups_given or uid or extra:
            asked = [*groups_given, *extra, uid]
            raise errors.internal_error(f"requested {asked} without impersonating a user")
        return user
    checks: list[rbac.Attributes] = []
    groups: list[str] = []
    namespace, sa_name = "", ""
    if name.startswith(SA_PREFIX):
        namespace, _, sa_name = name[len(SA_PREFIX):].partition(":")
    if namespace and sa_name:
        checks.append(rbac.Attributes(verb="impersonate", resource_request=True, namespace=namespace,
                                      resource="serviceaccounts", name=sa_name, api_version="v1"))
        if not groups_given:
            groups = ["system:serviceaccounts", f"system:serviceaccounts:{namespace}"]
    else:
        checks.append(rbac.Attributes(verb="impersonate", resource_request=True, resource="users", name=name,
                                      api_version="v1"))
    for group in groups_given:
        checks.append(rbac.Attributes(verb="impersonate", resource_request=True, resource="groups",
                                      name=group, api_version="v1"))
        groups.append(group)
    for key, values in extra.items():
        for value in values:
            checks.append(rbac.Attributes(verb="impersonate", resource_request=True,
                                          api_group="authentication.k8s.io", api_version="v1",
                                          resource="userextras", subresource=key, name=value))
    if uid:
        checks.append(rbac.Attributes(verb="impersonate", resource_request=True,
                                      api_group="authentication.k8s.io", api_version="v1", resource="uids",
                                      name=uid))
    for attrs in checks:
        allowed, _ = authorizer.authorize(user, attrs)
        if not allowed:
            raise rbac.forbidden(user, attrs)
    if name != ANONYMOUS and AUTHENTICATED not in groups:
        groups.append(AUTHENTICATED)
    return UserInfo(name, uid=uid, groups=tuple(groups), extra=extra)
