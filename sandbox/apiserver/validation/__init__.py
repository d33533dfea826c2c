"""Defaulting and validation of the objects the sandbox API server stores, as Kubernetes does them.

A real API server fills in defaults (`pkg/apis/*/v1/defaults.go` plus the admission plugins
that every cluster runs: ServiceAccount, Priority, DefaultTolerationSeconds) and then
validates (`pkg/apis/core/validation`, `pkg/apis/apps/validation`, ...), answering 422 Invalid
with one cause per field error. Clients notice both: `kubectl get -o yaml` shows the defaults,
the official Python client refuses objects that lack required fields, and `kubectl apply` of a
bad manifest prints the server's message. The sandbox reproduces both, with Kubernetes' own
wording, so it cannot be told apart from a cluster.

Each kind's own rules live in its strategy (`sandbox/apiserver/kinds/<kind>.py`); the rules
kinds share live in this package's modules:

- `fielderrors.py`  `FieldError`, the `Errors` list, `Invalid` (422) and `Undecodable` (400)
- `names.py`        DNS-1123 / DNS-1035 names, qualified names, label values, IPs
- `labels.py`       labels, annotations, label selectors
- `meta.py`         ObjectMeta (name, generateName, owners, finalizers, immutable fields)
- `ports.py`        port numbers, named ports, protocols, container and endpoint ports
- `podspec.py`      the pod spec and pod templates, with their defaults
- `apps.py`         what replicated workloads share (replicas, selector vs template)
- `defaulting.py`   safe accessors for defaulters

`default_object` and `validate_object` are the pure entry points by plural (the registry
calls the strategies directly); the server calls them on create and update, after generating
the name from generateName.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sandbox.apiserver.validation.fielderrors import Errors, FieldError, Invalid, Undecodable, render_value

if TYPE_CHECKING:
    from sandbox.apiserver.strategy import Strategy

__all__ = ["Errors", "FieldError", "Invalid", "Undecodable", "default_object", "render_value",
           "validate_object"]


def _strategy(plural: str) -> Strategy:
    from sandbox.apiserver.resources import for_plural

    strategy = for_plural(plural)
    if strategy is None:
        raise KeyError(f"no served kind has the plural {plural!r}")
    return strategy


def default_object(plural: str, obj: dict) -> dict:
    """Decode ``obj`` as the API server would (nulls) and apply its defaults, in place; returns it."""
    return _strategy(plural).default_object(obj)


def validate_object(plural: str, obj: dict, *, old: dict | None = None) -> None:
    """Validate ``obj`` (already defaulted) for a create, or an update of ``old``: raise
    Undecodable (400) when it does not even decode, Invalid (422) with causes when it breaks a rule."""
    _strategy(plural).validate_object(obj, old=old)
