"""What the Table printers share, the sandbox's `pkg/printers`: kubectl's HumanDuration ages,
label and selector formatting, column definitions with descriptions from the official schemas,
and small accessors that never trust an object's types. Each kind's columns and cells live in
its module under `kinds/`; `tables.py` assembles Tables from them."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from sandbox.apiserver.schemas import definitions

Row = list[Any]


def human_duration(seconds: float) -> str:
    """`duration.HumanDuration`: 5s, 3m2s, 14m, 5h3m, 2d, 3d4h, 400d, 2y30d."""
    s = int(seconds)
    if s < -1:
        return "<invalid>"
    if s < 0:
        return "0s"
    if s < 120:
        return f"{s}s"
    minutes = s // 60
    if minutes < 10:
        rest = s % 60
        return f"{minutes}m" if rest == 0 else f"{minutes}m{rest}s"
    if minutes < 180:
        return f"{minutes}m"
    hours = s // 3600
    if hours < 8:
        rest = minutes % 60
        return f"{hours}h" if rest == 0 else f"{hours}h{rest}m"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        rest = hours % 24
        return f"{hours // 24}d" if rest == 0 else f"{hours // 24}d{rest}h"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        rest = (hours // 24) % 365
        return f"{hours // 24 // 365}y" if rest == 0 else f"{hours // 24 // 365}y{rest}d"
    return f"{hours // 24 // 365}y"


def parse_time(value: Any) -> datetime | None:
    """An RFC 3339 timestamp (`2026-01-02T03:04:05Z`, fractions allowed) or None."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def since(value: Any, now: datetime) -> str:
    """`translateTimestampSince`: the age of a timestamp, or `<unknown>`."""
    when = parse_time(value)
    if when is None:
        return "<unknown>"
    return human_duration((now - when).total_seconds())


def format_labels(labels: Mapping[str, str] | None) -> str:
    """`labels.FormatLabels`: sorted `k=v,k2=v2`, or `<none>`."""
    if not labels:
        return "<none>"
    return ",".join(f"{k}={labels[k]}" for k in sorted(labels))


def format_selector(selector: Mapping[str, Any] | None) -> str:
    """`metav1.LabelSelectorAsSelector(...).String()`: requirements sorted by key."""
    if not selector:
        return ""
    reqs: list[tuple[str, str]] = []
    for key, value in (selector.get("matchLabels") or {}).items():
        reqs.append((key, f"{key}={value}"))
    for expr in selector.get("matchExpressions") or []:
        if not isinstance(expr, dict):
            continue
        key, op = str(expr.get("key") or ""), expr.get("operator")
        values = ",".join(sorted(str(v) for v in expr.get("values") or []))
        text = {"In": f"{key} in ({values})", "NotIn": f"{key} notin ({values})",
                "Exists": key, "DoesNotExist": f"!{key}"}.get(str(op), "<invalid>")
        reqs.append((key, text))
    return ",".join(text for _, text in sorted(reqs, key=lambda r: r[0]))


def or_none(value: Any, placeholder: str = "<none>") -> Any:
    return value if value not in (None, "") else placeholder


def containers_cells(template_spec: Mapping[str, Any] | None) -> tuple[str, str]:
    """`layoutContainerCells`: container names and images, comma separated."""
    containers = [c for c in (template_spec or {}).get("containers") or [] if isinstance(c, dict)]
    return (",".join(str(c.get("name") or "") for c in containers),
            ",".join(str(c.get("image") or "") for c in containers))


def get_path(obj: Mapping[str, Any], *path: str) -> Any:
    for key in path:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)  # type: ignore[assignment]
    return obj


def as_int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def limited(items: list[str], *, limit: int = 3, empty: str = "<unset>") -> str:
    if not items:
        return empty
    text = ",".join(items[:limit])
    return text + (f" + {len(items) - limit} more..." if len(items) > limit else "")


META = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
CORE = "io.k8s.api.core.v1."


def doc(definition: str, field: str) -> str:
    """A field's description from the official schema (what `SwaggerDoc()` returns)."""
    props = definitions().get(definition, {}).get("properties", {})
    return str(props.get(field, {}).get("description", ""))


def col(name: str, type_: str = "string", description: str = "", *, priority: int = 0,
         format_: str = "") -> dict[str, Any]:
    return {"name": name, "type": type_, "format": format_, "description": description, "priority": priority}


def name_col() -> dict[str, Any]:
    return col("Name", description=doc(META, "name"), format_="name")


def age_col() -> dict[str, Any]:
    return col("Age", description=doc(META, "creationTimestamp"))


CONTAINERS_DOC = "Names of each container in the template."
IMAGES_DOC = "Images referenced by each container in the template."


def template_cols(selector_doc: str | None = None) -> list[dict[str, Any]]:
    """The wide columns of every pod-template kind (CONTAINERS, IMAGES and, where the printer has it,
    SELECTOR), as kubectl's printers declare them."""
    cols = [col("Containers", description=CONTAINERS_DOC, priority=1),
            col("Images", description=IMAGES_DOC, priority=1)]
    if selector_doc is not None:
        cols.append(col("Selector", description=selector_doc, priority=1))
    return cols


def name_of(obj: Mapping[str, Any]) -> str:
    return str(get_path(obj, "metadata", "name") or "")


def age_of(obj: Mapping[str, Any], now: datetime) -> str:
    return since(get_path(obj, "metadata", "creationTimestamp"), now)


def created_at_row(obj: dict, now: datetime) -> Row:
    return [name_of(obj), get_path(obj, "metadata", "creationTimestamp") or ""]
