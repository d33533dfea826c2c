"""API errors as Kubernetes `Status` objects, with the reasons, codes and `details` real servers use.

Like `k8s.io/apimachinery/pkg/api/errors`: errors about an object (NotFound, AlreadyExists,
Conflict, Forbidden) carry `details` naming it (`name`, `group`, `kind` = the resource);
Invalid carries the kind and one cause per field error; InternalError one cause with the
message; errors no resource is behind (an unknown path, a method a path does not serve, a
422 from patching) carry empty `details: {}` like `NewGenericServerResponse`; BadRequest,
Unauthorized, Expired, NotAcceptable, UnsupportedMediaType and RequestEntityTooLarge carry
none, as on a real server. Clients depend on this: kubectl debug dereferences the details of
a 404.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .strategy import Resource


class ApiError(Exception):
    """An error the API server answers with a `Status` body (never a bare 500)."""

    def __init__(self, code: int, reason: str, message: str, *, details: dict | None = None,
                 metadata: dict | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details
        self.metadata = metadata or {}

    def status(self) -> dict:
        """The `Status` object for this error (its ListMeta: a fresh continue token on 410)."""
        body: dict = {"kind": "Status", "apiVersion": "v1", "metadata": dict(self.metadata),
                      "status": "Failure", "message": self.message, "reason": self.reason, "code": self.code}
        if self.details is not None:
            body["details"] = self.details
        return body


def _details(res: Resource, name: str) -> dict:
    """`details` naming an object of a resource, like the real server."""
    details = {"name": name, "kind": res.plural}
    if res.group:
        details["group"] = res.group
    return details


def not_found(res: Resource, name: str) -> ApiError:
    """404 NotFound for an object."""
    return ApiError(404, "NotFound", f'{res.qualified_plural} "{name}" not found',
                    details=_details(res, name))


def already_exists(res: Resource, name: str) -> ApiError:
    """409 AlreadyExists for a create."""
    return ApiError(409, "AlreadyExists", f'{res.qualified_plural} "{name}" already exists',
                    details=_details(res, name))


def conflict(res: Resource, name: str, why: str) -> ApiError:
    """409 Conflict (stale resourceVersion, failed precondition...)."""
    message = f'Operation cannot be fulfilled on {res.qualified_plural} "{name}": {why}'
    return ApiError(409, "Conflict", message, details=_details(res, name))


STALE = "the object has been modified; please apply your changes to the latest version and try again"


def invalid(res: Resource, name: str, message: str, causes: list[dict]) -> ApiError:
    """422 Invalid with field causes."""
    details = {"name": name, "kind": res.kind, "causes": causes}
    if res.group:
        details["group"] = res.group
    return ApiError(422, "Invalid", message, details=details)


def invalid_field(res: Resource, name: str, field: str, detail: str, *,
                  reason: str = "FieldValueInvalid") -> ApiError:
    """422 Invalid for a single field."""
    message = f'{res.qualified_kind} "{name}" is invalid: {field}: {detail}'
    return invalid(res, name, message, [{"reason": reason, "message": detail, "field": field}])


def forbidden(res: Resource, name: str, why: str) -> ApiError:
    """403 Forbidden (`NewForbidden`): `pods "x" is forbidden: <why>` (no name: `pods is forbidden`)."""
    subject = f'{res.qualified_plural} "{name}"' if name else res.qualified_plural
    details = _details(res, name)
    if not name:
        del details["name"]
    return ApiError(403, "Forbidden", f"{subject} is forbidden: {why}", details=details)


def route_not_found() -> ApiError:
    """404 for a path no resource is served at, with empty details like kube-apiserver's."""
    return ApiError(404, "NotFound", "the server could not find the requested resource", details={})


def internal_error(detail: str) -> ApiError:
    """500 InternalError (`NewInternalError`): `Internal error occurred: <detail>`, one cause."""
    return ApiError(500, "InternalError", f"Internal error occurred: {detail}",
                    details={"causes": [{"message": detail}]})


def invalid_options(kind: str, field: str, detail: str, *, reason: str = "FieldValueInvalid") -> ApiError:
    """422 for request options (`ListOptions.meta.k8s.io "" is invalid: ...`)."""
    message = f'{kind}.meta.k8s.io "" is invalid: {field}: {detail}'
    return ApiError(422, "Invalid", message, details={"group": "meta.k8s.io", "kind": kind, "causes": [
        {"reason": reason, "message": detail, "field": field}]})


def unprocessable(message: str) -> ApiError:
    """422 Invalid without a field (a patch that cannot be applied), empty details."""
    return ApiError(422, "Invalid", message, details={})


def bad_request(message: str) -> ApiError:
    """400 BadRequest."""
    return ApiError(400, "BadRequest", message)


def method_not_allowed(method: str) -> ApiError:
    """405 MethodNotAllowed."""
    return ApiError(405, "MethodNotAllowed", f"the server does not allow this method on the requested "
                                             f"resource ({method})", details={})
