"""`/metrics` in the Prometheus text format, with kube-apiserver's main families
(`k8s.io/apiserver/pkg/endpoints/metrics`, `.../storage`): requests by verb, group, version,
resource, subresource, scope, dry run and code (`apiserver_request_total`), their latency
(`apiserver_request_duration_seconds`, long-running watches and streams excluded as upstream),
requests in flight, stored objects per resource (`apiserver_storage_objects`, what etcd object
counts became) and the process metrics client_golang's process collector exports.

Labels follow the apiserver's: verbs upper case with LIST/WATCH/APPLY told apart, scope
`resource`/`namespace`/`cluster`, non-resource requests with the path as subresource."""

from __future__ import annotations

import bisect
import os
import resource as rlimit
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from sandbox.apiserver.rbac import Attributes

BUCKETS = (0.005, 0.025, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 1.0, 1.25, 1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0,
           15.0, 20.0, 30.0, 45.0, 60.0)
LONG_RUNNING = frozenset({"WATCH", "CONNECT"})
STREAMING_SUBRESOURCES = frozenset({"log", "exec", "attach", "portforward", "proxy"})
LONG_RUNNING_SUFFIXES = tuple(f"/{sub}" for sub in STREAMING_SUBRESOURCES)
KNOWN_PATHS = frozenset({"/healthz", "/livez", "/readyz", "/metrics", "/version", "/openapi/v2",
                         "/openapi/v3", "/api", "/apis", "/"})
VERBS = {"list": "LIST", "watch": "WATCH", "get": "GET", "create": "POST", "update": "PUT", "patch": "PATCH",
         "delete": "DELETE", "deletecollection": "DELETE"}
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
LABELS = ("component", "dry_run", "group", "resource", "scope", "subresource", "verb", "version")

Labels = tuple[str, ...]  # values of LABELS, in order


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(names: Iterable[str], values: Iterable[str]) -> str:
    return ",".join(f'{n}="{_escape(v)}"' for n, v in zip(names, values, strict=True))


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def request_labels(method: str, attrs: Attributes, *, apply: bool, dry_run: bool, watch: bool) -> Labels:
    """The apiserver's labels of one request (`MonitorRequest`'s cleaned verb, scope...)."""
    if not attrs.resource_request:
        path = attrs.path if attrs.path in KNOWN_PATHS else "other"
        return ("apiserver", "", "", "", "", path, method, "")
    verb = VERBS.get(attrs.verb, method)
    if watch:
        verb = "WATCH"
    if verb == "PATCH" and apply:
        verb = "APPLY"
    if attrs.subresource in STREAMING_SUBRESOURCES and attrs.subresource != "log":
        verb = "CONNECT"
    scope = "resource" if attrs.name else "namespace" if attrs.namespace else "cluster"
    return ("apiserver", "All" if dry_run else "", attrs.api_group, attrs.resource, scope, attrs.subresource,
            verb, attrs.api_version)


@dataclass
class Histogram:
    """One label set's latency histogram (cumulative on output)."""

    counts: list[int] = field(default_factory=lambda: [0] * (len(BUCKETS) + 1))
    total: float = 0.0
    samples: int = 0

    def observe(self, seconds: float) -> None:
        self.counts[bisect.bisect_left(BUCKETS, seconds)] += 1
        self.total += seconds
        self.samples += 1


@dataclass
class Metrics:
    """The API server's request metrics (updated on the event loop, so without locks)."""

    requests: dict[tuple[Labels, str], int] = field(default_factory=dict)
    latencies: dict[Labels, Histogram] = field(default_factory=dict)
    inflight: dict[str, int] = field(default_factory=lambda: {"mutating": 0, "readOnly": 0})
    started: float = field(default_factory=time.time)

    def begin(self, method: str, *, long_running: bool) -> str:
        """Count a request in flight (long-running ones, watches and streams, are not); returns
        its kind for `end`."""
        kind = "" if long_running else "readOnly" if method in ("GET", "HEAD", "OPTIONS") else "mutating"
        if kind:
            self.inflight[kind] += 1
        return kind

    def end(self, kind: str, labels: Labels, code: int, seconds: float) -> None:
        """Record a finished request."""
        if kind:
            self.inflight[kind] -= 1
        key = (labels, str(code))
        self.requests[key] = self.requests.get(key, 0) + 1
        if labels[6] not in LONG_RUNNING and labels[5] not in STREAMING_SUBRESOURCES:
            self.latencies.setdefault(labels, Histogram()).observe(seconds)

    def render(self, object_counts: Mapping[str, int]) -> str:
        """Every family in the Prometheus text exposition format."""
        out: list[str] = []

        def family(name: str, kind: str, text: str) -> None:
            out.append(f"# HELP {name} {text}")
            out.append(f"# TYPE {name} {kind}")

        family("apiserver_current_inflight_requests", "gauge", "[STABLE] Maximal number of currently used "
               "inflight request limit of this apiserver per request kind in last second.")
        for kind in sorted(self.inflight):
            out.append(f'apiserver_current_inflight_requests{{request_kind="{kind}"}} {self.inflight[kind]}')
        family("apiserver_request_duration_seconds", "histogram", "[STABLE] Response latency distribution in "
               "seconds for each verb, dry run value, group, version, resource, subresource, scope and "
               "component.")
        for labels in sorted(self.latencies):
            histogram, text = self.latencies[labels], _labels(LABELS, labels)
            cumulative = 0
            for bound, count in zip((*BUCKETS, float("inf")), histogram.counts, strict=True):
                cumulative += count
                le = "+Inf" if bound == float("inf") else _number(bound)
                out.append(f'apiserver_request_duration_seconds_bucket{{{text},le="{le}"}} {cumulative}')
            out.append(f"apiserver_request_duration_seconds_sum{{{text}}} {_number(histogram.total)}")
            out.append(f"apiserver_request_duration_seconds_count{{{text}}} {histogram.samples}")
        family("apiserver_request_total", "counter", "[STABLE] Counter of apiserver requests broken out for "
               "each verb, dry run value, group, version, resource, scope, component, and HTTP response "
               "code.")
        for (labels, code), count in sorted(self.requests.items()):
            text = _labels(("code", *LABELS), (code, *labels))
            out.append(f"apiserver_request_total{{{text}}} {count}")
        family("apiserver_storage_objects", "gauge", "[STABLE] Number of stored objects at the time of last "
               "check split by kind. In case of a fetching error, the value will be -1.")
        for name in sorted(object_counts):
            out.append(f'apiserver_storage_objects{{resource="{_escape(name)}"}} {object_counts[name]}')
        out.extend(_process(self.started))
        return "\n".join(out) + "\n"


def _process(started: float) -> list[str]:
    """client_golang's process collector, from /proc/self."""
    lines: list[str] = []
    times = os.times()
    values: list[tuple[str, str, str, float]] = [
        ("process_cpu_seconds_total", "counter", "Total user and system CPU time spent in seconds.",
         times.user + times.system),
    ]
    try:
        fds = len(os.listdir("/proc/self/fd"))
        values.append(("process_open_fds", "gauge", "Number of open file descriptors.", fds))
    except OSError:
        pass
    values.append(("process_max_fds", "gauge", "Maximum number of open file descriptors.",
                   rlimit.getrlimit(rlimit.RLIMIT_NOFILE)[0]))
    try:
        with open("/proc/self/statm") as statm:
            pages = [int(v) for v in statm.read().split()[:2]]
        size = os.sysconf("SC_PAGE_SIZE")
        values.append(("process_resident_memory_bytes", "gauge", "Resident memory size in bytes.",
                       pages[1] * size))
        values.append(("process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.",
                       pages[0] * size))
    except (OSError, ValueError, IndexError):
        pass
    values.append(("process_start_time_seconds", "gauge",
                   "Start time of the process since unix epoch in seconds.", started))
    for name, kind, text, value in values:
        lines += [f"# HELP {name} {text}", f"# TYPE {name} {kind}", f"{name} {_number(value)}"]
    return lines
