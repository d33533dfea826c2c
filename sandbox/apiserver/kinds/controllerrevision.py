"""ControllerRevisions (apps/v1), the sandbox's `pkg/registry/apps/controllerrevision/strategy.go`:
the immutable snapshots of a StatefulSet's or DaemonSet's template that `kubectl rollout
history/undo` read. Validation (`ValidateControllerRevision`: data required, revision
non-negative, data immutable) and printControllerRevision's columns."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sandbox.apiserver.printing import Row, age_col, age_of, as_int, col, doc, name_col, name_of
from sandbox.apiserver.strategy import Resource, Strategy
from sandbox.apiserver.validation.fielderrors import Errors
from sandbox.apiserver.validation.names import is_int
from sandbox.meta import controller_ref


def controller_name(obj: dict) -> str:
    """`formatResourceName` of the controller: ``statefulset.apps/web``, or ``<none>``."""
    ref = controller_ref(obj)
    if not ref:
        return "<none>"
    api_version = str(ref.get("apiVersion") or "")
    group = api_version.split("/")[0] if "/" in api_version else ""
    kind = str(ref.get("kind") or "").lower()
    return f"{kind}.{group}/{ref.get('name')}" if group else f"{kind}/{ref.get('name')}"


RESOURCE = Resource("apps", "v1", "ControllerRevision", "controllerrevisions",
                    "io.k8s.api.apps.v1.ControllerRevision")


class ControllerRevisionStrategy(Strategy):
    """ControllerRevisions: validation, printControllerRevision."""

    resource = RESOURCE

    def validate(self, errs: Errors, obj: dict) -> None:
        """`ValidateControllerRevision`."""
        if obj.get("data") is None:
            errs.required("data", "data is mandatory")
        revision = obj.get("revision")
        if revision is not None and (not is_int(revision) or revision < 0):
            errs.invalid("revision", revision, "must be greater than or equal to 0")

    def validate_update(self, errs: Errors, obj: dict, old: dict) -> None:
        """`ValidateControllerRevisionUpdate`: data is immutable."""
        if obj.get("data") != old.get("data"):
            errs.invalid("data", obj.get("data"), "field is immutable")

    def columns(self) -> list[dict[str, Any]]:
        """printControllerRevision's columns."""
        return [name_col(),
                col("Controller", description="Controller of the object"),
                col("Revision", "number", doc("io.k8s.api.apps.v1.ControllerRevision", "revision")),
                age_col()]

    def row(self, obj: dict, now: datetime) -> Row:
        """printControllerRevision's cells."""
        return [name_of(obj), controller_name(obj), as_int(obj.get("revision")), age_of(obj, now)]


STRATEGY = ControllerRevisionStrategy()
