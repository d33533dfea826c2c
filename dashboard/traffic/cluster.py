"""What a traffic run needs to know about the cluster while it runs: the Service's endpoints.

Heatmap rows include ready pods that get no traffic (the point of two lessons: new pods behind
old keep-alive connections, and not-ready pods), and the heatmap marks cluster changes. Both come
from polling the target Service's EndpointSlices (core/v1 Endpoints on clusters without them)
and the Deployments selecting its pods, with the official client, in a worker thread. The
dashboard's watch hub wakes the poller up early on every change it sees, so marks land within
a fraction of a second; the poll interval only bounds the delay without a hub.
"""

from __future__ import annotations

from dataclasses import dataclass

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from dashboard import kube, objects

READY, UNREADY, TERMINATING = objects.READY, objects.NOT_READY, objects.TERMINATING


@dataclass(frozen=True)
class ClusterView:
    """One poll's result: endpoint pods with their state, and the matching Deployments."""

    endpoints: dict[str, str]
    deployments: dict[str, tuple[int, str]]


def poll_cluster(*, service: str, selector: dict[str, str], namespace: str) -> ClusterView:
    """Read the Service's endpoints and its Deployments' replicas/template (blocking)."""
    with kube.api_client() as api:
        return ClusterView(endpoints=_endpoints(api, service, namespace),
                           deployments=_deployments(api, selector, namespace))


def _endpoints(api: client.ApiClient, service: str, namespace: str) -> dict[str, str]:
    states: dict[str, str] = {}
    try:
        slices = client.DiscoveryV1Api(api).list_namespaced_endpoint_slice(
            namespace, label_selector=f"kubernetes.io/service-name={service}").items
    except ApiException as error:
        if error.status != 404:
            raise
        return _legacy_endpoints(api, service, namespace)
    for endpoint_slice in slices:
        for endpoint in endpoint_slice.endpoints or []:
            ref = endpoint.target_ref
            if ref is None or ref.kind != "Pod":
                continue
            conditions = endpoint.conditions
            if conditions is not None and conditions.terminating:
                states[ref.name] = TERMINATING
            elif conditions is None or conditions.ready is not False:
                states[ref.name] = READY
            else:
                states.setdefault(ref.name, UNREADY)
    return states


def _legacy_endpoints(api: client.ApiClient, service: str, namespace: str) -> dict[str, str]:
    try:
        endpoints = client.CoreV1Api(api).read_namespaced_endpoints(service, namespace)
    except ApiException as error:
        if error.status == 404:
            return {}
        raise
    states: dict[str, str] = {}
    for subset in endpoints.subsets or []:
        for address, state in [*((a, READY) for a in subset.addresses or []),
                               *((a, UNREADY) for a in subset.not_ready_addresses or [])]:
            if address.target_ref is not None and address.target_ref.kind == "Pod":
                states[address.target_ref.name] = state
    return states


def _deployments(api: client.ApiClient, selector: dict[str, str],
                 namespace: str) -> dict[str, tuple[int, str]]:
    if not selector:
        return {}
    found = {}
    for deployment in client.AppsV1Api(api).list_namespaced_deployment(namespace).items:
        labels = (deployment.spec.template.metadata.labels or {}) if deployment.spec.template.metadata else {}
        if all(labels.get(key) == value for key, value in selector.items()):
            template = api.sanitize_for_serialization(deployment.spec.template)
            found[deployment.metadata.name] = (deployment.spec.replicas or 0, repr(sorted(template.items())))
    return found


def describe_changes(before: ClusterView | None, after: ClusterView,
                     endpoint_changes: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Heatmap marks for what changed between two polls, as (kind, label) pairs."""
    marks: list[tuple[str, str]] = []
    if before is not None:
        for name, (replicas, template) in after.deployments.items():
            old = before.deployments.get(name)
            if old is None:
                continue
            if old[0] != replicas:
                marks.append(("scale", f"{name} scaled {old[0]}→{replicas}"))
            if old[1] != template:
                marks.append(("rollout", f"{name} rollout"))
    labels = {"added": ("pod", "{} added"), READY: ("ready", "{} ready"),
              UNREADY: ("unready", "{} not ready"), TERMINATING: ("kill", "{} terminating"),
              "gone": ("gone", "{} gone")}
    for pod, what in endpoint_changes:
        kind, label = labels[what]
        marks.append((kind, label.format(pod)))
    return marks
