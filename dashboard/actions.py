"""What the learner can do to the cluster from the page: scale, kill a pod, flip its readiness.

Plain functions, callable from a view, a test or a shell alike. Each one is scoped to the
configured namespace and the backend's label selector: a request naming another Deployment,
or a pod the selector does not match (the stray app=frontend pod, anything else), raises
:class:`ActionError` with status 403 before anything is changed. Bad input raises 400, a
missing object 404. The functions return as soon as the API accepted the request; the
result reaches the page through the watch, like kubectl's.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import urllib3
from django.conf import settings
from kubernetes.client import ApiClient, AppsV1Api, CoreV1Api
from kubernetes.client.exceptions import ApiException

import servinggate
from dashboard import objects
from dashboard.hub import api_known_unreachable
from dashboard.kube import api_client

# Actions answer the learner at once: an API server that does not answer in this time is down.
API_TIMEOUT = 5.0

# DNS-1123 subdomain: what Kubernetes accepts as a pod or deployment name.
NAME_RE = re.compile(r"[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?")


class ActionError(Exception):
    """An action was refused or failed; ``status`` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def valid_name(name: object) -> str:
    """Return ``name`` if it is a valid Kubernetes object name, else raise 400."""
    if not isinstance(name, str) or not NAME_RE.fullmatch(name):
        raise ActionError(400, "name must be a Kubernetes object name (lower-case letters, digits, '-', '.')")
    return name


def whole_number(raw: str, *, field: str, digits: int = 6) -> int:
    """A form field as a whole number: ASCII digits only (``²`` and other scripts' digits pass
    ``str.isdigit`` but are not numbers here) and at most ``digits`` of them, else 400."""
    if not re.fullmatch(rf"[0-9]{{1,{digits}}}", raw):
        shown = raw if len(raw) <= 20 else raw[:20] + "…"
        raise ActionError(400, f"{field} must be a whole number of at most {digits} digits 0-9, "
                               f"not {shown!r}")
    return int(raw)


def _api_error(exc: ApiException, what: str) -> ActionError:
    """Translate an API error into an ActionError with a useful status."""
    if exc.status == 404:
        return ActionError(404, f"{what} does not exist")
    if exc.status in {401, 403}:
        return ActionError(502, f"the dashboard may not do that in the cluster ({exc.status} {exc.reason})")
    if exc.status == 409:
        return ActionError(409, f"{what} changed meanwhile; try again")
    if exc.status == 422:
        return ActionError(400, f"the cluster refused the change: {exc.reason}")
    return ActionError(502, f"the Kubernetes API answered {exc.status} {exc.reason}")


@contextmanager
def cluster_call(what: str) -> Iterator[None]:
    """Run API calls about ``what``, turning API errors and an unreachable API server into
    ActionErrors (an unreachable cluster is 503, not a crash)."""
    try:
        yield
    except ApiException as exc:
        raise _api_error(exc, what) from exc
    except urllib3.exceptions.HTTPError as exc:
        raise ActionError(503, "cannot reach the cluster's API server; try again in a moment") from exc


def cluster_client() -> ApiClient:
    """An API client for one action; refused at once (503) when the watch hub already knows
    the API server does not answer, instead of waiting for the request's timeout."""
    if api_known_unreachable():
        raise ActionError(503, "cannot reach the cluster's API server (it stopped answering); "
                               "try again in a moment")
    return api_client()


def deployment_scale(*, replicas: int, deployment: str | None = None) -> int:
    """Set the backend Deployment's desired replicas (0..LBDEMO_MAX_REPLICAS)."""
    name = settings.LBDEMO_DEPLOYMENT if deployment is None else valid_name(deployment)
    if name != settings.LBDEMO_DEPLOYMENT:
        raise ActionError(403, f"only the Deployment {settings.LBDEMO_DEPLOYMENT!r} can be scaled here")
    if isinstance(replicas, bool) or not isinstance(replicas, int):
        raise ActionError(400, "replicas must be a whole number")
    if not 0 <= replicas <= settings.LBDEMO_MAX_REPLICAS:
        raise ActionError(400, f"replicas must be between 0 and {settings.LBDEMO_MAX_REPLICAS}")
    with cluster_client() as api, cluster_call(f"Deployment {name!r}"):
        AppsV1Api(api).patch_namespaced_deployment_scale(
            name, settings.LBDEMO_NAMESPACE, {"spec": {"replicas": replicas}}, _request_timeout=API_TIMEOUT)
    return replicas


def _backend_pod(api: ApiClient, name: str) -> dict[str, Any]:
    """Read a pod and refuse (403) unless the backend selector matches it."""
    with cluster_call(f"pod {name!r}"):
        response = CoreV1Api(api).read_namespaced_pod(name, settings.LBDEMO_NAMESPACE,
                                                      _preload_content=False, _request_timeout=API_TIMEOUT)
    pod = json.loads(response.data)
    if not objects.parse_selector(settings.LBDEMO_SELECTOR).selects(pod):
        raise ActionError(403, f"pod {name!r} is not a backend pod ({settings.LBDEMO_SELECTOR}); refused")
    return pod


def pod_delete(*, name: str) -> str:
    """Delete one backend pod (gracefully, like `kubectl delete pod`); its ReplicaSet replaces it."""
    valid_name(name)
    with cluster_client() as api:
        pod = _backend_pod(api, name)
        uid = (pod.get("metadata") or {}).get("uid")
        with cluster_call(f"pod {name!r}"):
            CoreV1Api(api).delete_namespaced_pod(
                name, settings.LBDEMO_NAMESPACE, body={"preconditions": {"uid": uid}} if uid else None,
                _request_timeout=API_TIMEOUT)
    return name


def pod_readiness_set(*, name: str, ready: bool) -> bool:
    """Flip a backend pod's readiness switch: its readiness-gate condition ``lb-demo.dev/serving``,
    set True or False through ``pods/<name>/status`` (see the `servinggate` package).

    The kubelet then reports the pod Ready (or not, ``ReadinessGatesNotReady``) and the pod joins
    (or leaves) the Service's endpoints — it keeps running, exactly as with a real app that
    reports unready. The dashboard never sends a request to the pod itself.
    """
    valid_name(name)
    if not isinstance(ready, bool):
        raise ActionError(400, "ready must be true or false")
    with cluster_client() as api:
        pod = _backend_pod(api, name)
        if (pod.get("metadata") or {}).get("deletionTimestamp"):
            raise ActionError(409, f"pod {name!r} is terminating")
        if not servinggate.is_gated(pod):
            raise ActionError(409, f"pod {name!r} has no readiness gate {servinggate.CONDITION_TYPE} "
                                   "(its Deployment predates it: kubectl apply -f k8s/backend.yaml)")
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        with cluster_call(f"pod {name!r}"):
            CoreV1Api(api).patch_namespaced_pod_status(
                name, settings.LBDEMO_NAMESPACE, servinggate.switch_patch(pod, ready, now=now),
                _content_type=servinggate.PATCH_CONTENT_TYPE, _request_timeout=API_TIMEOUT)
    return ready


class RateLimiter:
    """A sliding-window limit of actions per user per minute (in memory: one dashboard process)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._recent: dict[str, deque[float]] = {}

    def allow(self, user_key: str, *, per_minute: int, now: float | None = None) -> bool:
        """Record an attempt and say whether it is within the user's budget."""
        now = time.monotonic() if now is None else now
        with self._lock:
            recent = self._recent.setdefault(user_key, deque())
            while recent and now - recent[0] >= 60.0:
                recent.popleft()
            if len(recent) >= per_minute:
                return False
            recent.append(now)
            return True


rate_limiter = RateLimiter()
