"""ControllerRevisions for StatefulSets and DaemonSets (kube-controller-manager's `pkg/controller/history`).

A revision is an immutable snapshot of the parent's pod template, stored as the strategic merge
patch ``{"spec": {"template": {..., "$patch": "replace"}}}`` that `kubectl rollout undo` sends
back to roll the parent to it. It is named ``<parent>-<hash>`` (FNV-32a of the data plus the
collision count, in Kubernetes' safe alphabet), carries the template's labels plus a hash label,
the parent's annotations (so `kubectl rollout history` shows CHANGE-CAUSE) and a controller
ownerReference; its ``revision`` number is one above the highest. Going back to a template that
an older revision holds renumbers that revision instead of creating a duplicate (`sync` below),
and revisions beyond ``revisionHistoryLimit`` that no pod uses are deleted (`truncate`).
"""

from __future__ import annotations

import copy
from collections.abc import Collection
from typing import ClassVar

from sandbox.client import CONTROLLERREVISIONS, ApiClient, ApiError, Informer, InformerFactory, Obj
from sandbox.controllers.deployment import template_hash
from sandbox.controllers.workload import WorkloadController
from sandbox.meta import controller_ref, owner_reference, selector_matches

# StatefulSet revisions carry "controller.kubernetes.io/hash"; DaemonSet revisions (and pods)
# "controller-revision-hash", as in Kubernetes.
HASH_LABEL = "controller.kubernetes.io/hash"
POD_REVISION_LABEL = "controller-revision-hash"


def template_patch(parent: Obj) -> Obj:
    """The revision data of a parent: its template as a replacing strategic merge patch."""
    template = copy.deepcopy(parent["spec"].get("template") or {})
    template["$patch"] = "replace"
    return {"spec": {"template": template}}


def revision_template(revision: Obj) -> Obj:
    """The pod template a revision holds (`ApplyRevision` of its patch)."""
    template = copy.deepcopy(((revision.get("data") or {}).get("spec") or {}).get("template") or {})
    template.pop("$patch", None)
    return template


def revision_number(revision: Obj) -> int:
    value = revision.get("revision")
    return value if isinstance(value, int) else 0


def owned_revisions(informer: Informer, parent: Obj) -> list[Obj]:
    """The parent's revisions, oldest revision number first."""
    uid = parent["metadata"]["uid"]
    return sorted((r for r in informer.items(parent["metadata"]["namespace"])
                   if (controller_ref(r) or {}).get("uid") == uid),
                  key=lambda r: (revision_number(r), r["metadata"]["name"]))


class RevisionHistory:
    """Create, renumber and truncate one parent kind's ControllerRevisions."""

    def __init__(self, client: ApiClient, informer: Informer, *, hash_label: str) -> None:
        self.client = client
        self.informer = informer
        self.hash_label = hash_label

    def new_revision(self, parent: Obj, number: int, collisions: int) -> Obj:
        """`NewControllerRevision` for the parent's current template."""
        data = template_patch(parent)
        digest = template_hash(data, collisions)
        labels = dict((parent["spec"]["template"].get("metadata") or {}).get("labels") or {})
        labels[self.hash_label] = digest
        meta: Obj = {"name": f"{parent['metadata']['name']}-{digest}",
                     "namespace": parent["metadata"]["namespace"], "labels": labels,
                     "ownerReferences": [owner_reference(parent)]}
        if parent["metadata"].get("annotations"):
            meta["annotations"] = dict(parent["metadata"]["annotations"])
        return {"apiVersion": "apps/v1", "kind": "ControllerRevision", "metadata": meta, "data": data,
                "revision": number}

    async def sync(self, parent: Obj, revisions: list[Obj]) -> tuple[Obj, int]:
        """The revision of the parent's current template (the update revision), created or
        renumbered as needed, and the collision count to write to the parent's status."""
        collisions = int((parent.get("status") or {}).get("collisionCount") or 0)
        latest = max((revision_number(r) for r in revisions), default=0)
        data = template_patch(parent)
        equal = [r for r in revisions if r.get("data") == data]
        if equal:
            match = equal[-1]
            if revision_number(match) == latest:
                return match, collisions
            return await self._renumber(match, latest + 1), collisions
        ns = parent["metadata"]["namespace"]
        while True:
            revision = self.new_revision(parent, latest + 1, collisions)
            try:
                return await self.client.create(CONTROLLERREVISIONS, revision), collisions
            except ApiError as exc:
                if not exc.conflict:
                    raise
            existing = await self.client.get(CONTROLLERREVISIONS, revision["metadata"]["name"], namespace=ns)
            if (controller_ref(existing) or {}).get("uid") == parent["metadata"]["uid"] and \
                    existing.get("data") == data:
                return existing, collisions
            collisions += 1

    async def _renumber(self, revision: Obj, number: int) -> Obj:
        name, ns = revision["metadata"]["name"], revision["metadata"]["namespace"]
        return await self.client.patch(CONTROLLERREVISIONS, name, {"revision": number}, namespace=ns)

    async def adopt(self, parent: Obj) -> None:
        """Claim orphan revisions whose labels match the parent's selector."""
        for revision in self.informer.items(parent["metadata"]["namespace"]):
            if controller_ref(revision) is None and not revision["metadata"].get("deletionTimestamp") and \
                    selector_matches(parent["spec"].get("selector"), revision["metadata"].get("labels")):
                refs = [*(revision["metadata"].get("ownerReferences") or []), owner_reference(parent)]
                try:
                    await self.client.patch(CONTROLLERREVISIONS, revision["metadata"]["name"],
                                            {"metadata": {"ownerReferences": refs}},
                                            namespace=revision["metadata"]["namespace"])
                except ApiError as exc:
                    if not exc.not_found:
                        raise

    async def truncate(self, parent: Obj, revisions: list[Obj], live: Collection[str]) -> None:
        """Delete the oldest revisions beyond ``revisionHistoryLimit`` whose names are not ``live``
        (the current and update revisions, and those pods still run)."""
        limit = int(parent["spec"].get("revisionHistoryLimit", 10))
        history = [r for r in revisions if r["metadata"]["name"] not in live]
        for revision in history[:max(len(history) - limit, 0)]:
            try:
                await self.client.delete(CONTROLLERREVISIONS, revision["metadata"]["name"],
                                         namespace=revision["metadata"]["namespace"])
            except ApiError as exc:
                if not exc.not_found:
                    raise


class RevisionedController(WorkloadController):
    """A workload controller that keeps ControllerRevisions of its template (DaemonSets and
    StatefulSets, which share `pkg/controller/history` the same way)."""

    hash_label: ClassVar[str]  # the label a revision's hash is under

    def __init__(self, client: ApiClient, informers: InformerFactory) -> None:
        super().__init__(client, informers)
        self.rev_informer: Informer = informers.informer(CONTROLLERREVISIONS)
        self.history = RevisionHistory(client, self.rev_informer, hash_label=self.hash_label)

    async def revisions(self, owner: Obj) -> tuple[list[Obj], Obj, int]:
        """Adopt orphaned revisions, list the owned ones, find or create the current one:
        (the owned revisions, the current one, the collision count)."""
        await self.history.adopt(owner)
        revisions = owned_revisions(self.rev_informer, owner)
        current, collisions = await self.history.sync(owner, revisions)
        return revisions, current, collisions

    async def truncate_history(self, owner: Obj, live: Collection[str]) -> None:
        """Delete the revisions beyond revisionHistoryLimit that no pod and no status names."""
        await self.history.truncate(owner, owned_revisions(self.rev_informer, owner), live)
