"""IngressClasses (networking.k8s.io/v1, cluster-scoped): which controller implements a class.

Validation is `ValidateIngressClass` (a domain-prefixed ``spec.controller``, immutable; a
parameters reference with kind and name), the Table is printIngressClass's NAME CONTROLLER
PARAMETERS AGE. The sandbox's ingress controller creates its class at start-up (see
`sandbox/ingress.py`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sandbox.apiserver.printing import Row, age_col, age_of, col, name_col, name_of
from sandbox.apiserver.strategy import Resource, Strategy
from sandbox.apiserver.validation.fielderrors import Errors
from sandbox.apiserver.validation.names import dns1123_subdomain_errors

MAX_CONTROLLER_LENGTH = 250


def domain_prefixed_path_errors(errs: Errors, path: str, value: Any) -> None:
    """`IsDomainPrefixedPath`: ``example.com/path``."""
    if not value:
        errs.required(path)
        return
    text = str(value)
    domain, slash, rest = text.partition("/")
    if not slash or not rest:
        errs.invalid(path, text, 'must be a domain-prefixed path (such as "acme.io/foo")')
        return
    for msg in dns1123_subdomain_errors(domain):
        errs.invalid(path, domain, msg)


def _validate(errs: Errors, obj: dict) -> None:
    spec = obj.get("spec") or {}
    controller = spec.get("controller")
    if isinstance(controller, str) and len(controller) > MAX_CONTROLLER_LENGTH:
        errs.too_long("spec.controller", f"may not be more than {MAX_CONTROLLER_LENGTH} bytes")
    domain_prefixed_path_errors(errs, "spec.controller", controller)
    params = spec.get("parameters")
    if isinstance(params, dict):
        if not params.get("kind"):
            errs.required("spec.parameters.kind", "kind is required")
        if not params.get("name"):
            errs.required("spec.parameters.name", "name is required")
        scope = params.get("scope")
        if scope is not None and scope not in ("Cluster", "Namespace"):
            errs.not_supported("spec.parameters.scope", scope, ("Cluster", "Namespace"))
        if scope == "Namespace" and not params.get("namespace"):
            errs.required("spec.parameters.namespace", "`parameters.scope` is set to 'Namespace'")


def _parameters(spec: dict) -> str:
    params = spec.get("parameters")
    if not isinstance(params, dict):
        return "<none>"
    text = str(params.get("kind") or "")
    if params.get("apiGroup"):
        text += "." + str(params["apiGroup"])
    return text + "/" + str(params.get("name") or "")


RESOURCE = Resource("networking.k8s.io", "v1", "IngressClass", "ingressclasses",
                    "io.k8s.api.networking.v1.IngressClass", namespaced=False, generation=True)


class IngressClassStrategy(Strategy):
    """IngressClasses: ValidateIngressClass, printIngressClass."""

    resource = RESOURCE

    def validate(self, errs: Errors, obj: dict) -> None:
        """`ValidateIngressClass`."""
        _validate(errs, obj)

    def validate_update(self, errs: Errors, obj: dict, old: dict) -> None:
        """`spec.controller` is immutable."""
        new_controller = (obj.get("spec") or {}).get("controller")
        if new_controller != (old.get("spec") or {}).get("controller"):
            errs.invalid("spec.controller", new_controller, "field is immutable")

    def columns(self) -> list[dict[str, Any]]:
        """printIngressClass's columns."""
        return [name_col(),
                col("Controller", description="Controller that is responsible for handling this class"),
                col("Parameters", description="A reference to a resource with additional parameters"),
                age_col()]

    def row(self, obj: dict, now: datetime) -> Row:
        """printIngressClass's cells."""
        spec = obj.get("spec") or {}
        return [name_of(obj), spec.get("controller") or "", _parameters(spec), age_of(obj, now)]


STRATEGY = IngressClassStrategy()
