"""The dashboard's host of the ``lb-demo.dev/serving`` readiness-gate rule (see `servinggate`).

On minikube or any cluster, nothing but the dashboard knows the gate: without this, every
backend pod would stay unready. A daemon thread lists and watches the pods of the dashboard's
namespace and, for each pod that declares the gate and has no such condition yet, applies
`servinggate.default_patch` through ``pods/<name>/status`` (the Role's ``patch pods/status``).
It runs from the moment the ASGI application loads, whether or not anyone has the page
open, and retries quietly (with back-off) while the cluster cannot be reached. On the sandbox
its controller-manager applies the same rule too; the first to write wins, the other sees the
condition and does nothing.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from kubernetes import watch
from kubernetes.client import CoreV1Api
from kubernetes.client.exceptions import ApiException

import servinggate
from dashboard.kube import api_client

log = logging.getLogger(__name__)

API_TIMEOUT = 5.0
WATCH_SECONDS = 240
RETRY = (1.0, 30.0)

_started = threading.Event()


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def apply_rule(core: CoreV1Api, pod: dict[str, Any]) -> bool:
    """Start one pod serving if the rule says so; whether a patch was sent."""
    patch = servinggate.default_patch(pod, now=_now())
    if patch is None:
        return False
    meta = pod.get("metadata") or {}
    try:
        core.patch_namespaced_pod_status(meta.get("name"), meta.get("namespace"), patch,
                                         _content_type=servinggate.PATCH_CONTENT_TYPE,
                                         _request_timeout=API_TIMEOUT)
    except ApiException as exc:
        if exc.status != 404:
            raise
    return True


def sync_once(core: CoreV1Api, namespace: str) -> str:
    """List the namespace's pods, apply the rule to each; the list's resourceVersion."""
    answer = core.list_namespaced_pod(namespace, _preload_content=False, _request_timeout=API_TIMEOUT)
    listed = json.loads(answer.data)
    for pod in listed.get("items") or []:
        apply_rule(core, pod)
    return str((listed.get("metadata") or {}).get("resourceVersion") or "")


def run_forever(namespace: str, stop: threading.Event) -> None:
    """List, then watch, applying the rule to every pod seen; relist after any error."""
    delay = RETRY[0]
    while not stop.is_set():
        try:
            with api_client() as api:
                core = CoreV1Api(api)
                version = sync_once(core, namespace)
                delay = RETRY[0]
                while not stop.is_set():
                    stream = watch.Watch().stream(core.list_namespaced_pod, namespace,
                                                  resource_version=version, timeout_seconds=WATCH_SECONDS,
                                                  allow_watch_bookmarks=True,
                                                  _request_timeout=WATCH_SECONDS + 30)
                    for event in stream:
                        obj = event.get("raw_object") or {}
                        version = str((obj.get("metadata") or {}).get("resourceVersion") or version)
                        if event.get("type") in ("ADDED", "MODIFIED"):
                            apply_rule(core, obj)
                        if stop.is_set():
                            return
        except Exception as exc:
            log.info("serving-gate defaulter: %s; retrying in %.0f s", exc, delay)
            stop.wait(delay)
            delay = min(delay * 2, RETRY[1])


def start() -> threading.Event | None:
    """Start the defaulter thread once per process (unless the environment sets
    LBDEMO_SERVING_GATE_DEFAULTS=0: another controller owns the gate); the event that stops it."""
    if os.environ.get("LBDEMO_SERVING_GATE_DEFAULTS", "1") == "0" or _started.is_set():
        return None
    _started.set()
    stop = threading.Event()
    threading.Thread(target=run_forever, args=(settings.LBDEMO_NAMESPACE, stop),
                     name="serving-gate-defaulter", daemon=True).start()
    return stop
