"""Server-side Tables (`meta.k8s.io/v1` Table), the form every `kubectl get` asks for.

kubectl sends `Accept: application/json;as=Table;v=v1;g=meta.k8s.io` and prints the columns the
server returns; without them it prints only NAME and AGE. This module is the sandbox's copy of
`pkg/printers/internalversion/printers.go`: the same column definitions (names, types,
descriptions taken from the official schemas, priority 1 for the `-o wide` columns) and the
same cell logic, notably printPod's STATUS (ContainerCreating, CrashLoopBackOff, Init:1/2,
Completed, Terminating, ...) and RESTARTS with "(5m ago)", and kubectl's HumanDuration ages.

Like the real server (whose TableConvertor always generates with `Wide: true`), every row has
every column; kubectl hides priority>0 columns unless `-o wide`. In a watch, the first event's
Table carries the column definitions and later ones carry `"columnDefinitions": null`
(`watchEmbeddedEncoder` sets NoHeaders after the first object); `watch_event_table` builds both.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from sandbox.apiserver.schemas import definitions

Row = list[Any]
Printer = Callable[[dict, datetime], Row]


# --- formatting helpers ------------------------------------------------------------------------


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


def _or_none(value: Any, placeholder: str = "<none>") -> Any:
    return value if value not in (None, "") else placeholder


def _containers_cells(template_spec: Mapping[str, Any] | None) -> tuple[str, str]:
    """`layoutContainerCells`: container names and images, comma separated."""
    containers = [c for c in (template_spec or {}).get("containers") or [] if isinstance(c, dict)]
    return (",".join(str(c.get("name") or "") for c in containers),
            ",".join(str(c.get("image") or "") for c in containers))


def _get(obj: Mapping[str, Any], *path: str) -> Any:
    for key in path:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)  # type: ignore[assignment]
    return obj


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


# --- column definitions ------------------------------------------------------------------------


def _doc(definition: str, field: str) -> str:
    """A field's description from the official schema (what `SwaggerDoc()` returns)."""
    props = definitions().get(definition, {}).get("properties", {})
    return str(props.get(field, {}).get("description", ""))


META = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
CORE = "io.k8s.api.core.v1."


def _col(name: str, type_: str = "string", description: str = "", *, priority: int = 0,
         format_: str = "") -> dict[str, Any]:
    return {"name": name, "type": type_, "format": format_, "description": description, "priority": priority}


def _name_col() -> dict[str, Any]:
    return _col("Name", description=_doc(META, "name"), format_="name")


def _age_col() -> dict[str, Any]:
    return _col("Age", description=_doc(META, "creationTimestamp"))


RESTARTS_DOC = ("The number of times the containers in this pod have been restarted and when the last "
                "container in this pod has restarted.")
CONTAINERS_DOC = "Names of each container in the template."
IMAGES_DOC = "Images referenced by each container in the template."


def _columns(plural: str) -> list[dict[str, Any]]:
    apps = "io.k8s.api.apps.v1."
    if plural == "pods":
        return [_name_col(),
                _col("Ready", description="The aggregate readiness state of this pod for accepting traffic."),
                _col("Status", description="The aggregate status of the containers in this pod."),
                _col("Restarts", description=RESTARTS_DOC),
                _age_col(),
                _col("IP", description=_doc(CORE + "PodStatus", "podIP"), priority=1),
                _col("Node", description=_doc(CORE + "PodSpec", "nodeName"), priority=1),
                _col("Nominated Node", description=_doc(CORE + "PodStatus", "nominatedNodeName"), priority=1),
                _col("Readiness Gates", description=_doc(CORE + "PodSpec", "readinessGates"), priority=1)]
    if plural == "deployments":
        return [_name_col(),
                _col("Ready", description="Number of the pod with ready state"),
                _col("Up-to-date", description=_doc(apps + "DeploymentStatus", "updatedReplicas")),
                _col("Available", description=_doc(apps + "DeploymentStatus", "availableReplicas")),
                _age_col(),
                _col("Containers", description=CONTAINERS_DOC, priority=1),
                _col("Images", description=IMAGES_DOC, priority=1),
                _col("Selector", description=_doc(apps + "DeploymentSpec", "selector"), priority=1)]
    if plural == "replicasets":
        return [_name_col(),
                _col("Desired", "integer", _doc(apps + "ReplicaSetSpec", "replicas")),
                _col("Current", "integer", _doc(apps + "ReplicaSetStatus", "replicas")),
                _col("Ready", "integer", _doc(apps + "ReplicaSetStatus", "readyReplicas")),
                _age_col(),
                _col("Containers", description=CONTAINERS_DOC, priority=1),
                _col("Images", description=IMAGES_DOC, priority=1),
                _col("Selector", description=_doc(apps + "ReplicaSetSpec", "selector"), priority=1)]
    if plural == "services":
        spec = CORE + "ServiceSpec"
        return [_name_col(),
                _col("Type", description=_doc(spec, "type")),
                _col("Cluster-IP", description=_doc(spec, "clusterIP")),
                _col("External-IP", description=_doc(spec, "externalIPs")),
                _col("Port(s)", description=_doc(spec, "ports")),
                _age_col(),
                _col("Selector", description=_doc(spec, "selector"), priority=1)]
    if plural == "endpoints":
        return [_name_col(), _col("Endpoints", description=_doc(CORE + "Endpoints", "subsets")), _age_col()]
    if plural == "endpointslices":
        eps = "io.k8s.api.discovery.v1.EndpointSlice"
        return [_name_col(),
                _col("AddressType", description=_doc(eps, "addressType")),
                _col("Ports", description=_doc(eps, "ports")),
                _col("Endpoints", description=_doc(eps, "endpoints")),
                _age_col()]
    if plural == "events":
        event = CORE + "Event"
        return [_col("Last Seen", description=_doc(event, "lastTimestamp")),
                _col("Type", description=_doc(event, "type")),
                _col("Reason", description=_doc(event, "reason")),
                _col("Object", description=_doc(event, "involvedObject")),
                _col("Subobject", description=_doc(CORE + "ObjectReference", "fieldPath"), priority=1),
                _col("Source", description=_doc(event, "source"), priority=1),
                _col("Message", description=_doc(event, "message")),
                _col("First Seen", description=_doc(event, "firstTimestamp"), priority=1),
                _col("Count", description=_doc(event, "count"), priority=1),
                _col("Name", description=_doc(META, "name"), priority=1, format_="name")]
    if plural == "nodes":
        info = CORE + "NodeSystemInfo"
        return [_name_col(),
                _col("Status", description="The status of the node"),
                _col("Roles", description="The roles of the node"),
                _age_col(),
                _col("Version", description=_doc(info, "kubeletVersion")),
                _col("Internal-IP", description=_doc(CORE + "NodeStatus", "addresses"), priority=1),
                _col("External-IP", description=_doc(CORE + "NodeStatus", "addresses"), priority=1),
                _col("OS-Image", description=_doc(info, "osImage"), priority=1),
                _col("Kernel-Version", description=_doc(info, "kernelVersion"), priority=1),
                _col("Container-Runtime", description=_doc(info, "containerRuntimeVersion"), priority=1)]
    if plural == "namespaces":
        return [_name_col(), _col("Status", description="The status of the namespace"), _age_col()]
    if plural == "configmaps":
        return [_name_col(), _col("Data", description=_doc(CORE + "ConfigMap", "data")), _age_col()]
    if plural == "serviceaccounts":
        return [_name_col(), _col("Secrets", description=_doc(CORE + "ServiceAccount", "secrets")),
                _age_col()]
    if plural == "roles":
        return [_name_col(), _col("Created At", "date", _doc(META, "creationTimestamp"))]
    if plural == "rolebindings":
        binding = "io.k8s.api.rbac.v1.RoleBinding"
        return [_name_col(),
                _col("Role", description=_doc(binding, "roleRef")),
                _age_col(),
                _col("Users", description="Users in the roleBinding", priority=1),
                _col("Groups", description="Groups in the roleBinding", priority=1),
                _col("ServiceAccounts", description="ServiceAccounts in the roleBinding", priority=1)]
    return [_name_col(), _col("Created At", "date", _doc(META, "creationTimestamp"))]


# --- rows --------------------------------------------------------------------------------------


def _is_restartable_init(container: Mapping[str, Any] | None) -> bool:
    return isinstance(container, dict) and container.get("restartPolicy") == "Always"


def _later(current: datetime | None, candidate: Any) -> datetime | None:
    when = parse_time(candidate)
    if when is None:
        return current
    return when if current is None or when > current else current


def _condition_true(status: Mapping[str, Any], kind: str) -> bool:
    return any(isinstance(c, dict) and c.get("type") == kind and c.get("status") == "True"
               for c in status.get("conditions") or [])


def pod_status_cells(pod: Mapping[str, Any], now: datetime) -> tuple[str, str, str]:
    """printPod's READY, STATUS and RESTARTS cells."""
    spec = pod.get("spec") or {}
    status = pod.get("status") or {}
    containers = spec.get("containers") or []
    init_specs = {c.get("name"): c for c in spec.get("initContainers") or [] if isinstance(c, dict)}
    total = len(containers) + sum(1 for c in init_specs.values() if _is_restartable_init(c))
    ready = 0
    restarts = 0
    restartable_restarts = 0
    last_restart: datetime | None = None
    last_restartable_restart: datetime | None = None
    phase = status.get("phase") or ""
    reason = status.get("reason") or phase
    for condition in status.get("conditions") or []:
        if isinstance(condition, dict) and condition.get("type") == "PodScheduled" \
                and condition.get("reason") == "SchedulingGated":
            reason = "SchedulingGated"

    initializing = False
    init_statuses = [s for s in status.get("initContainerStatuses") or [] if isinstance(s, dict)]
    for i, cstatus in enumerate(init_statuses):
        restarts += _int(cstatus.get("restartCount"))
        finished = _get(cstatus, "lastState", "terminated", "finishedAt")
        last_restart = _later(last_restart, finished)
        restartable = _is_restartable_init(init_specs.get(cstatus.get("name")))
        if restartable:
            restartable_restarts += _int(cstatus.get("restartCount"))
            last_restartable_restart = _later(last_restartable_restart, finished)
        state = cstatus.get("state") or {}
        terminated = state.get("terminated")
        waiting = state.get("waiting")
        if isinstance(terminated, dict) and _int(terminated.get("exitCode")) == 0:
            continue
        if restartable and cstatus.get("started"):
            if cstatus.get("ready"):
                ready += 1
            continue
        if isinstance(terminated, dict):
            if not terminated.get("reason"):
                if _int(terminated.get("signal")):
                    reason = f"Init:Signal:{_int(terminated.get('signal'))}"
                else:
                    reason = f"Init:ExitCode:{_int(terminated.get('exitCode'))}"
            else:
                reason = f"Init:{terminated['reason']}"
        elif isinstance(waiting, dict) and waiting.get("reason") not in (None, "", "PodInitializing"):
            reason = f"Init:{waiting['reason']}"
        else:
            reason = f"Init:{i}/{len(init_specs)}"
        initializing = True
        break

    if not initializing or _condition_true(status, "Initialized"):
        restarts = restartable_restarts
        last_restart = last_restartable_restart
        has_running = False
        for cstatus in reversed([s for s in status.get("containerStatuses") or [] if isinstance(s, dict)]):
            restarts += _int(cstatus.get("restartCount"))
            last_restart = _later(last_restart, _get(cstatus, "lastState", "terminated", "finishedAt"))
            state = cstatus.get("state") or {}
            waiting, terminated = state.get("waiting"), state.get("terminated")
            if isinstance(waiting, dict) and waiting.get("reason"):
                reason = waiting["reason"]
            elif isinstance(terminated, dict) and terminated.get("reason"):
                reason = terminated["reason"]
            elif isinstance(terminated, dict):
                if _int(terminated.get("signal")):
                    reason = f"Signal:{_int(terminated.get('signal'))}"
                else:
                    reason = f"ExitCode:{_int(terminated.get('exitCode'))}"
            elif cstatus.get("ready") and state.get("running") is not None:
                has_running = True
                ready += 1
        if reason == "Completed" and has_running:
            reason = "Running" if _condition_true(status, "Ready") else "NotReady"

    deleting = bool(_get(pod, "metadata", "deletionTimestamp"))
    if deleting and status.get("reason") == "NodeLost":
        reason = "Unknown"
    elif deleting and phase not in ("Succeeded", "Failed"):
        reason = "Terminating"
    restarts_cell = str(restarts)
    if restarts and last_restart is not None:
        restarts_cell = f"{restarts} ({human_duration((now - last_restart).total_seconds())} ago)"
    return f"{ready}/{total}", str(reason), restarts_cell


def _pod_row(pod: dict, now: datetime) -> Row:
    spec, status = pod.get("spec") or {}, pod.get("status") or {}
    ready, reason, restarts = pod_status_cells(pod, now)
    ips = status.get("podIPs") or []
    ip = (ips[0].get("ip") if ips and isinstance(ips[0], dict) else None) or status.get("podIP")
    gates = spec.get("readinessGates") or []
    gates_cell = "<none>"
    if gates:
        conditions = {c.get("type"): c.get("status") for c in status.get("conditions") or []
                      if isinstance(c, dict)}
        true = sum(1 for g in gates
                   if isinstance(g, dict) and conditions.get(g.get("conditionType")) == "True")
        gates_cell = f"{true}/{len(gates)}"
    return [_name(pod), ready, reason, restarts, _age(pod, now), _or_none(ip), _or_none(spec.get("nodeName")),
            _or_none(status.get("nominatedNodeName")), gates_cell]


def _deployment_row(obj: dict, now: datetime) -> Row:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    names, images = _containers_cells(_get(spec, "template", "spec"))
    desired = spec.get("replicas")
    desired = 1 if desired is None else _int(desired)
    return [_name(obj), f"{_int(status.get('readyReplicas'))}/{desired}", _int(status.get("updatedReplicas")),
            _int(status.get("availableReplicas")), _age(obj, now), names, images,
            format_selector(spec.get("selector"))]


def _replicaset_row(obj: dict, now: datetime) -> Row:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    names, images = _containers_cells(_get(spec, "template", "spec"))
    desired = spec.get("replicas")
    return [_name(obj), 1 if desired is None else _int(desired), _int(status.get("replicas")),
            _int(status.get("readyReplicas")), _age(obj, now), names, images,
            format_selector(spec.get("selector")) or "<none>"]


def _service_external_ip(spec: Mapping[str, Any], status: Mapping[str, Any]) -> str:
    external = [str(ip) for ip in spec.get("externalIPs") or []]
    stype = spec.get("type") or "ClusterIP"
    if stype in ("ClusterIP", "NodePort"):
        return ",".join(external) if external else "<none>"
    if stype == "LoadBalancer":
        ingress = [str(i.get("ip") or i.get("hostname") or "") for i in
                   _get(status, "loadBalancer", "ingress") or [] if isinstance(i, dict)]
        combined = [i for i in ingress if i] + external
        return ",".join(combined) if combined else "<pending>"
    if stype == "ExternalName":
        return str(spec.get("externalName") or "")
    return "<unknown>"


def service_ports(ports: list[Any] | None) -> str:
    """`makePortString`: `80/TCP`, `80:30080/TCP`, comma separated (`<none>` when empty)."""
    pieces = []
    for port in ports or []:
        if not isinstance(port, dict):
            continue
        protocol = port.get("protocol") or "TCP"
        if _int(port.get("nodePort")) > 0:
            pieces.append(f"{port.get('port')}:{port.get('nodePort')}/{protocol}")
        else:
            pieces.append(f"{port.get('port')}/{protocol}")
    return ",".join(pieces) or "<none>"


def _service_row(obj: dict, now: datetime) -> Row:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    ips = spec.get("clusterIPs") or ([spec["clusterIP"]] if spec.get("clusterIP") else [])
    return [_name(obj), spec.get("type") or "ClusterIP", ips[0] if ips else "<none>",
            _service_external_ip(spec, status), service_ports(spec.get("ports")), _age(obj, now),
            format_labels(spec.get("selector"))]


def format_endpoints(subsets: list[Any] | None, *, limit: int = 3) -> str:
    """`formatEndpoints`: the first three ready `ip:port`, then ` + N more...`; `<none>`."""
    shown: list[str] = []
    count = 0
    for subset in subsets or []:
        if not isinstance(subset, dict):
            continue
        addresses = [a for a in subset.get("addresses") or [] if isinstance(a, dict)]
        ports = [p for p in subset.get("ports") or [] if isinstance(p, dict)]
        pairs = [str(a.get("ip")) for a in addresses] if not ports else \
            [f"{a.get('ip')}:{p.get('port')}" for p in ports for a in addresses]
        for pair in pairs:
            if count < limit:
                shown.append(pair)
            count += 1
    if not shown:
        return "<none>"
    text = ",".join(shown)
    return text + (f" + {count - limit} more..." if count > limit else "")


def _endpoints_row(obj: dict, now: datetime) -> Row:
    return [_name(obj), format_endpoints(obj.get("subsets")), _age(obj, now)]


def _limited(items: list[str], *, limit: int = 3, empty: str = "<unset>") -> str:
    if not items:
        return empty
    text = ",".join(items[:limit])
    return text + (f" + {len(items) - limit} more..." if len(items) > limit else "")


def _endpointslice_row(obj: dict, now: datetime) -> Row:
    ports = [str(p.get("port")) if p.get("port") is not None else "<unset>"
             for p in obj.get("ports") or [] if isinstance(p, dict)]
    addresses = [str(a) for ep in obj.get("endpoints") or [] if isinstance(ep, dict)
                 for a in ep.get("addresses") or []]
    return [_name(obj), obj.get("addressType") or "", _limited(ports), _limited(addresses), _age(obj, now)]


def _event_row(obj: dict, now: datetime) -> Row:
    first = since(obj.get("firstTimestamp"), now)
    if not obj.get("firstTimestamp"):
        first = since(obj.get("eventTime"), now)
    last = since(obj.get("lastTimestamp"), now) if obj.get("lastTimestamp") else first
    count = _int(obj.get("count"))
    series = obj.get("series")
    if isinstance(series, dict):
        last = since(series.get("lastObservedTime"), now)
        count = _int(series.get("count"))
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
            source_cell, str(obj.get("message") or "").strip(), first, count, _name(obj)]


def _node_roles(labels: Mapping[str, str]) -> list[str]:
    roles = set()
    for key, value in labels.items():
        if key.startswith("node-role.kubernetes.io/") and key[len("node-role.kubernetes.io/"):]:
            roles.add(key[len("node-role.kubernetes.io/"):])
        elif key == "kubernetes.io/role" and value:
            roles.add(value)
    return sorted(roles)


def _node_row(obj: dict, now: datetime) -> Row:
    status, spec = obj.get("status") or {}, obj.get("spec") or {}
    states = []
    for condition in status.get("conditions") or []:
        if isinstance(condition, dict) and condition.get("type") == "Ready":
            states = ["Ready" if condition.get("status") == "True" else "NotReady"]
    if not states:
        states = ["Unknown"]
    if spec.get("unschedulable"):
        states.append("SchedulingDisabled")
    info = status.get("nodeInfo") or {}
    addresses = [a for a in status.get("addresses") or [] if isinstance(a, dict)]

    def address(kind: str) -> str:
        return next((str(a.get("address")) for a in addresses if a.get("type") == kind), "<none>")

    roles = ",".join(_node_roles(_get(obj, "metadata", "labels") or {})) or "<none>"
    return [_name(obj), ",".join(states), roles, _age(obj, now), info.get("kubeletVersion") or "",
            address("InternalIP"), address("ExternalIP"),
            info.get("osImage") or "<unknown>", info.get("kernelVersion") or "<unknown>",
            info.get("containerRuntimeVersion") or "<unknown>"]


def _namespace_row(obj: dict, now: datetime) -> Row:
    return [_name(obj), _get(obj, "status", "phase") or "", _age(obj, now)]


def _configmap_row(obj: dict, now: datetime) -> Row:
    return [_name(obj), len(obj.get("data") or {}) + len(obj.get("binaryData") or {}), _age(obj, now)]


def _serviceaccount_row(obj: dict, now: datetime) -> Row:
    return [_name(obj), len(obj.get("secrets") or []), _age(obj, now)]


def _created_at_row(obj: dict, now: datetime) -> Row:
    return [_name(obj), _get(obj, "metadata", "creationTimestamp") or ""]


def _rolebinding_row(obj: dict, now: datetime) -> Row:
    ref = obj.get("roleRef") or {}
    subjects = [s for s in obj.get("subjects") or [] if isinstance(s, dict)]

    def names(kind: str) -> str:
        picked = [f"{s.get('namespace')}/{s.get('name')}" if kind == "ServiceAccount" else str(s.get("name"))
                  for s in subjects if s.get("kind") == kind]
        return ", ".join(picked)

    return [_name(obj), f"{ref.get('kind')}/{ref.get('name')}", _age(obj, now), names("User"), names("Group"),
            names("ServiceAccount")]


def _name(obj: Mapping[str, Any]) -> str:
    return str(_get(obj, "metadata", "name") or "")


def _age(obj: Mapping[str, Any], now: datetime) -> str:
    return since(_get(obj, "metadata", "creationTimestamp"), now)


PRINTERS: dict[str, Printer] = {
    "pods": _pod_row,
    "deployments": _deployment_row,
    "replicasets": _replicaset_row,
    "services": _service_row,
    "endpoints": _endpoints_row,
    "endpointslices": _endpointslice_row,
    "events": _event_row,
    "nodes": _node_row,
    "namespaces": _namespace_row,
    "configmaps": _configmap_row,
    "serviceaccounts": _serviceaccount_row,
    "roles": _created_at_row,
    "rolebindings": _rolebinding_row,
}

POD_ROW_CONDITIONS = {
    "Succeeded": [{"type": "Completed", "status": "True", "reason": "Succeeded",
                   "message": "The pod has completed successfully."}],
    "Failed": [{"type": "Completed", "status": "True", "reason": "Failed", "message": "The pod failed."}],
}


# --- tables ------------------------------------------------------------------------------------


def table_supported(plural: str) -> bool:
    """Whether ``plural`` has a printer (every served kind has one; others get Name/Created At)."""
    return plural in PRINTERS


def column_definitions(plural: str) -> list[dict[str, Any]]:
    """The Table columns the real server declares for ``plural``."""
    return _columns(plural)


def partial_object_metadata(obj: Mapping[str, Any]) -> dict[str, Any]:
    """An object as `PartialObjectMetadata` (what rows carry for `includeObject=Metadata`)."""
    return {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
            "metadata": dict(obj.get("metadata") or {})}


def table_row(plural: str, obj: dict, *, include_object: str = "Metadata",
              now: datetime | None = None) -> dict:
    """One Table row for ``obj``: its cells, row conditions and embedded object."""
    now = now or datetime.now(UTC)
    printer = PRINTERS.get(plural, _created_at_row)
    row: dict[str, Any] = {"cells": printer(obj, now)}
    if plural == "pods":
        conditions = POD_ROW_CONDITIONS.get(str(_get(obj, "status", "phase")))
        if conditions:
            row["conditions"] = conditions
    if include_object == "Object":
        row["object"] = obj
    elif include_object == "None":
        row["object"] = None
    else:
        row["object"] = partial_object_metadata(obj)
    return row


def table_for(plural: str, objects: list[dict], *, wide: bool = True, include_object: str = "Metadata",
              resource_version: str = "", headers: bool = True) -> dict:
    """A `meta.k8s.io/v1` Table of ``objects``. ``wide`` is accepted for symmetry with kubectl
    but, as on the real server, rows always carry every column. ``headers=False`` gives the
    `"columnDefinitions": null` form used after the first event of a watch."""
    now = datetime.now(UTC)
    metadata: dict[str, Any] = {"resourceVersion": resource_version} if resource_version else {}
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": metadata,
        "columnDefinitions": column_definitions(plural) if headers else None,
        "rows": [table_row(plural, obj, include_object=include_object, now=now) for obj in objects],
    }


def watch_event_table(plural: str, obj: dict, *, first: bool, include_object: str = "Metadata") -> dict:
    """The Table a watch event carries for ``obj`` (ADDED/MODIFIED/DELETED): the first event of a
    stream has the column definitions, later ones `null`, as `watchEmbeddedEncoder` does."""
    version = str(_get(obj, "metadata", "resourceVersion") or "")
    return table_for(plural, [obj], include_object=include_object, resource_version=version, headers=first)
