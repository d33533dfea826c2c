"""ObjectMeta rules every kind shares: name and generateName, namespace, labels, annotations,
ownerReferences, finalizers, and the fields an update may not change."""

from __future__ import annotations

from collections.abc import Callable

from sandbox.apiserver.validation.fielderrors import Errors
from sandbox.apiserver.validation.labels import validate_annotations, validate_labels
from sandbox.apiserver.validation.names import dns1123_label_errors, qualified_name_errors


def validate_object_meta(errs: Errors, meta: dict, *, old_meta: dict | None,
                         name_check: Callable[[str], list[str]]) -> None:
    """`ValidateObjectMeta` (and `ValidateObjectMetaUpdate` when ``old_meta`` is given); ``name_check``
    is the format of the kind's names."""
    name = meta.get("name")
    generate = meta.get("generateName")
    check = name_check
    if not name:
        if not generate:
            errs.required("metadata.name", "name or generateName is required")
    elif not isinstance(name, str):
        errs.invalid("metadata.name", name, "must be a string")
    else:
        for msg in check(name):
            errs.invalid("metadata.name", name, msg)
    if generate and isinstance(generate, str):
        # The prefix only has to be valid once a suffix is appended: drop a trailing dash.
        for msg in check(generate[:-1] if generate.endswith("-") else generate):
            errs.invalid("metadata.generateName", generate, msg)
    namespace = meta.get("namespace")
    if namespace and isinstance(namespace, str):
        for msg in dns1123_label_errors(namespace):
            errs.invalid("metadata.namespace", namespace, msg)
    validate_labels(errs, meta.get("labels"), "metadata.labels")
    validate_annotations(errs, meta.get("annotations"), "metadata.annotations")
    for i, ref in enumerate(meta.get("ownerReferences") or []):
        # validateOwnerReference reports under the list's path, without the index.
        path = "metadata.ownerReferences"
        if not isinstance(ref, dict):
            errs.invalid(f"{path}[{i}]", ref, "must be an object")
            continue
        for key, what in (("apiVersion", "version"), ("kind", "kind"), ("name", "name"), ("uid", "uid")):
            if not ref.get(key):
                errs.invalid(f"{path}.{key}", ref.get(key) or "", f"{what} must not be empty")
    refs = meta.get("ownerReferences") or []
    controllers = [r for r in refs if isinstance(r, dict) and r.get("controller")]
    if len(controllers) > 1:
        errs.invalid("metadata.ownerReferences", meta.get("ownerReferences"),
                     "Only one reference can have Controller set to true")
    for i, fin in enumerate(meta.get("finalizers") or []):
        for msg in qualified_name_errors(str(fin)):
            errs.invalid(f"metadata.finalizers[{i}]", fin, msg)
    if old_meta is not None:
        for key in ("name", "namespace", "uid", "creationTimestamp"):
            if key in old_meta and meta.get(key) != old_meta.get(key):
                errs.invalid(f"metadata.{key}", meta.get(key), "field is immutable")
