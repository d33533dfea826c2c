"""The cluster actions the lessons add: relabel a pod, set the image, apply edited Deployment YAML,
break a rollout and undo it, load an image into the nodes, and reset the sample app.

Plain ``<entity>_<action>`` functions like dashboard.actions (and built on its scoping): each
acts only in the configured namespace, on the configured Deployment or on pods its selector
matches, refuses anything else with an :class:`~dashboard.actions.ActionError` (403) before
changing anything, and returns once the API accepted the change — the result reaches the page
through the watch. Each also says what a learner would type instead (``*_command``).

Loading an image is the one action that is not a Kubernetes API call: it is whatever the
operator configured in ``LBDEMO_IMAGE_LOAD_COMMAND`` (an argv template with ``{image}``;
`manage.py demo` sets it to the sandbox's documented ``python -m sandbox image load {image}
--state-dir …``). Without it the page only prints the command for the learner's cluster
(``minikube image load {image}``). The dashboard never imports the sandbox.
"""

from __future__ import annotations

import json
import shlex
import subprocess
from pathlib import Path
from typing import Any

import yaml
from django.conf import settings
from kubernetes.client import AppsV1Api, CoreV1Api

from dashboard.actions import (
    API_TIMEOUT,
    ActionError,
    _backend_pod,
    cluster_call,
    cluster_client,
    pod_readiness_set,
    valid_name,
)
from dashboard.objects import parse_selector

# Images the lessons may set or load: the sample app's versions, nothing typed freely.
IMAGES = ("lb-demo", "lb-demo:v1", "lb-demo:v2", "lb-demo:v3")
RELABEL_VALUES = ("debug",)
SAMPLE_MANIFEST = Path(__file__).resolve().parent.parent.parent / "k8s" / "backend.yaml"
BROKEN_PROBE_PATH = "/broken"
IMAGE_LOAD_TIMEOUT = 30.0


def _deployment(api: Any) -> dict[str, Any]:
    """The configured Deployment as a dict."""
    with cluster_call(f"Deployment {settings.LBDEMO_DEPLOYMENT!r}"):
        response = AppsV1Api(api).read_namespaced_deployment(
            settings.LBDEMO_DEPLOYMENT,
            settings.LBDEMO_NAMESPACE,
            _preload_content=False,
            _request_timeout=API_TIMEOUT,
        )
    return json.loads(response.data)


def _container(deployment: dict[str, Any]) -> str:
    """The name of the Deployment's first container."""
    containers = ((deployment.get("spec") or {}).get("template") or {}).get("spec", {}).get(
        "containers"
    ) or []
    if not containers:
        raise ActionError(409, "the Deployment has no container")
    return str(containers[0]["name"])


def pod_relabel(*, name: str, value: str = "debug") -> str:
    """Set ``app=<value>`` on a backend pod (like `kubectl label --overwrite pod NAME app=debug`):
    it leaves the Service and its ReplicaSet, which creates a replacement; the orphan runs on."""
    valid_name(name)
    if value not in RELABEL_VALUES:
        raise ActionError(400, f"a pod may only be relabelled app={'|'.join(RELABEL_VALUES)} here")
    with cluster_client() as api:
        pod = _backend_pod(api, name)
        if (pod.get("metadata") or {}).get("deletionTimestamp"):
            raise ActionError(409, f"pod {name!r} is terminating")
        with cluster_call(f"pod {name!r}"):
            CoreV1Api(api).patch_namespaced_pod(
                name,
                settings.LBDEMO_NAMESPACE,
                {"metadata": {"labels": {"app": value}}},
                _request_timeout=API_TIMEOUT,
            )
    return name


def pod_relabel_command(*, name: str, value: str = "debug") -> str:
    """What `pod_relabel` is in kubectl."""
    return f"kubectl{namespace_flag()} label --overwrite pod {name} app={value}"


def deployment_image_set(*, image: str) -> str:
    """Set the Deployment's (first container's) image, like `kubectl set image`: a rollout."""
    if image not in IMAGES:
        raise ActionError(400, f"image must be one of {', '.join(IMAGES)}")
    with cluster_client() as api:
        container = _container(_deployment(api))
        with cluster_call(f"Deployment {settings.LBDEMO_DEPLOYMENT!r}"):
            AppsV1Api(api).patch_namespaced_deployment(
                settings.LBDEMO_DEPLOYMENT,
                settings.LBDEMO_NAMESPACE,
                {"spec": {"template": {"spec": {"containers": [{"name": container, "image": image}]}}}},
                _request_timeout=API_TIMEOUT,
            )
    return image


def deployment_yaml() -> str:
    """The Deployment's desired state as YAML, as `kubectl get deployment -o yaml` would show its
    spec (no status, no server-managed metadata)."""
    with cluster_client() as api:
        deployment = _deployment(api)
    return desired_state_yaml(deployment)


def desired_state_yaml(deployment: dict[str, Any]) -> str:
    """A Deployment object reduced to what a learner edits and applies."""
    metadata = deployment.get("metadata") or {}
    desired = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": metadata.get("name"), "labels": metadata.get("labels") or {}},
        "spec": deployment.get("spec") or {},
    }
    return yaml.safe_dump(desired, sort_keys=False, default_flow_style=False)


def deployment_apply(*, text: str) -> int:
    """Apply an edited desired state of the configured Deployment (its whole spec, like
    `kubectl apply -f`); returns the new replicas. Anything but that Deployment is refused."""
    if len(text) > 64 * 1024:
        raise ActionError(400, "the YAML is too long")
    try:
        desired = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ActionError(400, f"not valid YAML: {str(exc).splitlines()[0]}") from exc
    if (
        not isinstance(desired, dict)
        or desired.get("kind") != "Deployment"
        or desired.get("apiVersion") != "apps/v1"
    ):
        raise ActionError(400, "the YAML must be one apps/v1 Deployment")
    metadata = desired.get("metadata") or {}
    if not isinstance(metadata, dict) or metadata.get("name") != settings.LBDEMO_DEPLOYMENT:
        raise ActionError(403, f"only the Deployment {settings.LBDEMO_DEPLOYMENT!r} can be applied here")
    if metadata.get("namespace") not in (None, settings.LBDEMO_NAMESPACE):
        raise ActionError(403, f"only namespace {settings.LBDEMO_NAMESPACE!r} can be changed here")
    spec = desired.get("spec")
    if not isinstance(spec, dict):
        raise ActionError(400, "the Deployment needs a spec")
    replicas = spec.get("replicas", 1)
    if (
        isinstance(replicas, bool)
        or not isinstance(replicas, int)
        or not 0 <= replicas <= settings.LBDEMO_MAX_REPLICAS
    ):
        raise ActionError(
            400, f"replicas must be a whole number between 0 and {settings.LBDEMO_MAX_REPLICAS}"
        )
    with cluster_client() as api:
        _replace_spec(api, spec)
    return replicas


def _replace_spec(api: Any, spec: dict[str, Any]) -> None:
    """Make ``spec`` the Deployment's whole spec, as `kubectl apply` does for a spec it owns.

    A JSON patch replacing ``/spec``, not a PUT of the object read a moment before: a PUT carries
    that read's resourceVersion, and the Deployment controller rewrites the status (and so the
    resourceVersion) all through a rollout — the very moment a learner applies or resets — so
    the PUT would be refused with 409 Conflict and nothing would change."""
    with cluster_call(f"Deployment {settings.LBDEMO_DEPLOYMENT!r}"):
        AppsV1Api(api).patch_namespaced_deployment(
            settings.LBDEMO_DEPLOYMENT,
            settings.LBDEMO_NAMESPACE,
            [{"op": "replace", "path": "/spec", "value": spec}],
            _request_timeout=API_TIMEOUT,
        )


def deployment_apply_command(*, text: str) -> str:
    """What `deployment_apply` is in kubectl (a here-document, copyable as is)."""
    return f"kubectl{namespace_flag()} apply -f - <<'EOF'\n{text.rstrip()}\nEOF"


def deployment_probe_break() -> str:
    """Point the readiness probe at a path that answers 404: the new pods never become Ready."""
    with cluster_client() as api:
        deployment = _deployment(api)
        containers = deployment["spec"]["template"]["spec"].get("containers") or []
        if not containers or "httpGet" not in (containers[0].get("readinessProbe") or {}):
            raise ActionError(409, "the Deployment's container has no HTTP readiness probe to break")
        patch = [
            {
                "op": "replace",
                "path": "/spec/template/spec/containers/0/readinessProbe/httpGet/path",
                "value": BROKEN_PROBE_PATH,
            }
        ]
        with cluster_call(f"Deployment {settings.LBDEMO_DEPLOYMENT!r}"):
            AppsV1Api(api).patch_namespaced_deployment(
                settings.LBDEMO_DEPLOYMENT, settings.LBDEMO_NAMESPACE, patch, _request_timeout=API_TIMEOUT
            )
    return BROKEN_PROBE_PATH


def deployment_rollback() -> int:
    """Roll back to the previous revision, as `kubectl rollout undo` does: copy the template of the
    ReplicaSet with the revision before the newest into the Deployment. Returns that revision."""
    with cluster_client() as api:
        deployment = _deployment(api)
        selector = ",".join(
            f"{k}={v}"
            for k, v in ((deployment["spec"].get("selector") or {}).get("matchLabels") or {}).items()
        )
        with cluster_call("ReplicaSets"):
            response = AppsV1Api(api).list_namespaced_replica_set(
                settings.LBDEMO_NAMESPACE,
                label_selector=selector,
                _preload_content=False,
                _request_timeout=API_TIMEOUT,
            )
        uid = deployment["metadata"]["uid"]
        owned = [
            rs
            for rs in json.loads(response.data).get("items") or []
            if any(ref.get("uid") == uid for ref in rs["metadata"].get("ownerReferences") or [])
        ]

        def revision(rs: dict[str, Any]) -> int:
            return int(
                (rs["metadata"].get("annotations") or {}).get("deployment.kubernetes.io/revision") or 0
            )

        ordered = sorted(owned, key=revision)
        if len(ordered) < 2:
            raise ActionError(409, "there is no previous revision to roll back to")
        previous = ordered[-2]
        template = json.loads(json.dumps(previous["spec"]["template"]))
        (template.get("metadata") or {}).get("labels", {}).pop("pod-template-hash", None)
        with cluster_call(f"Deployment {settings.LBDEMO_DEPLOYMENT!r}"):
            AppsV1Api(api).patch_namespaced_deployment(
                settings.LBDEMO_DEPLOYMENT,
                settings.LBDEMO_NAMESPACE,
                [{"op": "replace", "path": "/spec/template", "value": template}],
                _request_timeout=API_TIMEOUT,
            )
    return revision(previous)


def image_load_available() -> bool:
    """Whether this dashboard can load an image into the cluster's nodes (LBDEMO_IMAGE_LOAD_COMMAND)."""
    return bool(settings.LBDEMO_IMAGE_LOAD_COMMAND)


def image_load_command(*, image: str) -> str:
    """The command that loads ``image`` into this cluster's nodes, for the learner to copy."""
    template = settings.LBDEMO_IMAGE_LOAD_COMMAND or "minikube image load {image}"
    return template.replace("{image}", image)


def image_load(*, image: str) -> str:
    """Run the configured image-load command (the sandbox: `python -m sandbox image load`)."""
    if image not in IMAGES:
        raise ActionError(400, f"image must be one of {', '.join(IMAGES)}")
    if not image_load_available():
        raise ActionError(
            501,
            f"this cluster's nodes cannot be loaded from the page; run: {image_load_command(image=image)}",
        )
    argv = shlex.split(image_load_command(image=image))
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=IMAGE_LOAD_TIMEOUT, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ActionError(502, f"loading the image failed: {exc}") from exc
    if done.returncode != 0:
        raise ActionError(502, f"loading the image failed: {(done.stderr or done.stdout).strip()[:300]}")
    return image


def sample_app_reset() -> dict[str, int]:
    """Put the sample app back to its starting state: the Deployment's spec from k8s/backend.yaml
    (3 replicas, v1, the working probe), every backend pod's readiness on, and the lessons' strays
    (pods relabelled app=debug) deleted. Returns what was done.

    The spec is the manifest's, so a Deployment whose template is still the starting one (image
    ``lb-demo``, the working probe) is only scaled back; any other template — ``lb-demo:v2``,
    the broken probe, or ``lb-demo:v1``, a tag the sandbox's nodes do not hold until it is
    loaded — is rolled back to it, exactly what the printed `kubectl apply -f k8s/backend.yaml`
    does. The reset returns once the API accepted that; the rollout follows in the watch."""
    starting = next(
        doc
        for doc in yaml.safe_load_all(SAMPLE_MANIFEST.read_text())
        if doc and doc.get("kind") == "Deployment"
    )
    deleted = readied = 0
    with cluster_client() as api:
        live = _deployment(api)
        _replace_spec(api, {**starting["spec"], "selector": live["spec"]["selector"]})
        with cluster_call("pods"):
            response = CoreV1Api(api).list_namespaced_pod(
                settings.LBDEMO_NAMESPACE, _preload_content=False, _request_timeout=API_TIMEOUT
            )
        pods = json.loads(response.data).get("items") or []
        selector = parse_selector(settings.LBDEMO_SELECTOR)
        for pod in pods:
            metadata = pod.get("metadata") or {}
            labels = metadata.get("labels") or {}
            if metadata.get("deletionTimestamp"):
                continue
            if labels.get("app") in RELABEL_VALUES and "pod-template-hash" in labels:
                with cluster_call(f"pod {metadata.get('name')!r}"):
                    CoreV1Api(api).delete_namespaced_pod(
                        metadata["name"], settings.LBDEMO_NAMESPACE, _request_timeout=API_TIMEOUT
                    )
                deleted += 1
            elif (
                selector.matches(labels)
                and (pod.get("status") or {}).get("phase") == "Running"
                and not any(
                    c.get("type") == "Ready" and c.get("status") == "True"
                    for c in (pod.get("status") or {}).get("conditions") or []
                )
            ):
                try:
                    pod_readiness_set(name=metadata["name"], ready=True)
                    readied += 1
                except ActionError:
                    pass  # a pod still starting has nothing to switch; the reset goes on
    return {"deleted": deleted, "readied": readied}


def namespace_flag() -> str:
    """`` -n NS`` for commands, unless the namespace is ``default``."""
    namespace = settings.LBDEMO_NAMESPACE
    return "" if namespace == "default" else f" -n {namespace}"
