"""Reading Kubernetes objects: the one place the dashboard interprets what the API returns.

Every view — the page's presenters, the healing timeline, the traffic lab and the actions —
asks this module what an object means instead of reading fields itself:

- pod STATUS, READY and RESTARTS exactly as ``kubectl get pods`` prints them (a port of
  printPod in kubernetes/pkg/printers/internalversion/printers.go, held to the API server's
  Table printer by the golden table tests/golden/pod_status.yaml), readiness and conditions;
- endpoint states from EndpointSlices (core/v1 Endpoints on clusters without them), in one
  vocabulary: ``ready``, ``not-ready``, ``terminating``;
- owners (the controlling ownerReference), times (RFC 3339) and human ages (kubectl's AGE);
- label selectors: the string form of ``kubectl -l`` / LBDEMO_SELECTOR (equality- and
  set-based: ``a=b``, ``a!=b``, ``a in (x,y)``, ``a notin (x)``, ``a``, ``!a``, ``a>1``,
  ``a<1``), a ``LabelSelector`` (matchLabels and matchExpressions) and a Service's map.

Objects come from any API server, so reading never raises: a field of the wrong type reads as
absent, an annotation that is not a number reads as no number (``deployment.kubernetes.io/
revision: "abc"`` is a revision the page cannot order, not a crash). Pure functions, no I/O.
"""

from __future__ import annotations

import contextlib
import re
import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

Obj = dict[str, Any]

READY, NOT_READY, TERMINATING = "ready", "not-ready", "terminating"
ENDPOINT_STATES = (READY, NOT_READY, TERMINATING)
SERVICE_NAME_LABEL = "kubernetes.io/service-name"
REVISION_ANNOTATION = "deployment.kubernetes.io/revision"
# node.NodeUnreachablePodReason: the node controller's reason for pods of a lost node.
NODE_LOST = "NodeLost"
# Longest whole number any field or annotation is read as (int64 has 19 digits).
MAX_DIGITS = 18


# --- safe field access ------------------------------------------------------------------------
def mapping(value: object) -> dict[str, Any]:
    """``value`` if it is a mapping, else an empty one."""
    return value if isinstance(value, dict) else {}


def items(value: object) -> list[Any]:
    """``value`` if it is a list, else an empty one."""
    return value if isinstance(value, list) else []


def dicts(value: object) -> list[dict[str, Any]]:
    """The mappings in a list (anything else in it is skipped)."""
    return [item for item in items(value) if isinstance(item, dict)]


def text(value: object) -> str:
    """A string field ('' when absent or not a string; numbers are spelt out)."""
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return ""


def whole_number(value: object) -> int | None:
    """An integer field or an ASCII decimal string of at most MAX_DIGITS digits, else None.

    ``str.isdigit`` and ``int()`` accept superscripts and other scripts' digits; Kubernetes
    quantities and annotations are ASCII, so only ``[0-9]`` (with an optional leading ``-``) is
    a number here.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and re.fullmatch(rf"-?[0-9]{{1,{MAX_DIGITS}}}", value):
        return int(value)
    return None


def count(value: object) -> int:
    """A count field (replicas, restartCount): its whole number, 0 when absent or malformed."""
    number = whole_number(value)
    return number if number is not None and number >= 0 else 0


def metadata(obj: object) -> dict[str, Any]:
    """The object's metadata."""
    return mapping(mapping(obj).get("metadata"))


def spec(obj: object) -> dict[str, Any]:
    """The object's spec."""
    return mapping(mapping(obj).get("spec"))


def status(obj: object) -> dict[str, Any]:
    """The object's status."""
    return mapping(mapping(obj).get("status"))


def name(obj: object) -> str:
    """metadata.name."""
    return text(metadata(obj).get("name"))


def uid(obj: object) -> str:
    """metadata.uid."""
    return text(metadata(obj).get("uid"))


def string_map(value: object) -> dict[str, str]:
    """A map of strings (labels, annotations, a Service selector); other entries are skipped."""
    return {k: v for k, v in mapping(value).items() if isinstance(k, str) and isinstance(v, str)}


def labels(obj: object) -> dict[str, str]:
    """metadata.labels."""
    return string_map(metadata(obj).get("labels"))


def annotations_of(obj: object) -> dict[str, str]:
    """metadata.annotations."""
    return string_map(metadata(obj).get("annotations"))


def deleting(obj: object) -> bool:
    """True once the object has a deletionTimestamp."""
    return bool(metadata(obj).get("deletionTimestamp"))


def revision(obj: object) -> int | None:
    """A Deployment's or ReplicaSet's ``deployment.kubernetes.io/revision``, None if not a number."""
    number = whole_number(annotations_of(obj).get(REVISION_ANNOTATION))
    return number if number is not None and number >= 0 else None


# --- owners -----------------------------------------------------------------------------------
def owner_references(obj: object) -> list[dict[str, Any]]:
    """metadata.ownerReferences."""
    return dicts(metadata(obj).get("ownerReferences"))


def controller_ref(obj: object) -> dict[str, Any] | None:
    """The controlling owner reference (``controller: true``), if any."""
    return next((ref for ref in owner_references(obj) if ref.get("controller") is True), None)


def controller_uid(obj: object) -> str:
    """The uid of the object's controlling owner, or ''."""
    return text(mapping(controller_ref(obj)).get("uid"))


def owned_by(obj: object, *, kind: str, owner: str) -> bool:
    """True if an owner reference names ``kind``/``owner``."""
    return any(ref.get("kind") == kind and ref.get("name") == owner for ref in owner_references(obj))


# --- time -------------------------------------------------------------------------------------
def parse_time(value: object) -> datetime | None:
    """Parse a Kubernetes RFC 3339 timestamp ('2026-11-24T21:00:00Z', optional fraction)."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def human_age(created: datetime | None, now: datetime) -> str:
    """kubectl's AGE column (apimachinery's duration.HumanDuration)."""
    if created is None:
        return "<unknown>"
    seconds = int((now - created).total_seconds())
    if seconds < -1:
        return "<invalid>"
    seconds = max(seconds, 0)
    minutes, hours = seconds // 60, seconds // 3600
    if seconds < 120:
        return f"{seconds}s"
    if minutes < 10:
        return f"{minutes}m{seconds % 60}s" if seconds % 60 else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    if hours < 8:
        return f"{hours}h{minutes % 60}m" if minutes % 60 else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        return f"{hours // 24}d{hours % 24}h" if hours % 24 else f"{hours // 24}d"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        years = hours // 24 // 365
        return f"{years}y{(hours // 24) % 365}d" if (hours // 24) % 365 else f"{years}y"
    return f"{hours // 24 // 365}y"


def age(obj: object, now: datetime) -> str:
    """The object's AGE (from metadata.creationTimestamp)."""
    return human_age(parse_time(metadata(obj).get("creationTimestamp")), now)


# --- conditions and pods ----------------------------------------------------------------------
def conditions(obj: object) -> list[dict[str, Any]]:
    """status.conditions."""
    return dicts(status(obj).get("conditions"))


def condition_true(obj: object, kind: str) -> bool:
    """True if the first status.conditions entry of type ``kind`` has status "True"."""
    found = next((c for c in conditions(obj) if c.get("type") == kind), None)
    return found is not None and found.get("status") == "True"


def pod_ready(pod: object) -> bool:
    """The pod's Ready condition is True (what EndpointSlices and the page's "ready" follow)."""
    return condition_true(pod, "Ready")


def pod_running(pod: object) -> bool:
    """Phase Running with at least one container running."""
    return status(pod).get("phase") == "Running" and any(
        "running" in mapping(cs.get("state")) for cs in dicts(status(pod).get("containerStatuses")))


def _restartable(container: object) -> bool:
    """An init container with restartPolicy Always: a sidecar (podutil.IsRestartableInitContainer)."""
    return mapping(container).get("restartPolicy") == "Always"


def _terminated_reason(terminated: dict[str, Any], prefix: str = "") -> str:
    reason = text(terminated.get("reason"))
    if reason:
        return prefix + reason
    signal = count(terminated.get("signal"))
    if signal:
        return f"{prefix}Signal:{signal}"
    return f"{prefix}ExitCode:{whole_number(terminated.get('exitCode')) or 0}"


def _finished_at(container: dict[str, Any]) -> datetime | None:
    return parse_time(mapping(mapping(container.get("lastState")).get("terminated")).get("finishedAt"))


def _later(current: datetime | None, candidate: datetime | None) -> datetime | None:
    if candidate is None:
        return current
    return candidate if current is None or candidate > current else current


@dataclass(frozen=True)
class PodPrint:
    """What ``kubectl get pod`` prints for a pod: READY (ready/total), STATUS and RESTARTS."""

    ready: int
    total: int
    status: str
    restarts: int
    last_restart: datetime | None

    def restarts_text(self, now: datetime) -> str:
        """The RESTARTS cell: ``3 (2m ago)`` when the last restart is known, else ``3``."""
        if self.restarts and self.last_restart is not None:
            return f"{self.restarts} ({human_age(self.last_restart, now)} ago)"
        return str(self.restarts)


# Within one render (printing_once) print_pod computes each pod object once: the page load, a
# snapshot or a frame asks for the same pods for the cards, the counts and the topology.
_render = threading.local()


@contextlib.contextmanager
def printing_once() -> Iterator[None]:
    """Remember print_pod's answers by object until the block ends (the cache's objects do not
    change during one render; outside such a block nothing is remembered)."""
    if getattr(_render, "memo", None) is not None:
        yield
        return
    _render.memo = {}
    try:
        yield
    finally:
        _render.memo = None


def print_pod(pod: object) -> PodPrint:
    """A faithful port of kubectl's printPod (READY, STATUS and RESTARTS columns)."""
    memo: dict[int, tuple[object, PodPrint]] | None = getattr(_render, "memo", None)
    if memo is None:
        return _print_pod(pod)
    known = memo.get(id(pod))
    if known is None or known[0] is not pod:
        known = memo[id(pod)] = (pod, _print_pod(pod))
    return known[1]


def _print_pod(pod: object) -> PodPrint:
    pod_spec, pod_status = spec(pod), status(pod)
    phase = text(pod_status.get("phase"))
    reason = text(pod_status.get("reason")) or phase
    for condition in conditions(pod):
        if condition.get("type") == "PodScheduled" and condition.get("reason") == "SchedulingGated":
            reason = "SchedulingGated"

    init_specs = dicts(pod_spec.get("initContainers"))
    init_by_name = {text(c.get("name")): c for c in init_specs}
    total = len(dicts(pod_spec.get("containers"))) + sum(1 for c in init_specs if _restartable(c))
    ready = restarts = sidecar_restarts = 0
    last_restart: datetime | None = None
    last_sidecar_restart: datetime | None = None

    initializing = False
    for index, container in enumerate(dicts(pod_status.get("initContainerStatuses"))):
        restarts += count(container.get("restartCount"))
        last_restart = _later(last_restart, _finished_at(container))
        sidecar = _restartable(init_by_name.get(text(container.get("name"))))
        if sidecar:
            sidecar_restarts += count(container.get("restartCount"))
            last_sidecar_restart = _later(last_sidecar_restart, _finished_at(container))
        state = mapping(container.get("state"))
        terminated, waiting = state.get("terminated"), state.get("waiting")
        if isinstance(terminated, dict) and whole_number(terminated.get("exitCode")) == 0:
            continue
        if sidecar and container.get("started") is True:
            if container.get("ready") is True:
                ready += 1
            continue
        if isinstance(terminated, dict):
            reason = _terminated_reason(terminated, "Init:")
        elif isinstance(waiting, dict) and text(waiting.get("reason")) not in ("", "PodInitializing"):
            reason = "Init:" + text(waiting.get("reason"))
        else:
            reason = f"Init:{index}/{len(init_specs)}"
        initializing = True
        break

    if not initializing or condition_true(pod, "Initialized"):
        restarts, last_restart = sidecar_restarts, last_sidecar_restart
        has_running = False
        for container in reversed(dicts(pod_status.get("containerStatuses"))):
            restarts += count(container.get("restartCount"))
            last_restart = _later(last_restart, _finished_at(container))
            state = mapping(container.get("state"))
            terminated, waiting = state.get("terminated"), state.get("waiting")
            if isinstance(waiting, dict) and text(waiting.get("reason")):
                reason = text(waiting.get("reason"))
            elif isinstance(terminated, dict):
                reason = _terminated_reason(terminated)
            elif container.get("ready") is True and isinstance(state.get("running"), dict):
                has_running = True
                ready += 1
        if reason == "Completed" and has_running:
            reason = "Running" if pod_ready(pod) else "NotReady"

    if deleting(pod) and text(pod_status.get("reason")) == NODE_LOST:
        reason = "Unknown"
    elif deleting(pod) and phase not in ("Succeeded", "Failed"):
        reason = "Terminating"
    return PodPrint(ready=ready, total=total, status=reason, restarts=restarts, last_restart=last_restart)


def pod_status(pod: object) -> str:
    """The STATUS ``kubectl get pods`` prints for a pod."""
    return print_pod(pod).status


# --- endpoints --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Endpoint:
    """One endpoint address of a Service, from an EndpointSlice or a legacy Endpoints object."""

    ip: str
    ports: str
    pod: str
    node: str
    state: str


def slice_state(endpoint: Mapping[str, Any]) -> str:
    """An EndpointSlice endpoint's state: terminating, else not-ready if ready is false, else ready
    (discovery/v1: an unset ``ready`` means ready)."""
    endpoint_conditions = mapping(endpoint.get("conditions"))
    if endpoint_conditions.get("terminating") is True:
        return TERMINATING
    return NOT_READY if endpoint_conditions.get("ready") is False else READY


def _pod_ref(ref: object) -> str:
    ref = mapping(ref)
    return text(ref.get("name")) if ref.get("kind") == "Pod" else ""


def _port_text(ports: object) -> str:
    return ",".join(str(count(p.get("port"))) for p in dicts(ports) if count(p.get("port")))


def slice_endpoints(item: object) -> Iterator[Endpoint]:
    """Every address of one EndpointSlice."""
    ports = _port_text(mapping(item).get("ports"))
    for endpoint in dicts(mapping(item).get("endpoints")):
        state, pod = slice_state(endpoint), _pod_ref(endpoint.get("targetRef"))
        node = text(endpoint.get("nodeName"))
        for address in items(endpoint.get("addresses")):
            yield Endpoint(ip=text(address), ports=ports, pod=pod, node=node, state=state)


def legacy_endpoints(item: object) -> Iterator[Endpoint]:
    """Every address of one core/v1 Endpoints object (it has no terminating addresses)."""
    for subset in dicts(mapping(item).get("subsets")):
        ports = _port_text(subset.get("ports"))
        for key, state in (("addresses", READY), ("notReadyAddresses", NOT_READY)):
            for address in dicts(subset.get(key)):
                yield Endpoint(ip=text(address.get("ip")), ports=ports,
                               pod=_pod_ref(address.get("targetRef")), node=text(address.get("nodeName")),
                               state=state)


def pod_states_of(obj: object, kind: str) -> dict[str, str]:
    """Pod name -> endpoint state in one EndpointSlice or Endpoints object."""
    if kind == "EndpointSlice":
        pairs = [(_pod_ref(e.get("targetRef")), slice_state(e)) for e in dicts(mapping(obj).get("endpoints"))]
    else:
        pairs = [(e.pod, e.state) for e in legacy_endpoints(obj)]
    return merge_states(pairs)


def service_slices(slices: Iterable[Obj], service: str) -> list[Obj]:
    """The EndpointSlices of a Service (labelled kubernetes.io/service-name)."""
    return [s for s in slices if labels(s).get(SERVICE_NAME_LABEL) == service]


def service_endpoints(slices: Iterable[Obj], endpoints: Iterable[Obj],
                      service: str) -> tuple[str, list[Endpoint]]:
    """A Service's addresses and where they came from: its EndpointSlices when it has any,
    else its legacy Endpoints object (a cluster without discovery/v1)."""
    mine = service_slices(slices, service)
    if mine:
        return "EndpointSlice", [e for item in mine for e in slice_endpoints(item)]
    legacy = [e for item in endpoints if name(item) == service for e in legacy_endpoints(item)]
    return "Endpoints", legacy


# When one pod appears in several slices (during a slice rewrite), the most telling state wins.
_STATE_RANK = {NOT_READY: 0, READY: 1, TERMINATING: 2}


def merge_states(pairs: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Pod name -> endpoint state from (pod, state) pairs."""
    states: dict[str, str] = {}
    for pod, state in pairs:
        if pod and _STATE_RANK[state] >= _STATE_RANK.get(states.get(pod, ""), -1):
            states[pod] = state
    return states


def endpoint_states(slices: Iterable[Obj], endpoints: Iterable[Obj], service: str) -> dict[str, str]:
    """Pod name -> endpoint state for a Service's endpoints (its EndpointSlices, else Endpoints)."""
    mine = service_slices(slices, service)
    if mine:
        return merge_states(pair for item in mine for pair in pod_states_of(item, "EndpointSlice").items())
    return merge_states(pair for item in endpoints if name(item) == service
                        for pair in pod_states_of(item, "Endpoints").items())


def resolved_ports(slices: Iterable[Obj], endpoints: Iterable[Obj], service: str) -> dict[str, int]:
    """Service port name -> the container port its targetPort resolved to, as the endpoints
    controller published it (slice and subset ports carry the Service port's name)."""
    resolved: dict[str, int] = {}
    for item in endpoints:
        if name(item) == service:
            for subset in dicts(item.get("subsets")):
                for port in dicts(subset.get("ports")):
                    if count(port.get("port")):
                        resolved[text(port.get("name"))] = count(port.get("port"))
    for item in service_slices(slices, service):
        for port in dicts(item.get("ports")):
            if count(port.get("port")):
                resolved[text(port.get("name"))] = count(port.get("port"))
    return resolved


# --- label selectors --------------------------------------------------------------------------
class SelectorError(ValueError):
    """A label selector that cannot be parsed (the message says what is wrong with it)."""


_NAME_PART = r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?"
_DNS_SUBDOMAIN = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*"
_KEY_RE = re.compile(rf"({_DNS_SUBDOMAIN}/)?{_NAME_PART}")
_VALUE_RE = re.compile(rf"({_NAME_PART})?")
_OPERATORS = {"In": "in", "NotIn": "notin", "Exists": "exists", "DoesNotExist": "!"}


def _check_key(key: str) -> str:
    prefix, _, _ = key.rpartition("/")
    if not _KEY_RE.fullmatch(key) or len(key.rpartition("/")[2]) > 63 or len(prefix) > 253:
        raise SelectorError(f"{key!r} is not a valid label key (a name of at most 63 characters: letters, "
                            "digits, '-', '_' or '.', starting and ending with a letter or digit, with "
                            "an optional DNS-subdomain prefix and '/')")
    return key


def _check_value(value: str) -> str:
    if len(value) > 63 or not _VALUE_RE.fullmatch(value):
        raise SelectorError(f"{value!r} is not a valid label value (at most 63 characters: letters, digits, "
                            "'-', '_' or '.', starting and ending with a letter or digit)")
    return value


@dataclass(frozen=True)
class Requirement:
    """One label requirement: key, operator (=, !=, in, notin, exists, !, >, <) and values."""

    key: str
    op: str
    values: tuple[str, ...] = ()

    def matches(self, given: Mapping[str, str]) -> bool:
        """Whether a label map satisfies this requirement (apimachinery's Requirement.Matches)."""
        present, value = self.key in given, given.get(self.key)
        if self.op in ("=", "in"):
            return present and value in self.values
        if self.op in ("!=", "notin"):
            return not present or value not in self.values
        if self.op == "exists":
            return present
        if self.op == "!":
            return not present
        number, bound = whole_number(value), whole_number(self.values[0] if self.values else None)
        if number is None or bound is None:
            return False
        return number > bound if self.op == ">" else number < bound

    def __str__(self) -> str:
        if self.op in ("=", "!="):
            return f"{self.key}{self.op}{self.values[0]}"
        if self.op in ("in", "notin"):
            return f"{self.key} {self.op} ({','.join(self.values)})"
        if self.op == "exists":
            return self.key
        if self.op == "!":
            return f"!{self.key}"
        return f"{self.key}{self.op}{self.values[0]}"


@dataclass(frozen=True)
class Selector:
    """A label selector: every requirement must hold. ``nothing`` selects no object at all
    (a Service without a selector); an empty selector without it selects every object."""

    requirements: tuple[Requirement, ...] = ()
    nothing: bool = False

    def matches(self, given: Mapping[str, str] | None) -> bool:
        """Whether a label map is selected."""
        if self.nothing:
            return False
        given = given or {}
        return all(r.matches(given) for r in self.requirements)

    def selects(self, obj: object) -> bool:
        """Whether an object's labels are selected."""
        return self.matches(labels(obj))

    def __str__(self) -> str:
        """kubectl's form (``app=backend,tier in (a,b)``), or ``<none>`` for a selector of nothing."""
        if self.nothing:
            return "<none>"
        return ",".join(str(r) for r in self.requirements)


NOTHING = Selector(nothing=True)


def _split_terms(source: str) -> list[str]:
    """Split on the commas that are not inside parentheses."""
    terms: list[str] = []
    current: list[str] = []
    depth = 0
    for char in source:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth < 0:
                raise SelectorError(f"unexpected ')' in {source!r}")
        if char == "," and depth == 0:
            terms.append("".join(current))
            current = []
        else:
            current.append(char)
    if depth:
        raise SelectorError(f"unclosed '(' in {source!r}")
    terms.append("".join(current))
    return terms


split_terms = _split_terms


_SET_TERM = re.compile(r"(\S+)\s+(in|notin)\s*\((.*)\)")
_CMP_TERM = re.compile(r"([^=!<>\s]+)\s*(==|=|!=|>|<)\s*(\S*)")


def _parse_term(term: str) -> Requirement:
    if match := _SET_TERM.fullmatch(term):
        key, op, inner = match.groups()
        values = tuple(sorted({_check_value(v.strip()) for v in inner.split(",")}))
        return Requirement(_check_key(key), op, values)
    if match := _CMP_TERM.fullmatch(term):
        key, op, value = match.groups()
        if op in (">", "<"):
            if whole_number(value) is None:
                raise SelectorError(f"{term!r}: {op} needs a whole number, not {value!r}")
            return Requirement(_check_key(key), op, (value,))
        return Requirement(_check_key(key), "=" if op == "==" else op, (_check_value(value),))
    if term.startswith("!"):
        return Requirement(_check_key(term[1:].strip()), "!")
    if re.fullmatch(r"\S+", term):
        return Requirement(_check_key(term), "exists")
    raise SelectorError(f"cannot parse the requirement {term!r}")


def parse_selector(source: str) -> Selector:
    """Parse a label selector's string form (``kubectl -l``); raise SelectorError saying why not.
    An empty string selects everything, as with kubectl."""
    if not isinstance(source, str):
        raise SelectorError("a label selector must be a string")
    if not source.strip():
        return Selector()
    terms = [t.strip() for t in _split_terms(source)]
    if any(not t for t in terms):
        raise SelectorError(f"empty requirement in {source!r}")
    return Selector(tuple(_parse_term(t) for t in terms))


def selector_from_map(selector: object) -> Selector:
    """A Service's ``spec.selector`` (key=value pairs; none or empty selects nothing)."""
    pairs = string_map(selector)
    if not pairs:
        return NOTHING
    return Selector(tuple(Requirement(k, "=", (v,)) for k, v in sorted(pairs.items())))


def selector_from_label_selector(selector: object) -> Selector:
    """A LabelSelector (matchLabels and matchExpressions, as in a Deployment); an empty one
    selects everything, a malformed expression makes it select nothing (as the API server refuses it)."""
    selector = mapping(selector)
    match_labels = sorted(string_map(selector.get("matchLabels")).items())
    requirements = [Requirement(k, "=", (v,)) for k, v in match_labels]
    for expression in dicts(selector.get("matchExpressions")):
        op = _OPERATORS.get(text(expression.get("operator")))
        key = text(expression.get("key"))
        values = tuple(sorted(v for v in items(expression.get("values")) if isinstance(v, str)))
        if op is None or not key or (op in ("in", "notin")) != bool(values):
            return NOTHING
        requirements.append(Requirement(key, op, values))
    return Selector(tuple(requirements))
