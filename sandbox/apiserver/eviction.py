"""The `pods/eviction` subresource (policy/v1 Eviction, create), the sandbox's
`pkg/registry/core/pod/storage/eviction.go`.

An eviction is a pod deletion that asks the pod's PodDisruptionBudget first. Pods that already
stopped counting (Succeeded, Failed, Pending or terminating) are deleted at once. Otherwise the
one budget selecting the pod (500 when several do) must allow a disruption: its status must be
current (else 429 "still being processed"), disruptionsAllowed above zero (else 429 with the
budget's "needs N healthy pods and has M currently"), and the eviction then decrements it and
records the pod in `status.disruptedPods` for the disruption controller. An unready pod does not
count against a budget that is already met (`IfHealthyBudget`, the default) or whose policy is
`AlwaysAllow`; it is deleted with a resourceVersion precondition so it cannot have become ready
meanwhile. Either way the pod gets the `DisruptionTarget` condition (EvictionByEvictionAPI) and is
deleted with the Eviction's deleteOptions (grace period, preconditions, dry run).
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from aiohttp import web

from sandbox import disruption
from sandbox.apiserver import errors
from sandbox.apiserver.errors import ApiError
from sandbox.apiserver.kinds import poddisruptionbudget as pdbs
from sandbox.apiserver.store import encode
from sandbox.meta import is_pod_ready, now_iso

if TYPE_CHECKING:
    from sandbox.apiserver.registry import Registry
    from sandbox.apiserver.server import ApiServer, Target
    from sandbox.apiserver.strategy import Resource

CONFLICT_RETRIES = 20
DISRUPTION_TARGET = {"type": "DisruptionTarget", "status": "True", "reason": "EvictionByEvictionAPI",
                     "message": "Eviction API: evicting"}
MULTIPLE_BUDGETS = ("This pod has more than one PodDisruptionBudget, which the eviction subresource does not "
                    "support.")


def too_many_requests(message: str, *, retry_after: int) -> ApiError:
    """`NewTooManyRequests` with one DisruptionBudget cause (and `retryAfterSeconds` when set)."""
    details: dict[str, Any] = {"causes": [{"reason": "DisruptionBudget", "message": message}]}
    if retry_after > 0:
        details["retryAfterSeconds"] = retry_after
    return ApiError(429, "TooManyRequests", disruption.EVICTION_REFUSED, details=details)


def still_processing(name: str) -> ApiError:
    """`createTooManyRequestsError`: the budget's status has not caught up with its spec."""
    return too_many_requests(f"The disruption budget {name} is still being processed by the server.",
                             retry_after=10)


def can_ignore_pdb(pod: dict) -> bool:
    """`canIgnorePDB`: the pod is finished, not yet running or already terminating."""
    return (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed", "Pending") \
        or bool(pod["metadata"].get("deletionTimestamp"))


def _success() -> dict:
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}


async def serve_eviction(api: ApiServer, request: web.Request, target: Target) -> web.StreamResponse:
    """POST pods/NAME/eviction."""
    body = await api.object_body(request)
    name = target.name or ""
    if body.get("kind") not in (None, "Eviction") or body.get("apiVersion") not in (
            None, "policy/v1", "policy/v1beta1"):
        raise errors.bad_request(f"not a Eviction object: {body.get('apiVersion')}, Kind={body.get('kind')}")
    meta = body.get("metadata")
    if not isinstance(meta, dict) or meta.get("name") != name:
        raise errors.bad_request("name in URL does not match name in Eviction object")
    options = body.get("deleteOptions")
    options = dict(options) if isinstance(options, dict) else {}
    query_dry_run = request.query.getall("dryRun", [])
    body_dry_run = options.get("dryRun") or []
    if query_dry_run and body_dry_run and list(query_dry_run) != list(body_dry_run):
        raise errors.bad_request(f"Non-matching dry-run options in request and content: "
                                 f"{list(query_dry_run)} and {list(body_dry_run)}")
    dry_values = list(query_dry_run) or list(body_dry_run)
    for value in dry_values:
        if value != "All":
            raise errors.bad_request(f'Invalid dryRun value: "{value}": supported values: "All"')
    status = await evict(api.registry, target.namespace, name, options, dry_run=bool(dry_values))
    return web.Response(status=status["code"], body=encode(status), content_type="application/json")


async def evict(registry: Registry, namespace: str, name: str, options: dict, *, dry_run: bool) -> dict:
    """Evict one pod (see the module docstring); the Status to answer, or ApiError."""
    from sandbox.apiserver.kinds import pod as pods

    pod = registry.get(pods.RESOURCE, namespace, name).obj
    preconditions = options.get("preconditions") or {}
    if can_ignore_pdb(pod):
        guarded = dict(options)
        finished = (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")
        racing = not finished and not pod["metadata"].get("deletionTimestamp")
        if racing and not preconditions.get("resourceVersion"):
            guarded["preconditions"] = {**preconditions,
                                        "resourceVersion": pod["metadata"]["resourceVersion"]}
        await _condition_and_delete(registry, pods.RESOURCE, pod, guarded, dry_run=dry_run)
        return _success()
    matching = [entry.obj for entry in registry.store.entries(pdbs.RESOURCE.key, namespace)
                if disruption.selects(entry.obj, pod, empty_selects_all=False)]
    if len(matching) > 1:
        return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": MULTIPLE_BUDGETS, "code": 500}
    guard_version = False
    if matching:
        pdb = matching[0]
        spec, status = pdb.get("spec") or {}, pdb.get("status") or {}
        unhealthy_ok = (spec.get("unhealthyPodEvictionPolicy") == "AlwaysAllow"
                        or (int(status.get("currentHealthy") or 0) >= int(status.get("desiredHealthy") or 0)
                            and int(status.get("desiredHealthy") or 0) > 0))
        if not is_pod_ready(pod) and unhealthy_ok:
            guard_version = True
        else:
            await _check_and_decrement(registry, pdbs.RESOURCE, pdb, name, dry_run=dry_run)
    guarded = dict(options)
    if guard_version and not preconditions.get("resourceVersion"):
        guarded["preconditions"] = {**preconditions, "resourceVersion": pod["metadata"]["resourceVersion"]}
    try:
        await _condition_and_delete(registry, pods.RESOURCE, pod, guarded, dry_run=dry_run)
    except ApiError as exc:
        if exc.code == 409 and guard_version and matching and not preconditions.get("resourceVersion"):
            raise still_processing(matching[0]["metadata"]["name"]) from None
        raise
    return _success()


async def _check_and_decrement(registry: Registry, res: Resource, pdb: dict, pod_name: str, *,
                               dry_run: bool) -> None:
    """`checkAndDecrement`, retried on conflicts with the budget's latest version."""
    meta = pdb["metadata"]
    for _ in range(CONFLICT_RETRIES):
        status = pdb.get("status") or {}
        if int(status.get("observedGeneration") or 0) < int(meta.get("generation") or 0):
            raise still_processing(meta["name"])
        allowed = int(status.get("disruptionsAllowed") or 0)
        if allowed < 0:
            raise errors.forbidden(res, meta["name"], "pdb disruptions allowed is negative")
        if len(status.get("disruptedPods") or {}) > disruption.MAX_DISRUPTED_POD_SIZE:
            raise errors.forbidden(res, meta["name"], "DisruptedPods map too big - too many evictions not "
                                                      "confirmed by PDB controller")
        if allowed == 0:
            raise too_many_requests(disruption.denied_message(pdb), retry_after=0)
        if dry_run:
            return
        new = copy.deepcopy(pdb)
        new_status = new.setdefault("status", {})
        new_status["disruptionsAllowed"] = allowed - 1
        if allowed - 1 == 0:
            disruption.set_disruption_allowed_condition(new_status)
        stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        new_status.setdefault("disruptedPods", {})[pod_name] = stamp
        try:
            await registry.update(res, meta["namespace"], meta["name"], new, subresource="status")
            return
        except ApiError as exc:
            if exc.code != 409:
                raise
        pdb = registry.get(res, meta["namespace"], meta["name"]).obj
        meta = pdb["metadata"]
    raise ApiError(504, "Timeout", f'couldn\'t update PodDisruptionBudget "{meta["name"]}" due to conflicts',
                   details={"retryAfterSeconds": 10})


async def _condition_and_delete(registry: Registry, res: Resource, pod: dict, options: dict, *,
                                dry_run: bool) -> None:
    """`addConditionAndDeletePod`: the DisruptionTarget condition (unless a dry run), then the
    deletion with the Eviction's options."""
    if not dry_run:
        options = await _mark_disruption_target(registry, res, pod, options)
    meta = pod["metadata"]
    await registry.delete(res, meta["namespace"], meta["name"], options, dry_run=dry_run)


async def _mark_disruption_target(registry: Registry, res: Resource, pod: dict, options: dict) -> dict:
    """Add the DisruptionTarget condition before deleting; the deletion's preconditions are
    checked first, and a resourceVersion precondition moves to the updated pod."""
    meta = pod["metadata"]
    preconditions = options.get("preconditions") or {}
    uid, wanted = preconditions.get("uid"), preconditions.get("resourceVersion")
    if uid and uid != meta.get("uid"):
        raise errors.conflict(res, meta["name"], f"Precondition failed: UID in precondition: {uid}, UID in "
                                                 f"object meta: {meta.get('uid')}")
    if wanted and wanted != meta.get("resourceVersion"):
        raise errors.conflict(res, meta["name"], f"Precondition failed: ResourceVersion in precondition: "
                                                 f"{wanted}, ResourceVersion in object meta: "
                                                 f"{meta.get('resourceVersion')}")
    new = copy.deepcopy(pod)
    conditions = [c for c in (new.setdefault("status", {}).get("conditions") or [])
                  if c.get("type") != DISRUPTION_TARGET["type"]]
    old = next((c for c in (pod.get("status") or {}).get("conditions") or []
                if c.get("type") == DISRUPTION_TARGET["type"]), None)
    stamp = old["lastTransitionTime"] if old and old.get("status") == "True" else now_iso()
    conditions.append({**DISRUPTION_TARGET, "lastProbeTime": None, "lastTransitionTime": stamp})
    new["status"]["conditions"] = conditions
    updated = await registry.update(res, meta["namespace"], meta["name"], new, subresource="status")
    if wanted:
        options = {**options, "preconditions": {**(options.get("preconditions") or {}),
                                                "resourceVersion": updated["metadata"]["resourceVersion"]}}
    return options
