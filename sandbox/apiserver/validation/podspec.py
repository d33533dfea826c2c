"""Pod spec rules shared by Pods and every pod template (Deployments, ReplicaSets, ...):
`ValidatePodSpec`, `ValidatePodTemplateSpec` and `SetDefaults_PodSpec` with the container,
probe and volume defaults, worded like `pkg/apis/core/validation`."""

from __future__ import annotations

import re
from typing import Any

from sandbox.apiserver.quantity import parse_quantity
from sandbox.apiserver.validation.defaulting import as_list, as_map, dict_at
from sandbox.apiserver.validation.fielderrors import Errors
from sandbox.apiserver.validation.labels import validate_annotations, validate_labels
from sandbox.apiserver.validation.names import (
    dns1123_label_errors,
    dns1123_subdomain_errors,
    is_int,
    qualified_name_errors,
)
from sandbox.apiserver.validation.ports import (
    iana_svc_name_errors,
    port_range_errors,
    validate_container_port,
)

RESTART_POLICIES = ("Always", "OnFailure", "Never")
DNS_POLICIES = ("ClusterFirst", "ClusterFirstWithHostNet", "Default", "None")
PULL_POLICIES = ("Always", "IfNotPresent", "Never")
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
        if not is_int(value):
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
        validate_container_port(errs, port, f"{path}.ports[{i}]", port_names)
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
        if not is_int(value):
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
        if not is_int(seconds) or seconds < 0:
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
    if effect:
        validate_taint_effect(errs, effect, f"{path}.effect")
    if tol.get("tolerationSeconds") is not None and effect != "NoExecute":
        errs.invalid(f"{path}.effect", effect,
                     "effect must be 'NoExecute' when `tolerationSeconds` is set")


def validate_pod_template(errs: Errors, template: Any, path: str, *, workload: str = "ReplicaSet",
                          allow_active_deadline: bool = False) -> None:
    """`ValidatePodTemplateSpec`: labels plus the pod spec. Jobs' templates may set
    activeDeadlineSeconds; the replicated workloads' may not, ``workload`` naming the controller in
    the message (a DaemonSet's is Invalid, the others' Forbidden)."""
    if not isinstance(template, dict):
        errs.required(f"{path}.spec.containers")
        return
    meta = template.get("metadata") or {}
    validate_labels(errs, meta.get("labels"), f"{path}.metadata.labels")
    validate_annotations(errs, meta.get("annotations"), f"{path}.metadata.annotations")
    validate_pod_spec(errs, template.get("spec"), f"{path}.spec")
    spec = template.get("spec")
    if isinstance(spec, dict) and spec.get("activeDeadlineSeconds") is not None and not allow_active_deadline:
        message = f"activeDeadlineSeconds in {workload} is not Supported"
        if workload == "DaemonSet":
            errs.invalid(f"{path}.spec.activeDeadlineSeconds", spec["activeDeadlineSeconds"], message)
        else:
            errs.forbidden(f"{path}.spec.activeDeadlineSeconds", message)


# --- defaulting ---------------------------------------------------------------------------------


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
    dict_at(ctr, "resources")
    for port in as_list(ctr.get("ports")):
        if isinstance(port, dict):
            port.setdefault("protocol", "TCP")
    for var in as_list(ctr.get("env")):
        field_ref = as_map(as_map(var).get("valueFrom")).get("fieldRef")
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
    dict_at(spec, "securityContext")
    for group in ("initContainers", "containers"):
        for ctr in as_list(spec.get(group)):
            _default_container(ctr)
    for vol in as_list(spec.get("volumes")):
        if not isinstance(vol, dict):
            continue
        for source in ("configMap", "secret", "projected", "downwardAPI"):
            if isinstance(vol.get(source), dict):
                vol[source].setdefault("defaultMode", 420)
        if isinstance(vol.get("hostPath"), dict):
            vol["hostPath"].setdefault("type", "")


def default_template(spec: dict) -> None:
    template = dict_at(spec, "template")
    dict_at(template, "metadata")
    default_pod_spec(dict_at(template, "spec"))


TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")


def validate_taint_effect(errs: Errors, effect: Any, path: str) -> None:
    """`validateTaintEffect` (Node taints and pod tolerations): an empty effect is Required, an
    unknown one lists the effects in the Go source's order."""
    if not effect:
        errs.required(path)
    elif effect not in TAINT_EFFECTS:
        errs.not_supported(path, effect, TAINT_EFFECTS, ordered=True)
