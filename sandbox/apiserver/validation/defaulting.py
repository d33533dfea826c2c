"""Small helpers the defaulters share: reach into a decoded object without trusting its types."""

from __future__ import annotations

from typing import Any


def dict_at(obj: dict, key: str) -> dict:
    """The object at ``key``, created when absent. A value of the wrong type is left for
    `decode_error` to report (defaults then go to a throwaway dict)."""
    value = obj.get(key)
    if value is None:
        value = obj[key] = {}
    return value if isinstance(value, dict) else {}


def as_list(value: Any) -> list:
    return value if isinstance(value, list) else []


def as_map(value: Any) -> dict:
    return value if isinstance(value, dict) else {}
