"""Labels, annotations and label selectors (`ValidateLabels`, `ValidateAnnotations`,
`ValidateLabelSelector`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sandbox.apiserver.validation.fielderrors import Errors
from sandbox.apiserver.validation.names import label_value_errors, qualified_name_errors


def validate_labels(errs: Errors, labels: Any, path: str) -> None:
    """`ValidateLabels`: qualified-name keys and label values."""
    if labels is None:
        return
    if not isinstance(labels, Mapping):
        errs.invalid(path, labels, "must be a map of strings")
        return
    for key, value in labels.items():
        for msg in qualified_name_errors(key):
            errs.invalid(path, key, msg)
        if not isinstance(value, str):
            errs.invalid(f"{path}[{key}]", value, "must be a string")
            continue
        for msg in label_value_errors(value):
            errs.invalid(path, value, msg)


def validate_annotations(errs: Errors, annotations: Any, path: str) -> None:
    if annotations is None:
        return
    if not isinstance(annotations, Mapping):
        errs.invalid(path, annotations, "must be a map of strings")
        return
    total = 0
    for key, value in annotations.items():
        for msg in qualified_name_errors(key.lower()):
            errs.invalid(path, key, msg)
        total += len(key) + len(value if isinstance(value, str) else "")
    if total > 256 * 1024:
        errs.too_long(path, f"may not be more than {256 * 1024} bytes")


def validate_label_selector(errs: Errors, selector: Any, path: str) -> None:
    """`ValidateLabelSelector`: matchLabels and matchExpressions syntax."""
    if selector is None:
        return
    if not isinstance(selector, Mapping):
        errs.invalid(path, selector, "must be a label selector object")
        return
    for i, req in enumerate(selector.get("matchExpressions") or []):
        rpath = f"{path}.matchExpressions[{i}]"
        if not isinstance(req, Mapping):
            errs.invalid(rpath, req, "must be a label selector requirement")
            continue
        op = req.get("operator")
        values = req.get("values") or []
        if op in ("In", "NotIn"):
            if not values:
                errs.required(f"{rpath}.values", "must be specified when `operator` is 'In' or 'NotIn'")
        elif op in ("Exists", "DoesNotExist"):
            if values:
                errs.forbidden(f"{rpath}.values",
                               "may not be specified when `operator` is 'Exists' or 'DoesNotExist'")
        else:
            errs.invalid(f"{rpath}.operator", op, "not a valid selector operator")
        for msg in qualified_name_errors(str(req.get("key") or "")):
            errs.invalid(f"{rpath}.key", req.get("key") or "", msg)
        for j, value in enumerate(values):
            for msg in label_value_errors(str(value)):
                errs.invalid(f"{rpath}.values[{j}]", value, msg)
    validate_labels(errs, selector.get("matchLabels"), f"{path}.matchLabels")
