"""Query parameters as the API server reads them (booleans, bounded integers; 400 when malformed)."""

from __future__ import annotations

from collections.abc import Mapping

from . import errors


def flag(query: Mapping[str, str], name: str) -> bool:
    """A boolean query parameter (`true`/`1`)."""
    return query.get(name, "").lower() in ("true", "1")


def integer(query: Mapping[str, str], name: str, *, minimum: int = 0) -> int | None:
    """An optional non-negative integer query parameter (400 when malformed)."""
    raw = query.get(name)
    if raw is None or raw == "":
        return None
    try:
        value = int(raw)
    except ValueError:
        raise errors.bad_request(f'invalid value for {name}: "{raw}" is not an integer') from None
    if value < minimum:
        raise errors.bad_request(f"invalid value for {name}: must be greater than or equal to {minimum}")
    return value
