"""ConfigMaps (core/v1): key names and the data/binaryData split (`ValidateConfigMap`), immutable
ConfigMaps (`ValidateConfigMapUpdate`), and printConfigMap's DATA column (the number of keys)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sandbox.apiserver.printing import CORE, Row, age_col, age_of, col, doc, name_col, name_of
from sandbox.apiserver.strategy import Resource, Strategy
from sandbox.apiserver.validation.fielderrors import Errors
from sandbox.apiserver.validation.names import CONFIG_MAP_KEY, FORMATS, regex_error


def _validate_configmap(errs: Errors, obj: dict) -> None:
    keys: set[str] = set()
    for group in ("data", "binaryData"):
        values = obj.get(group) or {}
        if not isinstance(values, dict):
            errs.invalid(group, values, "must be a map")
            continue
        for key, value in values.items():
            if len(key) > 253 or not FORMATS[CONFIG_MAP_KEY].match(key):
                errs.invalid(f"{group}[{key}]", key, regex_error(
                    "a valid config key must consist of alphanumeric characters, '-', '_' or '.'",
                    CONFIG_MAP_KEY, "key.name", "KEY_NAME", "key-name"))
            if key in keys:
                errs.invalid(f"{group}[{key}]", key, "duplicate of key present in data")
            keys.add(key)
            if group == "data" and not isinstance(value, str):
                errs.invalid(f"{group}[{key}]", value, "must be a string")


def _configmap_row(obj: dict, now: datetime) -> Row:
    return [name_of(obj), len(obj.get("data") or {}) + len(obj.get("binaryData") or {}), age_of(obj, now)]


IMMUTABLE = "field is immutable when `immutable` is set"
RESOURCE = Resource("", "v1", "ConfigMap", "configmaps", "io.k8s.api.core.v1.ConfigMap", short_names=("cm",))


class ConfigMapStrategy(Strategy):
    """ConfigMaps: key validation, printConfigMap."""

    resource = RESOURCE

    def validate(self, errs: Errors, obj: dict) -> None:
        """`ValidateConfigMap`."""
        _validate_configmap(errs, obj)

    def validate_update(self, errs: Errors, obj: dict, old: dict) -> None:
        """`ValidateConfigMapUpdate`: once `immutable: true`, neither it nor the data may change."""
        if old.get("immutable") is not True:
            return
        if obj.get("immutable") is not True:
            errs.forbidden("immutable", IMMUTABLE)
        for key in ("data", "binaryData"):
            if (obj.get(key) or {}) != (old.get(key) or {}):
                errs.forbidden(key, IMMUTABLE)

    def columns(self) -> list[dict[str, Any]]:
        """printConfigMap's columns."""
        return [name_col(), col("Data", description=doc(CORE + "ConfigMap", "data")), age_col()]

    def row(self, obj: dict, now: datetime) -> Row:
        """printConfigMap's cells."""
        return _configmap_row(obj, now)


STRATEGY = ConfigMapStrategy()
