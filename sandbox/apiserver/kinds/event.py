"""Events (core/v1): involvedObject and type validation, printEvent's columns (LAST SEEN from the
series or lastTimestamp, OBJECT as kind/name, SOURCE), and the field selectors `kubectl get
events --for` and `kubectl describe` use (`source` selects on source.component)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sandbox.apiserver.printing import CORE, META, Row, as_int, col, doc, name_of, since
from sandbox.apiserver.strategy import Resource, Strategy, field_value
from sandbox.apiserver.validation.fielderrors import Errors

EVENT_FIELDS = ("involvedObject.kind", "involvedObject.name", "involvedObject.namespace",
                "involvedObject.uid", "involvedObject.fieldPath", "involvedObject.apiVersion",
                "involvedObject.resourceVersion", "reason", "reportingComponent", "source", "type")


def _validate_event(errs: Errors, obj: dict) -> None:
    involved = obj.get("involvedObject")
    if not isinstance(involved, dict):
        errs.invalid("involvedObject", involved, "must be an object reference")
        return
    namespace = (obj.get("metadata") or {}).get("namespace")
    if involved.get("namespace") and namespace and involved.get("namespace") != namespace \
            and involved.get("kind") not in ("Node", "Namespace"):
        errs.invalid("involvedObject.namespace", involved.get("namespace"), "does not match event.namespace")
    etype = obj.get("type")
    if etype not in (None, "", "Normal", "Warning"):
        errs.not_supported("type", etype, ("Normal", "Warning"))


def _default_event(obj: dict) -> None:
    # involvedObject is a struct in Go: an event without one is stored with an empty reference.
    if obj.get("involvedObject") is None:
        obj["involvedObject"] = {}


def _event_row(obj: dict, now: datetime) -> Row:
    first = since(obj.get("firstTimestamp"), now)
    if not obj.get("firstTimestamp"):
        first = since(obj.get("eventTime"), now)
    last = since(obj.get("lastTimestamp"), now) if obj.get("lastTimestamp") else first
    count = as_int(obj.get("count"))
    series = obj.get("series")
    if isinstance(series, dict):
        last = since(series.get("lastObservedTime"), now)
        count = as_int(series.get("count"))
    elif count == 0:
        count = 1
    involved = obj.get("involvedObject") or {}
    kind = str(involved.get("kind") or "").lower()
    target = f"{kind}/{involved['name']}" if involved.get("name") else kind
    source = obj.get("source") or {}
    component = source.get("component") or obj.get("reportingComponent") or ""
    instance = source.get("host") or obj.get("reportingInstance") or ""
    source_cell = ", ".join([component, instance] if instance else [component]) if component else "<unknown>"
    return [last, obj.get("type") or "", obj.get("reason") or "", target, involved.get("fieldPath") or "",
            source_cell, str(obj.get("message") or "").strip(), first, count, name_of(obj)]


RESOURCE = Resource("", "v1", "Event", "events", "io.k8s.api.core.v1.Event", short_names=("ev",),
                    field_selectors=EVENT_FIELDS)


class EventStrategy(Strategy):
    """Events: validation, printEvent, the `source` field selector."""

    resource = RESOURCE

    def default(self, obj: dict) -> None:
        """An event without involvedObject gets an empty reference (a struct in Go)."""
        _default_event(obj)

    def validate(self, errs: Errors, obj: dict) -> None:
        """`ValidateEvent` (the parts clients meet)."""
        _validate_event(errs, obj)

    def columns(self) -> list[dict[str, Any]]:
        """printEvent's columns."""
        event = CORE + "Event"
        return [col("Last Seen", description=doc(event, "lastTimestamp")),
                col("Type", description=doc(event, "type")),
                col("Reason", description=doc(event, "reason")),
                col("Object", description=doc(event, "involvedObject")),
                col("Subobject", description=doc(CORE + "ObjectReference", "fieldPath"), priority=1),
                col("Source", description=doc(event, "source"), priority=1),
                col("Message", description=doc(event, "message")),
                col("First Seen", description=doc(event, "firstTimestamp"), priority=1),
                col("Count", description=doc(event, "count"), priority=1),
                col("Name", description=doc(META, "name"), priority=1, format_="name")]

    def row(self, obj: dict, now: datetime) -> Row:
        """printEvent's cells."""
        return _event_row(obj, now)

    def field_value(self, obj: dict, path: str) -> str:
        """`source` selects on source.component (`EventToSelectableFields`)."""
        if path == "source":
            return str((obj.get("source") or {}).get("component", ""))
        return field_value(obj, path)


STRATEGY = EventStrategy()
