"""ServiceAccounts (core/v1) and their `token` subresource (TokenRequest), the sandbox's
`pkg/registry/core/serviceaccount`.

Every namespace gets its `default` ServiceAccount when it is created (see `namespace.py`;
the ServiceAccount controller recreates it when deleted), and every pod runs as one
(`admission.py` mounts its token).
`POST serviceaccounts/<name>/token` (`kubectl create token NAME`) issues a signed JWT for the
ServiceAccount (`auth.TokenIssuer`), as `TokenREST.Create` does: spec.audiences defaults to the
API server's audience, spec.expirationSeconds to 3600 (at least 10 minutes, at most 2^32 s);
a token may be bound to a Pod (which must run as this ServiceAccount; its node is recorded
too), a Secret or a Node of the same namespace, and stops being accepted when that object is
gone. A pod-bound token asked for 3607 s (the kubelet's request) is valid for a year, with a
`warnafter` claim at 3607 s, as kube-apiserver's extended expiration does. Table: SECRETS.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from aiohttp import web

from sandbox.apiserver import errors
from sandbox.apiserver.auth import API_AUDIENCES, service_account_claims
from sandbox.apiserver.errors import ApiError
from sandbox.apiserver.printing import CORE, Row, age_col, age_of, col, doc, name_col, name_of
from sandbox.apiserver.schemas import decode_error_of
from sandbox.apiserver.store import encode
from sandbox.apiserver.strategy import Resource, Strategy, Subresource, now
from sandbox.apiserver.validation.fielderrors import Errors, Invalid

if TYPE_CHECKING:
    from sandbox.apiserver.server import ApiServer, Target

TOKEN_REQUEST = "io.k8s.api.authentication.v1.TokenRequest"
DEFAULT_EXPIRATION = 3600
MIN_EXPIRATION = 10 * 60
MAX_EXPIRATION = 1 << 32
WARN_ONLY_EXPIRATION = 3607
EXTENDED_EXPIRATION = 365 * 24 * 3600


def _serviceaccount_row(obj: dict, now: datetime) -> Row:
    return [name_of(obj), len(obj.get("secrets") or []), age_of(obj, now)]


def validate_token_request(request: dict) -> None:
    """`ValidateTokenRequest`: 422 unless 10 minutes <= expirationSeconds <= 2^32 seconds."""
    errs = Errors()
    seconds = request["spec"]["expirationSeconds"]
    if seconds < MIN_EXPIRATION:
        errs.invalid("spec.expirationSeconds", seconds, "may not specify a duration less than 10 minutes")
    if seconds > MAX_EXPIRATION:
        errs.invalid("spec.expirationSeconds", seconds, "may not specify a duration larger than 2^32 seconds")
    if errs:
        invalid = Invalid(kind="TokenRequest", group="authentication.k8s.io", name="", errors=list(errs))
        raise ApiError(422, "Invalid", invalid.message, details={
            "group": "authentication.k8s.io", "kind": "TokenRequest", "causes": invalid.causes})


def _bound_objects(api: ApiServer, namespace: str, name: str, ref: Any) -> dict[str, dict]:
    """The objects a token is bound to: {"pod"|"secret"|"node": object} (the pod's node too)."""
    from sandbox.apiserver.resources import lookup

    if not isinstance(ref, dict):
        return {}
    api_version, kind = str(ref.get("apiVersion") or ""), str(ref.get("kind") or "")
    group = api_version.rpartition("/")[0] if "/" in api_version else ""
    targets = {"Pod": ("pods", "pod"), "Secret": ("secrets", "secret"), "Node": ("nodes", "node")}
    if group or kind not in targets:
        gvk = f"{api_version}, Kind={kind}" if "/" in api_version else f"/{api_version}, Kind={kind}"
        raise errors.bad_request(f"cannot bind token to object of type {gvk}")
    plural, claim = targets[kind]
    res = lookup("", "v1", plural)
    assert res is not None
    obj = api.registry.get(res, namespace, str(ref.get("name") or "")).obj
    uid = obj["metadata"]["uid"]
    if ref.get("uid") and ref["uid"] != uid:
        why = (f"the UID in the bound object reference ({ref['uid']}) does not match the UID in record "
               f"({uid}). The object might have been deleted and then recreated")
        raise ApiError(409, "Conflict", f'Operation cannot be fulfilled on {kind} "{ref.get("name")}": {why}',
                       details={"name": str(ref.get("name")), "kind": kind})
    bound = {claim: obj}
    if kind == "Pod":
        if obj.get("spec", {}).get("serviceAccountName") != name:
            raise errors.bad_request(f'cannot bind token for serviceaccount "{name}" to pod running with '
                                     f'serviceaccount "{obj.get("spec", {}).get("serviceAccountName")}"')
        node_name = obj.get("spec", {}).get("nodeName")
        nodes = lookup("", "v1", "nodes")
        node = api.store.get(nodes.key, "", node_name) if nodes is not None and node_name else None
        if node is not None:
            bound["node"] = node.obj
    return bound


async def serve_token(api: ApiServer, request: web.Request, target: Target) -> web.StreamResponse:
    """POST serviceaccounts/NAME/token: a TokenRequest answered with a signed token."""
    body = await api.object_body(request)
    name, namespace = target.name or "", target.namespace
    for key, want in (("kind", "TokenRequest"), ("apiVersion", "authentication.k8s.io/v1")):
        if body.get(key) not in (None, "", want):
            what = "kind" if key == "kind" else "API version"
            raise errors.bad_request(f"the {what} in the data ({body[key]}) does not match the expected "
                                     f"{what} ({want})")
    undecodable = decode_error_of(TOKEN_REQUEST, body)
    if undecodable is not None:
        raise errors.bad_request(undecodable)
    sa = api.registry.get(RESOURCE, namespace, name).obj
    meta = body.get("metadata") or {}
    if meta.get("namespace") not in (None, "", namespace):
        raise errors.bad_request("the namespace of the provided object does not match the namespace sent on "
                                 "the request")
    spec = dict(body.get("spec") or {})
    spec["audiences"] = list(spec.get("audiences") or API_AUDIENCES)
    if spec.get("expirationSeconds") is None:
        spec["expirationSeconds"] = DEFAULT_EXPIRATION
    spec.setdefault("boundObjectRef", None)
    created = now()
    out = {"kind": "TokenRequest", "apiVersion": "authentication.k8s.io/v1",
           "metadata": {"name": meta.get("name") or name, "namespace": namespace,
                        "creationTimestamp": created},
           "spec": spec, "status": {}}
    validate_token_request(out)
    bound = _bound_objects(api, namespace, name, spec["boundObjectRef"])
    seconds = int(spec["expirationSeconds"])
    lifetime = EXTENDED_EXPIRATION if "pod" in bound and seconds == WARN_ONLY_EXPIRATION else seconds
    claims = service_account_claims(sa, audiences=spec["audiences"], expiration=lifetime,
                                    pod=bound.get("pod"), secret=bound.get("secret"), node=bound.get("node"))
    if lifetime != seconds:
        claims["kubernetes.io"]["warnafter"] = claims["iat"] + seconds
    expires = datetime.fromtimestamp(claims["iat"], UTC) + timedelta(seconds=seconds)
    out["status"] = {"token": api.issuer.sign(claims),
                     "expirationTimestamp": expires.strftime("%Y-%m-%dT%H:%M:%SZ")}
    return web.Response(status=201, body=encode(out), content_type="application/json")


RESOURCE = Resource("", "v1", "ServiceAccount", "serviceaccounts", "io.k8s.api.core.v1.ServiceAccount",
                    short_names=("sa",),
                    subresources=(Subresource("token", verbs=("create",),
                                              kind=("authentication.k8s.io", "v1", "TokenRequest"),
                                              openapi="", handler=serve_token),))


class ServiceAccountStrategy(Strategy):
    """ServiceAccounts: printServiceAccount; tokens through the `token` subresource."""

    resource = RESOURCE

    def columns(self) -> list[dict[str, Any]]:
        """printServiceAccount's columns."""
        return [name_col(), col("Secrets", description=doc(CORE + "ServiceAccount", "secrets")), age_col()]

    def row(self, obj: dict, now: datetime) -> Row:
        """printServiceAccount's cells."""
        return _serviceaccount_row(obj, now)


STRATEGY = ServiceAccountStrategy()
