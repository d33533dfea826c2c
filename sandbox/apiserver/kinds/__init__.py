"""Every kind the sandbox API server serves, one module each (kube-apiserver's `pkg/registry/<group>/<kind>`).

A kind module holds everything particular to its kind: the `Resource` entry (group, version,
kind, plural, the OpenAPI definition of its objects, namespaced or not, short names,
categories, verbs, subresources, field selectors), and a `Strategy` subclass with its
defaulting, create and update validation, Table columns and cells, field-selector values and
lifecycle hooks (allocation, start-up objects, deletion behaviour). The generic code —
`registry.py` (create/update/patch/delete), `tables.py`, `discovery.py`, `openapi.py`,
`selectors.py`, `server.py` — only calls those hooks; rules several kinds share live in
`sandbox/apiserver/validation/` (names, metadata, labels and selectors, ports, pod spec,
replicated workloads) and `sandbox/apiserver/printing.py` (ages, columns, formatting).

How to add a kind
-----------------
1. Write `kinds/<kind>.py` (copy a small one such as `configmap.py`):

       RESOURCE = Resource("apps", "v1", "StatefulSet", "statefulsets", "io.k8s.api.apps.v1.StatefulSet",
                           short_names=("sts",), categories=("all",), subresources=(STATUS, SCALE),
                           generation=True)

       class StatefulSetStrategy(Strategy):
           resource = RESOURCE
           def default(self, obj): ...                    # SetDefaults_<Kind>
           def validate(self, errs, obj): ...             # errs.invalid(...), errs.required(...)
           def validate_update(self, errs, obj, old): ... # immutable fields
           def columns(self): ...                         # printers.go column definitions
           def row(self, obj, now): ...                   # one cell per column

       STRATEGY = StatefulSetStrategy()

   Override only what differs from `Strategy` (see its docstring for the class attributes:
   name format, status reset on create, graceful deletion ...). The OpenAPI definition must
   exist in the official schemas (`schemas.definitions()`): it drives decoding (400 for a
   wrong type), unknown-field checks, strategic merge patch and `/openapi/v3`. A subresource
   other than status/scale declares a `Subresource(..., handler=...)` served by its own code.
2. Add the module to `STRATEGIES` below (the order is discovery's order).
3. Write its tests: unit tests of the pure hooks in `tests/apiserver_units/` (defaults,
   messages, Table cells) and real kubectl / official client tests against a live sandbox in
   `tests/apiserver/`; add the kind to `MODEL` in `tests/apiserver_units/conftest.py` so the
   official client's strict models check what the server returns.

Nothing else changes: routing, discovery, the store's key space, OpenAPI, Tables, field
selectors and the fuzz/property tests all follow the entry.

A kind served at more than one version (HorizontalPodAutoscaler: autoscaling/v2 stored, v1
too) lists the others in its strategy's `versions`: a `strategy.Version` with the version's
schema definition and the two conversion functions (its `conversion.go`). Each version gets
its own resource entry (discovery, routing, OpenAPI; the stored one first, so preferred) over
the one store key; the registry converts writes and patches, the server reads and watch events.
"""

from __future__ import annotations

from sandbox.apiserver.kinds import (
    clusterrole,
    clusterrolebinding,
    componentstatus,
    configmap,
    controllerrevision,
    cronjob,
    daemonset,
    deployment,
    endpoints,
    endpointslice,
    event,
    horizontalpodautoscaler,
    ingress,
    ingressclass,
    job,
    lease,
    metrics,
    namespace,
    node,
    persistentvolume,
    persistentvolumeclaim,
    pod,
    poddisruptionbudget,
    replicaset,
    replicationcontroller,
    role,
    rolebinding,
    secret,
    selfsubjectaccessreview,
    selfsubjectreview,
    service,
    serviceaccount,
    statefulset,
    tokenreview,
)
from sandbox.apiserver.strategy import Strategy

STRATEGIES: tuple[Strategy, ...] = (
    namespace.STRATEGY,
    node.STRATEGY,
    componentstatus.STRATEGY,
    pod.STRATEGY,
    service.STRATEGY,
    endpoints.STRATEGY,
    event.STRATEGY,
    configmap.STRATEGY,
    secret.STRATEGY,
    serviceaccount.STRATEGY,
    deployment.STRATEGY,
    replicaset.STRATEGY,
    statefulset.STRATEGY,
    daemonset.STRATEGY,
    controllerrevision.STRATEGY,
    endpointslice.STRATEGY,
    role.STRATEGY,
    rolebinding.STRATEGY,
    clusterrole.STRATEGY,
    clusterrolebinding.STRATEGY,
    ingressclass.STRATEGY,
    ingress.STRATEGY,
    selfsubjectreview.STRATEGY,
    tokenreview.STRATEGY,
    selfsubjectaccessreview.ACCESS_STRATEGY,
    selfsubjectaccessreview.RULES_STRATEGY,
    horizontalpodautoscaler.STRATEGY,
    job.STRATEGY,
    cronjob.STRATEGY,
    metrics.POD_STRATEGY,
    metrics.NODE_STRATEGY,
    lease.STRATEGY,
    poddisruptionbudget.STRATEGY,
    persistentvolumeclaim.STRATEGY,
    persistentvolume.STRATEGY,
    replicationcontroller.STRATEGY,
)
