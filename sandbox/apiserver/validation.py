"""Defaulting and validation of the objects the sandbox API server stores, as Kubernetes does them.

A real API server fills in defaults (`pkg/apis/*/v1/defaults.go` plus the admission plugins
that every cluster runs: ServiceAccount, Priority, DefaultTolerationSeconds) and then
validates (`pkg/apis/core/validation`, `pkg/apis/apps/validation`, ...), answering 422 Invalid
with one cause per field error. Clients notice both: `kubectl get -o yaml` shows the defaults,
the official Python client refuses objects that lack required fields, and `kubectl apply` of a
bad manifest prints the server's message. This module reproduces both for the kinds lb-demo
serves, with Kubernetes' own wording, so the sandbox cannot be told apart from a cluster.

`default_object` and `validate_object` are pure functions on plain JSON dicts; the server
calls them on create and update (after generating the name from generateName).
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sandbox.apiserver.quantity import parse_quantity
from sandbox.apiserver.schemas import decode_error, normalize_nulls
from sandbox.meta import selector_matches

# --- field errors -------------------------------------------------------------------------------


@dataclass(frozen=True)
class FieldError:
    """One `field.Error`: its type (reason), path, offending value and detail."""

    reason: str
    field: str
    value: Any = None
    detail: str = ""
    supported: tuple[str, ...] = ()

    @property
    def message(self) -> str:
        """The cause message, e.g. `Invalid value: -1: must be greater than or equal to 0`."""
        if self.reason == "FieldValueRequired":
            return "Required value" + (f": {self.detail}" if self.detail else "")
        if self.reason == "FieldValueDuplicate":
            return f"Duplicate value: {render_value(self.value)}"
        if self.reason == "FieldValueNotSupported":
            quoted = ", ".join(json.dumps(s) for s in self.supported)
            return f"Unsupported value: {render_value(self.value)}: supported values: {quoted}"
        if self.reason == "FieldValueNotFound":
            return f"Not found: {render_value(self.value)}"
        if self.reason == "FieldValueForbidden":
            return f"Forbidden: {self.detail}"
        if self.reason == "FieldValueTooLong":
            return f"Too long: {self.detail}"
        return f"Invalid value: {render_value(self.value)}: {self.detail}"

    def cause(self) -> dict[str, str]:
        """This error as a `StatusCause`."""
        return {"reason": self.reason, "message": self.message, "field": self.field}

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


def render_value(value: Any) -> str:
    """Render a value the way `field.Error` does (Go quoting for strings, JSON for the rest)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if value is None:
        return "null"
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


class Invalid(Exception):
    """A 422 Invalid: `.causes` are the Status causes, `.message` the Status message."""

    code = 422

    def __init__(self, *, kind: str, group: str, name: str, errors: list[FieldError]) -> None:
        self.errors = errors
        self.kind = kind
        self.group = group
        self.name = name
        self.causes: list[dict[str, str]] = [e.cause() for e in errors]
        qualified = f"{kind}.{group}" if group else kind
        listed = str(errors[0]) if len(errors) == 1 else "[" + ", ".join(str(e) for e in errors) + "]"
        self.message = f'{qualified} "{name}" is invalid: {listed}'
        super().__init__(self.message)


class Undecodable(Invalid):
    """An object that does not decode into its Go type (`"replicas": "3"`): a real server answers
    400 BadRequest with `.message` before validating. It subclasses Invalid so that a caller
    that only knows Invalid still refuses it; `.code` tells the two apart."""

    code = 400

    def __init__(self, *, kind: str, group: str, name: str, message: str) -> None:
        Exception.__init__(self, message)
        self.errors = []
        self.kind = kind
        self.group = group
        self.name = name
        self.causes = []
        self.message = message


class Errors(list[FieldError]):
    """A growing `field.ErrorList` with one helper per error type."""

    def invalid(self, field: str, value: Any, detail: str) -> None:
        """Record `Invalid value`."""
        self.append(FieldError("FieldValueInvalid", field, value, detail))

    def required(self, field: str, detail: str = "") -> None:
        """Record `Required value`."""
        self.append(FieldError("FieldValueRequired", field, None, detail))

    def duplicate(self, field: str, value: Any) -> None:
        """Record `Duplicate value`."""
        self.append(FieldError("FieldValueDuplicate", field, value))

    def not_supported(self, field: str, value: Any, supported: Iterable[str]) -> None:
        """Record `Unsupported value` with the sorted supported values."""
        self.append(FieldError("FieldValueNotSupported", field, value, supported=tuple(sorted(supported))))

    def not_found(self, field: str, value: Any) -> None:
        """Record `Not found`."""
        self.append(FieldError("FieldValueNotFound", field, value))

    def forbidden(self, field: str, detail: str) -> None:
        """Record `Forbidden`."""
        self.append(FieldError("FieldValueForbidden", field, None, detail))

    def too_long(self, field: str, detail: str) -> None:
        """Record `Too long`."""
        self.append(FieldError("FieldValueTooLong", field, None, detail))


# --- kinds -------------------------------------------------------------------------------------

KINDS: dict[str, tuple[str, str]] = {
    "pods": ("Pod", ""),
    "services": ("Service", ""),
    "endpoints": ("Endpoints", ""),
    "events": ("Event", ""),
    "nodes": ("Node", ""),
    "namespaces": ("Namespace", ""),
    "configmaps": ("ConfigMap", ""),
    "serviceaccounts": ("ServiceAccount", ""),
    "deployments": ("Deployment", "apps"),
    "replicasets": ("ReplicaSet", "apps"),
    "endpointslices": ("EndpointSlice", "discovery.k8s.io"),
    "roles": ("Role", "rbac.authorization.k8s.io"),
    "rolebindings": ("RoleBinding", "rbac.authorization.k8s.io"),
}

# --- string formats (k8s.io/apimachinery/pkg/util/validation) ---------------------------------

DNS1123_LABEL = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
DNS1123_SUBDOMAIN = DNS1123_LABEL + r"(\." + DNS1123_LABEL + ")*"
DNS1035_LABEL = "[a-z]([-a-z0-9]*[a-z0-9])?"
QUALIFIED_NAME = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
LABEL_VALUE = "(" + QUALIFIED_NAME + ")?"
CONFIG_MAP_KEY = "[-._a-zA-Z0-9]+"
_full = {p: re.compile("^" + p + "$") for p in
         (DNS1123_LABEL, DNS1123_SUBDOMAIN, DNS1035_LABEL, QUALIFIED_NAME, LABEL_VALUE, CONFIG_MAP_KEY)}
_IANA_ALPHA = re.compile("[a-z]")
_IANA_CHARS = re.compile("^[-a-z0-9]+$")


def _regex_error(msg: str, pattern: str, *examples: str) -> str:
    shown = ",  or ".join(f"'{e}'" for e in examples)
    return f"{msg} (e.g. {shown}, regex used for validation is '{pattern}')"


def _name_errors(value: str, *, max_length: int, pattern: str, rule: str,
                 examples: tuple[str, ...]) -> list[str]:
    """Length and format errors of a name, worded like apimachinery's validators."""
    errs = []
    if len(value) > max_length:
        errs.append(f"must be no more than {max_length} characters")
    if not _full[pattern].match(value):
        errs.append(_regex_error(rule, pattern, *examples))
    return errs


def dns1123_label_errors(value: str) -> list[str]:
    """`IsDNS1123Label`."""
    return _name_errors(value, max_length=63, pattern=DNS1123_LABEL, examples=("my-name", "123-abc"),
                        rule="a lowercase RFC 1123 label must consist of lower case alphanumeric characters "
                             "or '-', and must start and end with an alphanumeric character")


def dns1123_subdomain_errors(value: str) -> list[str]:
    """`IsDNS1123Subdomain`."""
    return _name_errors(value, max_length=253, pattern=DNS1123_SUBDOMAIN, examples=("example.com",),
                        rule="a lowercase RFC 1123 subdomain must consist of lower case alphanumeric "
                             "characters, '-' or '.', and must start and end with an alphanumeric character")


def dns1035_label_errors(value: str) -> list[str]:
    """`IsDNS1035Label` (Service names)."""
    return _name_errors(value, max_length=63, pattern=DNS1035_LABEL, examples=("my-name", "abc-123"),
                        rule="a DNS-1035 label must consist of lower case alphanumeric characters or '-', "
                             "start with an alphabetic character, and end with an alphanumeric character")


def qualified_name_errors(value: str) -> list[str]:
    """`IsQualifiedName` (label and annotation keys)."""
    parts = value.split("/")
    if len(parts) == 1:
        name = parts[0]
        errs: list[str] = []
    elif len(parts) == 2:
        prefix, name = parts
        errs = []
        if not prefix:
            errs.append("prefix part must be non-empty")
        else:
            errs.extend("prefix part " + e for e in dns1123_subdomain_errors(prefix))
    else:
        return [_regex_error("a qualified name must consist of alphanumeric characters, '-', '_' or '.', "
                             "and must start and end with an alphanumeric character", QUALIFIED_NAME,
                             "MyName", "my.name", "123-abc")
                + " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"]
    if not name:
        errs.append("name part must be non-empty")
    elif len(name) > 63:
        errs.append("name part must be no more than 63 characters")
    if name and not _full[QUALIFIED_NAME].match(name):
        errs.append(_regex_error("name part must consist of alphanumeric characters, '-', '_' or '.', and "
                                 "must start and end with an alphanumeric character", QUALIFIED_NAME,
                                 "MyName", "my.name", "123-abc"))
    return errs


def label_value_errors(value: str) -> list[str]:
    """`IsValidLabelValue`."""
    errs = []
    if len(value) > 63:
        errs.append("must be no more than 63 characters")
    if not _full[LABEL_VALUE].match(value):
        errs.append(_regex_error("a valid label must be an empty string or consist of alphanumeric "
                                 "characters, '-', '_' or '.', and must start and end with an alphanumeric "
                                 "character", LABEL_VALUE, "MyValue", "my_value", "12345"))
    return errs


def iana_svc_name_errors(value: str) -> list[str]:
    """`IsValidPortName` (container port names, named target ports)."""
    errs = []
    if len(value) > 15:
        errs.append("must be no more than 15 characters")
    if not _IANA_CHARS.match(value):
        errs.append("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)")
    if "--" in value:
        errs.append("must not contain consecutive hyphens")
    if not _IANA_ALPHA.search(value):
        errs.append("must contain at least one letter (a-z)")
    if value.startswith("-") or value.endswith("-"):
        errs.append("must not begin or end with a hyphen")
    return errs


def port_range_errors(port: Any) -> list[str]:
    """`IsValidPortNum`."""
    if not _is_int(port) or not 1 <= port <= 65535:
        return ["must be between 1 and 65535, inclusive"]
    return []


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


NAME_CHECKS = {"label": dns1123_label_errors, "subdomain": dns1123_subdomain_errors,
               "dns1035": dns1035_label_errors}
NAME_RULE = {"services": "dns1035", "namespaces": "label"}


# --- validation --------------------------------------------------------------------------------


def validate_object(plural: str, obj: dict, *, old: dict | None = None) -> None:
    """Validate ``obj`` (already defaulted) for a create, or an update of ``old``: raise
    Undecodable (400) when it does not even decode, Invalid (422) with causes when it breaks a rule."""
    kind, group = KINDS.get(plural, (plural, ""))
    if not isinstance(obj, dict):
        message = f"{kind} cannot be handled as a {kind}: the body is not a JSON object"
        raise Undecodable(kind=kind, group=group, name="", message=message)
    meta = obj.get("metadata")
    name = str(meta.get("name") or meta.get("generateName") or "") if isinstance(meta, dict) else ""
    undecodable = decode_error(plural, obj)
    if undecodable is not None:
        raise Undecodable(kind=kind, group=group, name=name, message=undecodable)
    errs = Errors()
    if not isinstance(meta, dict):
        errs.required("metadata")
        meta = {}
    _validate_meta(errs, plural, meta, old_meta=(old or {}).get("metadata") if old else None)
    validator = _VALIDATORS.get(plural)
    if validator is not None:
        validator(errs, obj)
    if old is not None:
        updater = _UPDATE_VALIDATORS.get(plural)
        if updater is not None:
            updater(errs, obj, old)
    if errs:
        raise Invalid(kind=kind, group=group, name=name, errors=list(errs))


def _validate_meta(errs: Errors, plural: str, meta: dict, *, old_meta: dict | None) -> None:
    name = meta.get("name")
    generate = meta.get("generateName")
    check = NAME_CHECKS[NAME_RULE.get(plural, "subdomain")]
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
    _validate_annotations(errs, meta.get("annotations"), "metadata.annotations")
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


def _validate_annotations(errs: Errors, annotations: Any, path: str) -> None:
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


# pods ------------------------------------------------------------------------------------------

RESTART_POLICIES = ("Always", "OnFailure", "Never")
DNS_POLICIES = ("ClusterFirst", "ClusterFirstWithHostNet", "Default", "None")
PULL_POLICIES = ("Always", "IfNotPresent", "Never")
PROTOCOLS = ("TCP", "UDP", "SCTP")
MESSAGE_POLICIES = ("File", "FallbackToLogsOnError")
PROBE_HANDLERS = ("exec", "httpGet", "tcpSocket", "grpc")
STANDARD_RESOURCES = ("cpu", "memory", "ephemeral-storage")


def validate_pod_spec(errs: Errors, spec: Any, path: str) -> None:
    """`ValidatePodSpec` for the fields lb-demo's clients use."""
    if not isinstance(spec, dict):
        errs.required(f"{path}.containers")
        return
    volumes = _validate_volumes(errs, spec.get("volumes"), f"{path}.volumes")
    port_names: set[str] = set()
    containers = spec.get("containers")
    if not containers:
        errs.required(f"{path}.containers")
    names: set[str] = set()
    groups = (("initContainers", spec.get("initContainers") or []), ("containers", containers or []))
    for group, items in groups:
        if not isinstance(items, list):
            errs.invalid(f"{path}.{group}", items, "must be a list of containers")
            continue
        for i, ctr in enumerate(items):
            _validate_container(errs, ctr, f"{path}.{group}[{i}]", names=names, port_names=port_names,
                                volumes=volumes, init=group == "initContainers")
    policy = spec.get("restartPolicy")
    if policy not in RESTART_POLICIES:
        if policy in (None, ""):
            errs.required(f"{path}.restartPolicy")
        else:
            errs.not_supported(f"{path}.restartPolicy", policy, RESTART_POLICIES)
    dns = spec.get("dnsPolicy")
    if dns is not None and dns not in DNS_POLICIES:
        errs.not_supported(f"{path}.dnsPolicy", dns, DNS_POLICIES)
    for key in ("terminationGracePeriodSeconds", "activeDeadlineSeconds"):
        value = spec.get(key)
        if value is None:
            continue
        if not _is_int(value):
            errs.invalid(f"{path}.{key}", value, "must be an integer")
        elif key == "activeDeadlineSeconds" and value <= 0:
            errs.invalid(f"{path}.{key}", value, "must be between 1 and 2147483647, inclusive")
        elif value < 0:
            errs.invalid(f"{path}.{key}", value, "must be greater than or equal to 0")
    node_name = spec.get("nodeName")
    if node_name:
        for msg in dns1123_subdomain_errors(str(node_name)):
            errs.invalid(f"{path}.nodeName", node_name, msg)
    validate_labels(errs, spec.get("nodeSelector"), f"{path}.nodeSelector")
    for i, tol in enumerate(spec.get("tolerations") or []):
        _validate_toleration(errs, tol, f"{path}.tolerations[{i}]")
    sa = spec.get("serviceAccountName")
    if sa:
        for msg in dns1123_subdomain_errors(str(sa)):
            errs.invalid(f"{path}.serviceAccountName", sa, msg)


def _validate_unique_name(errs: Errors, name: Any, path: str, names: set[str]) -> None:
    """A required DNS-1123 label name, unique among its siblings (volumes, containers)."""
    if not name:
        errs.required(path)
        return
    for msg in dns1123_label_errors(str(name)):
        errs.invalid(path, name, msg)
    if name in names:
        errs.duplicate(path, name)
    names.add(name)


def _validate_volumes(errs: Errors, volumes: Any, path: str) -> set[str]:
    names: set[str] = set()
    for i, vol in enumerate(volumes or []):
        vpath = f"{path}[{i}]"
        if not isinstance(vol, dict):
            errs.invalid(vpath, vol, "must be a volume")
            continue
        _validate_unique_name(errs, vol.get("name"), f"{vpath}.name", names)
        sources = [k for k in vol if k != "name"]
        if not sources:
            errs.required(vpath, "must specify a volume type")
        elif len(sources) > 1:
            errs.forbidden(f"{vpath}.{sources[1]}", "may not specify more than 1 volume type")
    return names


def _validate_container(errs: Errors, ctr: Any, path: str, *, names: set[str], port_names: set[str],
                        volumes: set[str], init: bool) -> None:
    if not isinstance(ctr, dict):
        errs.invalid(path, ctr, "must be a container")
        return
    _validate_unique_name(errs, ctr.get("name"), f"{path}.name", names)
    if not ctr.get("image"):
        errs.required(f"{path}.image")
    pull = ctr.get("imagePullPolicy")
    if pull is not None and pull not in PULL_POLICIES:
        errs.not_supported(f"{path}.imagePullPolicy", pull, PULL_POLICIES)
    tmp = ctr.get("terminationMessagePolicy")
    if tmp is not None and tmp not in MESSAGE_POLICIES:
        errs.not_supported(f"{path}.terminationMessagePolicy", tmp, MESSAGE_POLICIES)
    for key in ("command", "args"):
        value = ctr.get(key)
        if value is not None and (not isinstance(value, list) or not all(isinstance(v, str) for v in value)):
            errs.invalid(f"{path}.{key}", value, "must be a list of strings")
    for i, port in enumerate(ctr.get("ports") or []):
        _validate_container_port(errs, port, f"{path}.ports[{i}]", port_names)
    _validate_env(errs, ctr.get("env"), f"{path}.env")
    for i, mount in enumerate(ctr.get("volumeMounts") or []):
        mpath = f"{path}.volumeMounts[{i}]"
        if not isinstance(mount, dict):
            errs.invalid(mpath, mount, "must be a volume mount")
            continue
        if not mount.get("name"):
            errs.required(f"{mpath}.name")
        elif mount["name"] not in volumes:
            errs.not_found(f"{mpath}.name", mount["name"])
        if not mount.get("mountPath"):
            errs.required(f"{mpath}.mountPath")
    _validate_resources(errs, ctr.get("resources"), f"{path}.resources")
    probes = ("livenessProbe", "readinessProbe", "startupProbe")
    for key in probes:
        probe = ctr.get(key)
        if probe is None:
            continue
        if init and ctr.get("restartPolicy") != "Always":
            errs.forbidden(f"{path}.{key}", "may not be set for init containers without restartPolicy=Always")
            continue
        _validate_probe(errs, probe, f"{path}.{key}", ctr, liveness_like=key != "readinessProbe")
    lifecycle = ctr.get("lifecycle")
    if isinstance(lifecycle, dict):
        for hook in ("postStart", "preStop"):
            handler = lifecycle.get(hook)
            if handler is not None:
                _validate_handler(errs, handler, f"{path}.lifecycle.{hook}", ctr,
                                  allowed=("exec", "httpGet", "tcpSocket", "sleep"))


def _validate_container_port(errs: Errors, port: Any, path: str, port_names: set[str]) -> None:
    if not isinstance(port, dict):
        errs.invalid(path, port, "must be a container port")
        return
    name = port.get("name")
    if name:
        for msg in iana_svc_name_errors(str(name)):
            errs.invalid(f"{path}.name", name, msg)
        if name in port_names:
            errs.duplicate(f"{path}.name", name)
        port_names.add(name)
    cport = port.get("containerPort")
    if cport in (None, 0):
        errs.required(f"{path}.containerPort")
    else:
        for msg in port_range_errors(cport):
            errs.invalid(f"{path}.containerPort", cport, msg)
    hport = port.get("hostPort")
    if hport not in (None, 0):
        for msg in port_range_errors(hport):
            errs.invalid(f"{path}.hostPort", hport, msg)
    protocol = port.get("protocol")
    if protocol not in PROTOCOLS:
        if protocol in (None, ""):
            errs.required(f"{path}.protocol")
        else:
            errs.not_supported(f"{path}.protocol", protocol, PROTOCOLS)


ENV_FIELD_PATHS = ("metadata.name", "metadata.namespace", "metadata.uid", "metadata.labels",
                   "metadata.annotations", "spec.nodeName", "spec.serviceAccountName", "status.hostIP",
                   "status.hostIPs", "status.podIP", "status.podIPs")


ENV_SOURCES = ("fieldRef", "resourceFieldRef", "configMapKeyRef", "secretKeyRef", "fileKeyRef")


def _validate_env(errs: Errors, env: Any, path: str) -> None:
    if env is None:
        return
    if not isinstance(env, list):
        errs.invalid(path, env, "must be a list of environment variables")
        return
    for i, var in enumerate(env):
        epath = f"{path}[{i}]"
        if not isinstance(var, dict):
            errs.invalid(epath, var, "must be an environment variable")
            continue
        name = var.get("name")
        if not name:
            errs.required(f"{epath}.name")
        elif not isinstance(name, str) or "=" in name or not name.isprintable() or not name.isascii():
            errs.invalid(f"{epath}.name", name, "a valid environment variable name must consist only of "
                                                "printable ASCII characters other than '='")
        value_from = var.get("valueFrom")
        if value_from is None:
            if "value" in var and var["value"] is not None and not isinstance(var["value"], str):
                errs.invalid(f"{epath}.value", var["value"], "must be a string")
            continue
        if var.get("value"):
            errs.invalid(f"{epath}.valueFrom", "", "may not be specified when `value` is not empty")
        if not isinstance(value_from, dict):
            errs.invalid(f"{epath}.valueFrom", value_from, "must be an EnvVarSource")
            continue
        sources = [k for k in ENV_SOURCES if value_from.get(k) is not None]
        if not sources:
            errs.invalid(f"{epath}.valueFrom", "", "must specify one of: `fieldRef`, `resourceFieldRef`, "
                                                   "`configMapKeyRef` or `secretKeyRef`")
        elif len(sources) > 1:
            errs.invalid(f"{epath}.valueFrom", "", "may not have more than one field specified at a time")
        field_ref = value_from.get("fieldRef")
        if isinstance(field_ref, dict):
            fpath = field_ref.get("fieldPath")
            if not fpath:
                errs.required(f"{epath}.valueFrom.fieldRef.fieldPath")
            elif fpath not in ENV_FIELD_PATHS and not re.match(r"^metadata\.(labels|annotations)\['.+'\]$",
                                                               fpath):
                errs.not_supported(f"{epath}.valueFrom.fieldRef.fieldPath", fpath, ENV_FIELD_PATHS)


def _validate_resources(errs: Errors, resources: Any, path: str) -> None:
    if resources is None:
        return
    if not isinstance(resources, dict):
        errs.invalid(path, resources, "must be resource requirements")
        return
    parsed: dict[str, dict[str, Any]] = {}
    for group in ("limits", "requests"):
        values = resources.get(group) or {}
        if not isinstance(values, dict):
            errs.invalid(f"{path}.{group}", values, "must be a map of quantities")
            continue
        parsed[group] = {}
        for name, raw in values.items():
            qpath = f"{path}.{group}[{name}]"
            try:
                quantity = parse_quantity(raw)
            except ValueError as exc:
                errs.invalid(qpath, raw, str(exc))
                continue
            if quantity < 0:
                errs.invalid(qpath, raw, "must be greater than or equal to 0")
            if "/" not in name and "." not in name and name not in STANDARD_RESOURCES and not \
                    name.startswith("hugepages-"):
                errs.invalid(qpath, name, "must be a standard resource type or fully qualified")
            parsed[group][name] = quantity
    limits, requests = parsed.get("limits", {}), parsed.get("requests", {})
    for name, request in requests.items():
        if name in limits and request > limits[name]:
            errs.invalid(f"{path}.requests", resources["requests"][name],
                         f"must be less than or equal to {name} limit of {resources['limits'][name]}")


def _validate_probe(errs: Errors, probe: Any, path: str, ctr: dict, *, liveness_like: bool) -> None:
    if not isinstance(probe, dict):
        errs.invalid(path, probe, "must be a probe")
        return
    _validate_handler(errs, probe, path, ctr, allowed=PROBE_HANDLERS)
    for key in ("initialDelaySeconds", "timeoutSeconds", "periodSeconds", "successThreshold",
                "failureThreshold", "terminationGracePeriodSeconds"):
        value = probe.get(key)
        if value is None:
            continue
        if not _is_int(value):
            errs.invalid(f"{path}.{key}", value, "must be an integer")
        elif value < 0:
            errs.invalid(f"{path}.{key}", value, "must be greater than or equal to 0")
        elif key == "terminationGracePeriodSeconds" and value == 0:
            errs.invalid(f"{path}.{key}", value, "must be greater than 0")
    if liveness_like and probe.get("successThreshold") not in (None, 1):
        errs.invalid(f"{path}.successThreshold", probe["successThreshold"], "must be 1")
    if not liveness_like and probe.get("terminationGracePeriodSeconds") is not None:
        errs.invalid(f"{path}.terminationGracePeriodSeconds", probe["terminationGracePeriodSeconds"],
                     "must not be set for readinessProbes")


def _validate_handler(errs: Errors, handler: Any, path: str, ctr: dict, *, allowed: tuple[str, ...]) -> None:
    if not isinstance(handler, dict):
        errs.invalid(path, handler, "must be a handler")
        return
    present = [k for k in allowed if handler.get(k) is not None]
    if not present:
        errs.required(path, "must specify a handler type")
        return
    if len(present) > 1:
        for extra in present[1:]:
            errs.forbidden(f"{path}.{extra}", "may not specify more than 1 handler type")
    kind = present[0]
    body = handler[kind]
    hpath = f"{path}.{kind}"
    if not isinstance(body, dict):
        errs.invalid(hpath, body, "must be an object")
        return
    if kind == "exec":
        if not body.get("command"):
            errs.required(f"{hpath}.command")
    elif kind == "sleep":
        seconds = body.get("seconds")
        if not _is_int(seconds) or seconds < 0:
            errs.invalid(f"{hpath}.seconds", seconds, "must be non-negative")
    elif kind in ("httpGet", "tcpSocket", "grpc"):
        _validate_probe_port(errs, body.get("port"), f"{hpath}.port", ctr)
        if kind == "httpGet":
            scheme = body.get("scheme")
            if scheme not in (None, "HTTP", "HTTPS"):
                errs.not_supported(f"{hpath}.scheme", scheme, ("HTTP", "HTTPS"))
            for i, header in enumerate(body.get("httpHeaders") or []):
                if not isinstance(header, dict) or not header.get("name"):
                    errs.required(f"{hpath}.httpHeaders[{i}].name")


def _validate_probe_port(errs: Errors, port: Any, path: str, ctr: dict) -> None:
    if port is None:
        errs.required(path)
    elif isinstance(port, str) and not port.isdigit():
        for msg in iana_svc_name_errors(port):
            errs.invalid(path, port, msg)
    else:
        number = int(port) if isinstance(port, str) else port
        for msg in port_range_errors(number):
            errs.invalid(path, port, msg)


def _validate_toleration(errs: Errors, tol: Any, path: str) -> None:
    if not isinstance(tol, dict):
        errs.invalid(path, tol, "must be a toleration")
        return
    op = tol.get("operator") or "Equal"
    key = tol.get("key") or ""
    if key:
        for msg in qualified_name_errors(key):
            errs.invalid(f"{path}.key", key, msg)
    elif op != "Exists":
        errs.invalid(f"{path}.operator", op, "operator must be Exists when `key` is empty, which means "
                                             '"match all values and all keys"')
    if op not in ("Equal", "Exists"):
        errs.not_supported(f"{path}.operator", op, ("Equal", "Exists"))
    if op == "Exists" and tol.get("value"):
        errs.invalid(f"{path}.operator", tol.get("value"), "value must be empty when `operator` is 'Exists'")
    effect = tol.get("effect")
    if effect not in (None, "", "NoSchedule", "PreferNoSchedule", "NoExecute"):
        errs.not_supported(f"{path}.effect", effect, ("NoExecute", "NoSchedule", "PreferNoSchedule"))
    if tol.get("tolerationSeconds") is not None and effect != "NoExecute":
        errs.invalid(f"{path}.effect", effect,
                     "effect must be 'NoExecute' when `tolerationSeconds` is set")


def _validate_pod(errs: Errors, obj: dict) -> None:
    validate_pod_spec(errs, obj.get("spec"), "spec")


def validate_pod_template(errs: Errors, template: Any, path: str) -> None:
    """`ValidatePodTemplateSpec`: labels plus the pod spec."""
    if not isinstance(template, dict):
        errs.required(f"{path}.spec.containers")
        return
    meta = template.get("metadata") or {}
    validate_labels(errs, meta.get("labels"), f"{path}.metadata.labels")
    _validate_annotations(errs, meta.get("annotations"), f"{path}.metadata.annotations")
    validate_pod_spec(errs, template.get("spec"), f"{path}.spec")
    spec = template.get("spec")
    if isinstance(spec, dict) and spec.get("activeDeadlineSeconds") is not None:
        errs.forbidden(f"{path}.spec.activeDeadlineSeconds",
                       "activeDeadlineSeconds in ReplicaSet is not Supported")


POD_MUTABLE = ("`spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,"
               "`spec.tolerations` (only additions to existing tolerations),"
               "`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)")


def _validate_pod_update(errs: Errors, obj: dict, old: dict) -> None:
    new_spec, old_spec = obj.get("spec") or {}, old.get("spec") or {}
    if not isinstance(new_spec, dict) or not isinstance(old_spec, dict):
        return
    new_cmp, old_cmp = json.loads(json.dumps(new_spec)), json.loads(json.dumps(old_spec))
    for spec_cmp in (new_cmp, old_cmp):
        for group in ("containers", "initContainers"):
            for ctr in spec_cmp.get(group) or []:
                if isinstance(ctr, dict):
                    ctr.pop("image", None)
        spec_cmp.pop("activeDeadlineSeconds", None)
        spec_cmp.pop("tolerations", None)
    # The scheduler binds a pod once: nodeName may go from unset to set.
    if not old_cmp.get("nodeName"):
        new_cmp.pop("nodeName", None)
        old_cmp.pop("nodeName", None)
    if new_cmp != old_cmp:
        errs.forbidden("spec", f"pod updates may not change fields other than {POD_MUTABLE}")
    old_tolerations = old_spec.get("tolerations") or []
    new_tolerations = new_spec.get("tolerations") or []
    if isinstance(new_tolerations, list) and any(t not in new_tolerations for t in old_tolerations):
        errs.forbidden("spec.tolerations",
                       "existing toleration can not be modified except its tolerationSeconds")
    pairs = zip(new_spec.get("containers") or [], old_spec.get("containers") or [], strict=False)
    for i, (ctr, old_ctr) in enumerate(pairs):
        if isinstance(ctr, dict) and isinstance(old_ctr, dict) and not ctr.get("image"):
            errs.required(f"spec.containers[{i}].image")


# apps ------------------------------------------------------------------------------------------


def _validate_int_or_percent(errs: Errors, value: Any, path: str) -> None:
    if isinstance(value, str):
        match = re.fullmatch(r"([0-9]+)%", value)
        if not match:
            errs.invalid(path, value, "a valid percent string must be a numeric string followed by an ending "
                                      "'%' (e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')")
        elif int(match.group(1)) > 100:
            errs.invalid(path, value, "must not be greater than 100%")
    elif _is_int(value):
        if value < 0:
            errs.invalid(path, value, "must be greater than or equal to 0")
    elif value is not None:
        errs.invalid(path, value, "must be an integer or percentage (e.g '5%')")


def _is_zero(value: Any) -> bool:
    return value == 0 or (isinstance(value, str) and re.fullmatch(r"0+%", value) is not None)


def _validate_replicated(errs: Errors, spec: dict) -> None:
    """Rules that Deployments and ReplicaSets share: replicas, selector vs template."""
    for key in ("replicas", "minReadySeconds"):
        value = spec.get(key)
        if value is None:
            continue
        if not _is_int(value):
            errs.invalid(f"spec.{key}", value, "must be an integer")
        elif value < 0:
            errs.invalid(f"spec.{key}", value, "must be greater than or equal to 0")
    selector = spec.get("selector")
    template = spec.get("template")
    if selector is None:
        errs.required("spec.selector")
    elif isinstance(selector, dict):
        validate_label_selector(errs, selector, "spec.selector")
        empty = not (selector.get("matchLabels") or selector.get("matchExpressions"))
        if empty:
            errs.invalid("spec.selector", selector, "empty selector is invalid for deployment")
    else:
        validate_label_selector(errs, selector, "spec.selector")
    if template is None:
        errs.required("spec.template")
        return
    labels = (template.get("metadata") or {}).get("labels") or {} if isinstance(template, dict) else {}
    if isinstance(selector, dict) and isinstance(labels, dict) and (selector.get("matchLabels") or
                                                                     selector.get("matchExpressions")):
        try:
            matches = selector_matches(selector, labels)
        except (AttributeError, TypeError):
            matches = True
        if not matches:
            errs.invalid("spec.template.metadata.labels", labels,
                         "`selector` does not match template `labels`")
    validate_pod_template(errs, template, "spec.template")
    tspec = template.get("spec") if isinstance(template, dict) else None
    if isinstance(tspec, dict) and tspec.get("restartPolicy") not in (None, "Always"):
        errs.not_supported("spec.template.spec.restartPolicy", tspec.get("restartPolicy"), ("Always",))


def _validate_deployment(errs: Errors, obj: dict) -> None:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        errs.required("spec.selector")
        errs.required("spec.template")
        return
    _validate_replicated(errs, spec)
    strategy = spec.get("strategy") or {}
    if isinstance(strategy, dict):
        stype = strategy.get("type")
        rolling = strategy.get("rollingUpdate")
        if stype == "Recreate":
            if rolling is not None:
                errs.forbidden("spec.strategy.rollingUpdate",
                               "may not be specified when strategy `type` is 'Recreate'")
        elif stype == "RollingUpdate":
            if isinstance(rolling, dict):
                surge, unavailable = rolling.get("maxSurge"), rolling.get("maxUnavailable")
                _validate_int_or_percent(errs, surge, "spec.strategy.rollingUpdate.maxSurge")
                _validate_int_or_percent(errs, unavailable, "spec.strategy.rollingUpdate.maxUnavailable")
                if _is_zero(surge) and _is_zero(unavailable):
                    errs.invalid("spec.strategy.rollingUpdate.maxUnavailable", unavailable,
                                 "may not be 0 when `maxSurge` is 0")
        elif stype in (None, ""):
            errs.required("spec.strategy.type")
        else:
            errs.not_supported("spec.strategy.type", stype, ("Recreate", "RollingUpdate"))
    limit = spec.get("revisionHistoryLimit")
    if limit is not None and (not _is_int(limit) or limit < 0):
        errs.invalid("spec.revisionHistoryLimit", limit, "must be greater than or equal to 0")
    deadline = spec.get("progressDeadlineSeconds")
    if deadline is not None:
        if not _is_int(deadline) or deadline < 0:
            errs.invalid("spec.progressDeadlineSeconds", deadline, "must be greater than or equal to 0")
        elif _is_int(spec.get("minReadySeconds")) and deadline <= spec["minReadySeconds"]:
            errs.invalid("spec.progressDeadlineSeconds", deadline, "must be greater than minReadySeconds")


def _validate_replicaset(errs: Errors, obj: dict) -> None:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        errs.required("spec.selector")
        return
    _validate_replicated(errs, spec)


def _validate_selector_immutable(errs: Errors, obj: dict, old: dict) -> None:
    new_sel = (obj.get("spec") or {}).get("selector")
    old_sel = (old.get("spec") or {}).get("selector")
    if old_sel is not None and new_sel != old_sel:
        errs.invalid("spec.selector", new_sel, "field is immutable")


def _validate_status_counts(errs: Errors, obj: dict) -> None:
    status = obj.get("status")
    if not isinstance(status, dict):
        return
    for key in ("replicas", "readyReplicas", "availableReplicas", "updatedReplicas", "fullyLabeledReplicas",
                "unavailableReplicas", "terminatingReplicas", "observedGeneration"):
        value = status.get(key)
        if value is not None and (not _is_int(value) or value < 0):
            errs.invalid(f"status.{key}", value, "must be greater than or equal to 0")


# services --------------------------------------------------------------------------------------

SERVICE_TYPES = ("ClusterIP", "NodePort", "LoadBalancer", "ExternalName")
NODE_PORT_RANGE = (30000, 32767)


def _validate_service(errs: Errors, obj: dict) -> None:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        errs.required("spec.ports")
        return
    stype = spec.get("type") or "ClusterIP"
    if stype not in SERVICE_TYPES:
        errs.not_supported("spec.type", stype, SERVICE_TYPES)
    ports = spec.get("ports") or []
    if not isinstance(ports, list):
        errs.invalid("spec.ports", ports, "must be a list of service ports")
        ports = []
    if not ports and stype != "ExternalName" and spec.get("clusterIP") != "None":
        errs.required("spec.ports")
    names: set[str] = set()
    seen_ports: set[tuple[Any, Any]] = set()
    node_ports: set[tuple[Any, Any]] = set()
    for i, port in enumerate(ports):
        path = f"spec.ports[{i}]"
        if not isinstance(port, dict):
            errs.invalid(path, port, "must be a service port")
            continue
        name = port.get("name")
        if len(ports) > 1 and not name:
            errs.required(f"{path}.name")
        if name:
            for msg in dns1123_label_errors(str(name)):
                errs.invalid(f"{path}.name", name, msg)
            if name in names:
                errs.duplicate(f"{path}.name", name)
            names.add(name)
        number = port.get("port", 0)
        for msg in port_range_errors(number):
            errs.invalid(f"{path}.port", number, msg)
        protocol = port.get("protocol")
        if protocol not in PROTOCOLS:
            if protocol in (None, ""):
                errs.required(f"{path}.protocol")
            else:
                errs.not_supported(f"{path}.protocol", protocol, PROTOCOLS)
        key = (number, protocol)
        if key in seen_ports:
            errs.duplicate(path, {"port": number, "protocol": protocol})
        seen_ports.add(key)
        target = port.get("targetPort")
        if isinstance(target, str):
            for msg in iana_svc_name_errors(target):
                errs.invalid(f"{path}.targetPort", target, msg)
        elif target is not None:
            for msg in port_range_errors(target):
                errs.invalid(f"{path}.targetPort", target, msg)
        node_port = port.get("nodePort")
        if node_port not in (None, 0):
            if stype not in ("NodePort", "LoadBalancer"):
                errs.forbidden(f"{path}.nodePort", f"may not be used when `type` is '{stype}'")
            elif not _is_int(node_port) or not NODE_PORT_RANGE[0] <= node_port <= NODE_PORT_RANGE[1]:
                errs.invalid(f"{path}.nodePort", node_port,
                             "provided port is not in the valid range. The range of valid ports is "
                             f"{NODE_PORT_RANGE[0]}-{NODE_PORT_RANGE[1]}")
            elif (node_port, protocol) in node_ports:
                errs.duplicate(f"{path}.nodePort", node_port)
            node_ports.add((node_port, protocol))
    selector = spec.get("selector")
    if selector is not None:
        validate_labels(errs, selector, "spec.selector")
    affinity = spec.get("sessionAffinity")
    if affinity not in (None, "None", "ClientIP"):
        errs.not_supported("spec.sessionAffinity", affinity, ("ClientIP", "None"))
    if affinity == "ClientIP":
        timeout = (((spec.get("sessionAffinityConfig") or {}).get("clientIP") or {}).get("timeoutSeconds"))
        if timeout is not None and (not _is_int(timeout) or not 0 < timeout <= 86400):
            errs.invalid("spec.sessionAffinityConfig.clientIP.timeoutSeconds", timeout,
                         "must be greater than 0 and less than 86400")
    elif spec.get("sessionAffinityConfig") is not None:
        errs.forbidden("spec.sessionAffinityConfig", f"must not be set when session affinity is {affinity}")
    cluster_ip = spec.get("clusterIP")
    if cluster_ip not in (None, "", "None"):
        try:
            ipaddress.ip_address(cluster_ip)
        except ValueError:
            errs.invalid("spec.clusterIPs[0]", cluster_ip, "must be a valid IP address, (e.g. 10.9.8.7 or "
                                                           "2001:db8::ffff)")
    if stype == "ExternalName" and not spec.get("externalName"):
        errs.required("spec.externalName")
    for key in ("externalTrafficPolicy", "internalTrafficPolicy"):
        value = spec.get(key)
        if value is not None and value not in ("Cluster", "Local"):
            errs.not_supported(f"spec.{key}", value, ("Cluster", "Local"))
    if spec.get("externalTrafficPolicy") is not None and stype not in ("NodePort", "LoadBalancer"):
        errs.invalid("spec.externalTrafficPolicy", spec["externalTrafficPolicy"],
                     "may only be set when `type` is 'NodePort' or 'LoadBalancer'")


def _validate_service_update(errs: Errors, obj: dict, old: dict) -> None:
    new_spec, old_spec = obj.get("spec") or {}, old.get("spec") or {}
    old_ip = old_spec.get("clusterIP")
    if old_ip and old_spec.get("type") != "ExternalName" and new_spec.get("type") != "ExternalName" \
            and new_spec.get("clusterIP") != old_ip:
        errs.invalid("spec.clusterIPs[0]", [new_spec.get("clusterIP")] if new_spec.get("clusterIP") else [],
                     "may not change once set")


# other kinds -----------------------------------------------------------------------------------


def _validate_namespace(errs: Errors, obj: dict) -> None:
    for i, fin in enumerate(((obj.get("spec") or {}).get("finalizers")) or []):
        if not isinstance(fin, str) or qualified_name_errors(fin):
            errs.invalid(f"spec.finalizers[{i}]", fin, "name is neither a standard finalizer name nor is it "
                                                       "fully qualified")
    phase = (obj.get("status") or {}).get("phase")
    if phase not in (None, "Active", "Terminating"):
        errs.not_supported("status.phase", phase, ("Active", "Terminating"))


def _validate_configmap(errs: Errors, obj: dict) -> None:
    keys: set[str] = set()
    for group in ("data", "binaryData"):
        values = obj.get(group) or {}
        if not isinstance(values, dict):
            errs.invalid(group, values, "must be a map")
            continue
        for key, value in values.items():
            if len(key) > 253 or not _full[CONFIG_MAP_KEY].match(key):
                errs.invalid(f"{group}[{key}]", key, _regex_error(
                    "a valid config key must consist of alphanumeric characters, '-', '_' or '.'",
                    CONFIG_MAP_KEY, "key.name", "KEY_NAME", "key-name"))
            if key in keys:
                errs.invalid(f"{group}[{key}]", key, "duplicate of key present in data")
            keys.add(key)
            if group == "data" and not isinstance(value, str):
                errs.invalid(f"{group}[{key}]", value, "must be a string")


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


def _validate_ip(errs: Errors, value: Any, path: str) -> None:
    try:
        ipaddress.ip_address(str(value))
    except ValueError:
        errs.invalid(path, value, "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)")


def _validate_endpoint_ports(errs: Errors, ports: Any, path: str, *, slice_: bool) -> None:
    names: set[str] = set()
    for i, port in enumerate(ports or []):
        ppath = f"{path}[{i}]"
        if not isinstance(port, dict):
            errs.invalid(ppath, port, "must be an endpoint port")
            continue
        name = port.get("name") or ""
        if len(ports) > 1 and not name and not slice_:
            errs.required(f"{ppath}.name")
        if name:
            for msg in dns1123_label_errors(name):
                errs.invalid(f"{ppath}.name", name, msg)
        if name in names:
            errs.duplicate(f"{ppath}.name", name)
        names.add(name)
        number = port.get("port")
        if number is not None or not slice_:
            for msg in port_range_errors(number):
                errs.invalid(f"{ppath}.port", number, msg)
        protocol = port.get("protocol")
        if protocol not in PROTOCOLS:
            errs.not_supported(f"{ppath}.protocol", protocol, PROTOCOLS)


def _validate_endpoints(errs: Errors, obj: dict) -> None:
    for i, subset in enumerate(obj.get("subsets") or []):
        path = f"subsets[{i}]"
        if not isinstance(subset, dict):
            errs.invalid(path, subset, "must be an endpoint subset")
            continue
        addresses = (subset.get("addresses") or []) + (subset.get("notReadyAddresses") or [])
        if not addresses:
            errs.required(path, "must specify `addresses` or `notReadyAddresses`")
        for group in ("addresses", "notReadyAddresses"):
            for j, addr in enumerate(subset.get(group) or []):
                _validate_ip(errs, (addr or {}).get("ip") if isinstance(addr, dict) else addr,
                             f"{path}.{group}[{j}].ip")
        _validate_endpoint_ports(errs, subset.get("ports"), f"{path}.ports", slice_=False)


def _validate_endpointslice(errs: Errors, obj: dict) -> None:
    family = obj.get("addressType")
    families = ("IPv4", "IPv6", "FQDN")
    if not family:
        errs.required("addressType")
    elif family not in families:
        errs.not_supported("addressType", family, families)
    endpoints = obj.get("endpoints")
    if endpoints is None:
        endpoints = []
    for i, ep in enumerate(endpoints):
        path = f"endpoints[{i}]"
        if not isinstance(ep, dict):
            errs.invalid(path, ep, "must be an endpoint")
            continue
        addresses = ep.get("addresses") or []
        if not addresses:
            errs.required(f"{path}.addresses", "must contain at least 1 address")
        elif len(addresses) > 100:
            errs.too_long(f"{path}.addresses", "may not have more than 100 items")
        for j, addr in enumerate(addresses):
            if family == "IPv4":
                try:
                    ipaddress.IPv4Address(str(addr))
                except ValueError:
                    errs.invalid(f"{path}.addresses[{j}]", addr, "must be a valid IPv4 address")
            elif family == "IPv6":
                try:
                    ipaddress.IPv6Address(str(addr))
                except ValueError:
                    errs.invalid(f"{path}.addresses[{j}]", addr, "must be a valid IPv6 address")
        if ep.get("nodeName"):
            for msg in dns1123_subdomain_errors(str(ep["nodeName"])):
                errs.invalid(f"{path}.nodeName", ep["nodeName"], msg)
    _validate_endpoint_ports(errs, obj.get("ports"), "ports", slice_=True)


def _validate_node(errs: Errors, obj: dict) -> None:
    spec = obj.get("spec") or {}
    for i, taint in enumerate(spec.get("taints") or []):
        path = f"spec.taints[{i}]"
        if not isinstance(taint, dict):
            errs.invalid(path, taint, "must be a taint")
            continue
        if not taint.get("key"):
            errs.required(f"{path}.key")
        effect = taint.get("effect")
        if effect not in ("NoSchedule", "PreferNoSchedule", "NoExecute"):
            errs.not_supported(f"{path}.effect", effect, ("NoExecute", "NoSchedule", "PreferNoSchedule"))


def _validate_role(errs: Errors, obj: dict) -> None:
    for i, rule in enumerate(obj.get("rules") or []):
        path = f"rules[{i}]"
        if not isinstance(rule, dict):
            errs.invalid(path, rule, "must be a policy rule")
            continue
        if not rule.get("verbs"):
            errs.required(f"{path}.verbs", "verbs must contain at least one value")
        if rule.get("nonResourceURLs"):
            errs.invalid(f"{path}.nonResourceURLs", rule["nonResourceURLs"],
                         "namespaced rules cannot apply to non-resource URLs")
        if rule.get("resources") and rule.get("apiGroups") is None:
            errs.required(f"{path}.apiGroups", "resource rules must supply at least one api group")


def _validate_rolebinding(errs: Errors, obj: dict) -> None:
    ref = obj.get("roleRef")
    if not isinstance(ref, dict):
        errs.required("roleRef")
        return
    if ref.get("apiGroup") != "rbac.authorization.k8s.io":
        errs.not_supported("roleRef.apiGroup", ref.get("apiGroup") or "", ("rbac.authorization.k8s.io",))
    if ref.get("kind") not in ("Role", "ClusterRole"):
        errs.not_supported("roleRef.kind", ref.get("kind") or "", ("ClusterRole", "Role"))
    if not ref.get("name"):
        errs.required("roleRef.name")
    for i, subject in enumerate(obj.get("subjects") or []):
        path = f"subjects[{i}]"
        if not isinstance(subject, dict):
            errs.invalid(path, subject, "must be a subject")
            continue
        if not subject.get("name"):
            errs.required(f"{path}.name")
        if subject.get("kind") not in ("ServiceAccount", "User", "Group"):
            errs.not_supported(f"{path}.kind", subject.get("kind") or "", ("Group", "ServiceAccount", "User"))


def _validate_rolebinding_update(errs: Errors, obj: dict, old: dict) -> None:
    if obj.get("roleRef") != old.get("roleRef"):
        errs.invalid("roleRef", obj.get("roleRef"), "cannot change roleRef")


_VALIDATORS = {
    "pods": _validate_pod,
    "deployments": lambda errs, obj: (_validate_deployment(errs, obj), _validate_status_counts(errs, obj)),
    "replicasets": lambda errs, obj: (_validate_replicaset(errs, obj), _validate_status_counts(errs, obj)),
    "services": _validate_service,
    "namespaces": _validate_namespace,
    "configmaps": _validate_configmap,
    "events": _validate_event,
    "endpoints": _validate_endpoints,
    "endpointslices": _validate_endpointslice,
    "nodes": _validate_node,
    "roles": _validate_role,
    "rolebindings": _validate_rolebinding,
}
_UPDATE_VALIDATORS = {
    "pods": _validate_pod_update,
    "deployments": _validate_selector_immutable,
    "replicasets": _validate_selector_immutable,
    "services": _validate_service_update,
    "rolebindings": _validate_rolebinding_update,
}


# --- defaulting --------------------------------------------------------------------------------

DEFAULT_TOLERATIONS = (
    {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute",
     "tolerationSeconds": 300},
    {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute",
     "tolerationSeconds": 300},
)


def default_object(plural: str, obj: dict) -> dict:
    """Decode ``obj`` as the API server would (nulls) and apply its defaults, in place; returns it."""
    if not isinstance(obj, dict):
        return obj
    normalize_nulls(plural, obj)
    _dict_at(obj, "metadata")
    defaulter = _DEFAULTERS.get(plural)
    if defaulter is not None:
        defaulter(obj)
    return obj


def _dict_at(obj: dict, key: str) -> dict:
    """The object at ``key``, created when absent. A value of the wrong type is left for
    `decode_error` to report (defaults then go to a throwaway dict)."""
    value = obj.get(key)
    if value is None:
        value = obj[key] = {}
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list:
    return value if isinstance(value, list) else []


def _map(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def _image_pull_policy(image: Any) -> str:
    if not isinstance(image, str):
        return "IfNotPresent"
    if "@" in image:
        return "IfNotPresent"
    last = image.rsplit("/", 1)[-1]
    if ":" not in last:
        return "Always"
    return "Always" if last.rsplit(":", 1)[1] == "latest" else "IfNotPresent"


def _default_probe(probe: Any) -> None:
    if not isinstance(probe, dict):
        return
    probe.setdefault("timeoutSeconds", 1)
    probe.setdefault("periodSeconds", 10)
    probe.setdefault("successThreshold", 1)
    probe.setdefault("failureThreshold", 3)
    _default_handler(probe)


def _default_handler(handler: dict) -> None:
    http = handler.get("httpGet")
    if isinstance(http, dict):
        http.setdefault("path", "/")
        http.setdefault("scheme", "HTTP")
    grpc = handler.get("grpc")
    if isinstance(grpc, dict):
        grpc.setdefault("service", "")


def _default_container(ctr: Any) -> None:
    if not isinstance(ctr, dict):
        return
    ctr.setdefault("imagePullPolicy", _image_pull_policy(ctr.get("image")))
    ctr.setdefault("terminationMessagePath", "/dev/termination-log")
    ctr.setdefault("terminationMessagePolicy", "File")
    _dict_at(ctr, "resources")
    for port in _list(ctr.get("ports")):
        if isinstance(port, dict):
            port.setdefault("protocol", "TCP")
    for var in _list(ctr.get("env")):
        field_ref = _map(_map(var).get("valueFrom")).get("fieldRef")
        if isinstance(field_ref, dict):
            field_ref.setdefault("apiVersion", "v1")
    for key in ("livenessProbe", "readinessProbe", "startupProbe"):
        _default_probe(ctr.get(key))
    lifecycle = ctr.get("lifecycle")
    if isinstance(lifecycle, dict):
        for hook in ("postStart", "preStop"):
            if isinstance(lifecycle.get(hook), dict):
                _default_handler(lifecycle[hook])


def default_pod_spec(spec: dict) -> None:
    """`SetDefaults_PodSpec` and the container defaults (what pod templates get)."""
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    _dict_at(spec, "securityContext")
    for group in ("initContainers", "containers"):
        for ctr in _list(spec.get(group)):
            _default_container(ctr)
    for vol in _list(spec.get("volumes")):
        if not isinstance(vol, dict):
            continue
        for source in ("configMap", "secret", "projected", "downwardAPI"):
            if isinstance(vol.get(source), dict):
                vol[source].setdefault("defaultMode", 420)
        if isinstance(vol.get("hostPath"), dict):
            vol["hostPath"].setdefault("type", "")


def qos_class(spec: dict) -> str:
    """`GetPodQOS`: Guaranteed, Burstable or BestEffort from the containers' resources."""
    requests: dict[str, Any] = {}
    limits: dict[str, Any] = {}
    guaranteed = True
    containers = [c for c in _list(spec.get("containers")) + _list(spec.get("initContainers"))
                  if isinstance(c, dict)]
    for ctr in containers:
        resources = _map(ctr.get("resources"))
        ctr_requests = {k: _quantity_or_zero(v) for k, v in _map(resources.get("requests")).items()
                        if k in ("cpu", "memory")}
        ctr_limits = {k: _quantity_or_zero(v) for k, v in _map(resources.get("limits")).items()
                      if k in ("cpu", "memory")}
        for name, value in ctr_requests.items():
            if value:
                requests[name] = requests.get(name, 0) + value
        for name, value in ctr_limits.items():
            if value:
                limits[name] = limits.get(name, 0) + value
        if set(k for k, v in ctr_limits.items() if v) != {"cpu", "memory"}:
            guaranteed = False
        for name, value in ctr_requests.items():
            if value and ctr_limits.get(name) != value:
                guaranteed = False
    if not requests and not limits:
        return "BestEffort"
    return "Guaranteed" if guaranteed else "Burstable"


def _quantity_or_zero(value: Any) -> Any:
    try:
        return parse_quantity(value)
    except ValueError:
        return 0


def _default_pod(obj: dict) -> None:
    spec = _dict_at(obj, "spec")
    for group in ("initContainers", "containers"):
        for ctr in _list(spec.get(group)):
            # SetDefaults_Pod: a limit without a request makes the request equal to the limit.
            resources = _map(_map(ctr).get("resources"))
            limits = _map(resources.get("limits"))
            if limits:
                requests = _dict_at(resources, "requests")
                for name, value in limits.items():
                    requests.setdefault(name, value)
    default_pod_spec(spec)
    spec.setdefault("enableServiceLinks", True)
    # Admission plugins every cluster runs: ServiceAccount, Priority, DefaultTolerationSeconds.
    spec.setdefault("serviceAccountName", spec.get("serviceAccount") or "default")
    spec.setdefault("serviceAccount", spec["serviceAccountName"])
    spec.setdefault("preemptionPolicy", "PreemptLowerPriority")
    spec.setdefault("priority", 0)
    tolerations = spec.get("tolerations")
    if tolerations is None:
        tolerations = spec["tolerations"] = []
    if isinstance(tolerations, list):
        for default in DEFAULT_TOLERATIONS:
            if not any(isinstance(t, dict) and t.get("key") == default["key"]
                       and t.get("effect") in (None, "", "NoExecute") for t in tolerations):
                tolerations.append(dict(default))
    status = _dict_at(obj, "status")
    status.setdefault("phase", "Pending")
    status.setdefault("qosClass", qos_class(spec))


def _default_template(spec: dict) -> None:
    template = _dict_at(spec, "template")
    _dict_at(template, "metadata")
    default_pod_spec(_dict_at(template, "spec"))


def _default_deployment(obj: dict) -> None:
    spec = _dict_at(obj, "spec")
    spec.setdefault("replicas", 1)
    strategy = _dict_at(spec, "strategy")
    strategy.setdefault("type", "RollingUpdate")
    if strategy.get("type") == "RollingUpdate":
        rolling = _dict_at(strategy, "rollingUpdate")
        rolling.setdefault("maxUnavailable", "25%")
        rolling.setdefault("maxSurge", "25%")
    spec.setdefault("revisionHistoryLimit", 10)
    spec.setdefault("progressDeadlineSeconds", 600)
    _default_template(spec)
    _dict_at(obj, "status")


def _default_replicaset(obj: dict) -> None:
    spec = _dict_at(obj, "spec")
    spec.setdefault("replicas", 1)
    _default_template(spec)
    _dict_at(obj, "status").setdefault("replicas", 0)


def _default_service(obj: dict) -> None:
    spec = _dict_at(obj, "spec")
    spec.setdefault("type", "ClusterIP")
    spec.setdefault("sessionAffinity", "None")
    if spec["sessionAffinity"] == "ClientIP":
        config = _dict_at(_dict_at(spec, "sessionAffinityConfig"), "clientIP")
        config.setdefault("timeoutSeconds", 10800)
    for port in _list(spec.get("ports")):
        if isinstance(port, dict):
            port.setdefault("protocol", "TCP")
            target = port.get("targetPort")
            if (target is None or target == "" or (_is_int(target) and target == 0)) and "port" in port:
                port["targetPort"] = port["port"]
    if spec["type"] != "ExternalName":
        spec.setdefault("internalTrafficPolicy", "Cluster")
        spec.setdefault("ipFamilies", ["IPv4"])
        spec.setdefault("ipFamilyPolicy", "SingleStack")
    if spec["type"] in ("NodePort", "LoadBalancer"):
        spec.setdefault("externalTrafficPolicy", "Cluster")
    if spec["type"] == "LoadBalancer":
        spec.setdefault("allocateLoadBalancerNodePorts", True)
    _dict_at(_dict_at(obj, "status"), "loadBalancer")


def _default_namespace(obj: dict) -> None:
    meta = _dict_at(obj, "metadata")
    name = meta.get("name")
    if isinstance(name, str) and name:
        _dict_at(meta, "labels")["kubernetes.io/metadata.name"] = name
    spec = _dict_at(obj, "spec")
    spec.setdefault("finalizers", ["kubernetes"])
    _dict_at(obj, "status").setdefault("phase", "Active")


def _default_endpoints(obj: dict) -> None:
    for subset in _list(obj.get("subsets")):
        if isinstance(subset, dict):
            for port in _list(subset.get("ports")):
                if isinstance(port, dict):
                    port.setdefault("protocol", "TCP")


def _default_endpointslice(obj: dict) -> None:
    for port in _list(obj.get("ports")):
        if isinstance(port, dict):
            port.setdefault("protocol", "TCP")
            port.setdefault("name", "")
    if obj.get("endpoints") is None:
        obj["endpoints"] = []


def _default_node(obj: dict) -> None:
    status = _dict_at(obj, "status")
    if isinstance(status.get("capacity"), dict) and not status.get("allocatable"):
        status["allocatable"] = dict(status["capacity"])


def _default_rolebinding(obj: dict) -> None:
    for subject in _list(obj.get("subjects")):
        if isinstance(subject, dict) and "apiGroup" not in subject:
            if subject.get("kind") == "ServiceAccount":
                subject["apiGroup"] = ""
            elif subject.get("kind") in ("User", "Group"):
                subject["apiGroup"] = "rbac.authorization.k8s.io"


def _default_event(obj: dict) -> None:
    # involvedObject is a struct in Go: an event without one is stored with an empty reference.
    if obj.get("involvedObject") is None:
        obj["involvedObject"] = {}


_DEFAULTERS = {
    "pods": _default_pod,
    "deployments": _default_deployment,
    "replicasets": _default_replicaset,
    "services": _default_service,
    "namespaces": _default_namespace,
    "endpoints": _default_endpoints,
    "endpointslices": _default_endpointslice,
    "nodes": _default_node,
    "rolebindings": _default_rolebinding,
    "events": _default_event,
}
