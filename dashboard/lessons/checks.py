"""The lesson checks: each one a pure function of what was observed during the lesson.

A check looks at the :class:`~dashboard.lessons.history.ClusterHistory` from the moment the
learner started the lesson, and at the traffic runs the learner finished since then
(:class:`RunRecord`), and answers ``None`` (not observed yet: pending), or a :class:`Verdict`
— passed or failed — with the measured figure. Checks are level-triggered: the engine asks them
again after every batch of watch changes and every finished run, so a missed moment is seen at
the next one. A check never passes because time went by: only because the behaviour shows in
the history (a replacement became Ready, a run served requests while a pod was starting).

Traffic per pod is known per heatmap bucket (0.25 s), so a check about "requests while not
ready" ignores the bucket in which the state changed and the next one (the Service proxy follows
the endpoints within a moment; a request in flight at the edge is not a violation).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field

from dashboard.lessons.history import ClusterHistory, EventRecord, PodTrack

# Traffic thresholds: a run must carry this much before a check judges it.
MIN_REQUESTS = 50
EDGE_BUCKETS = 2


@dataclass(frozen=True)
class Verdict:
    """The outcome of a check: passed or failed, with the measured figure."""

    passed: bool
    figure: str


def passed(figure: str) -> Verdict:
    """A check whose behaviour was observed."""
    return Verdict(True, figure)


def failed(figure: str) -> Verdict:
    """A check whose behaviour was contradicted by what was observed."""
    return Verdict(False, figure)


@dataclass
class PodServed:
    """What one pod served in a traffic run."""

    requests: int
    conns: int
    cells: dict[int, int]


@dataclass
class RunRecord:
    """A finished traffic run, as the checks see it (wall-clock times, unix seconds)."""

    owner: int
    mode: str
    conns: int
    max_per_conn: int
    service: str
    started: float
    ended: float
    bucket: float
    requests: int
    ok: int
    failed: int
    connections: int
    pods: dict[str, PodServed] = field(default_factory=dict)
    p_value: float | None = None
    command: str = ""
    via: str = ""  # how the run reached the Service: "Ingress" (L7, per request), else the Service itself

    def served_between(self, pod: str, start: float, end: float) -> int:
        """Requests ``pod`` answered in buckets lying wholly inside [start, end], minus the
        edge buckets (see the module docstring)."""
        served = self.pods.get(pod)
        if served is None:
            return 0
        first = int((start - self.started) / self.bucket) + EDGE_BUCKETS
        last = int((end - self.started) / self.bucket) - EDGE_BUCKETS
        return sum(count for cell, count in served.cells.items() if first <= cell <= last)

    def total_between(self, start: float, end: float) -> int:
        """Requests all pods answered in the same buckets."""
        return sum(self.served_between(pod, start, end) for pod in self.pods)


@dataclass
class Context:
    """What a check may look at: the history since ``since`` and the learner's runs since then."""

    since: float
    now: float
    history: ClusterHistory
    runs: list[RunRecord]

    @property
    def service(self) -> str:
        """The configured Service's name."""
        return self.history.scope.service


CheckFn = Callable[[Context], Verdict | None]


@dataclass(frozen=True)
class Check:
    """One check of a lesson: an id (the DOM hook), what it looks for, and how."""

    id: str
    title: str
    evaluate: CheckFn


# --- shared observations ------------------------------------------------------------------------
@dataclass(frozen=True)
class Kill:
    """A backend pod that started terminating during the lesson, and its replacement."""

    pod: PodTrack
    at: float
    replacement: PodTrack | None
    ready_at: float | None


def kills(ctx: Context) -> list[Kill]:
    """Backend pods deleted while selected, owned by a ReplicaSet, with the pod that replaced each:
    the next pod the same owner created within 60 s while spec.replicas stayed the same."""
    history = ctx.history
    found: list[Kill] = []
    taken: set[str] = set()
    for track in history.backend_pods():
        at = track.terminating
        if at is None or at < ctx.since or not track.selected.at(at, False):
            continue
        owner = track.owner.at(at, "")
        if not owner:
            continue
        replicas = history.replicas.at(at, -1)
        candidates = [
            p
            for p in history.pods.values()
            if p.uid != track.uid
            and p.uid not in taken
            and p.owner.steps
            and p.owner.steps[0][1] == owner
            and at <= p.created <= at + 60
            and history.replicas.at(p.created, -1) == replicas
        ]
        replacement = min(candidates, key=lambda p: p.created, default=None)
        ready_at = None
        if replacement is not None:
            taken.add(replacement.uid)
            ready_at = replacement.ready.first_time(True, after=replacement.created)
        found.append(Kill(track, at, replacement, ready_at))
    return found


def replicas_changes(ctx: Context) -> list[tuple[float, int, int]]:
    """(time, before, after) of each change of the Deployment's spec.replicas during the lesson."""
    steps = ctx.history.replicas.steps
    return [(t, steps[i - 1][1], value) for i, (t, value) in enumerate(steps) if i > 0 and t >= ctx.since]


def reached(history: ClusterHistory, value: int, after: float) -> float | None:
    """When the Deployment's ready replicas first equalled ``value`` after ``after`` while
    spec.replicas was still ``value``."""
    for t, ready in history.ready_replicas.steps:
        if t >= after and ready == value and history.replicas.at(t, -1) == value:
            return t
    if history.ready_replicas.at(after, -1) == value and history.replicas.at(after, -1) == value:
        return after
    return None


def runs_through(ctx: Context) -> list[RunRecord]:
    """The learner's runs against the configured Service itself (not through an Ingress), newest first."""
    return [run for run in reversed(ctx.runs) if run.service == ctx.service and run.via != "Ingress"]


def runs_via_ingress(ctx: Context) -> list[RunRecord]:
    """The learner's runs through an Ingress in front of the configured Service, newest first."""
    return [run for run in reversed(ctx.runs) if run.service == ctx.service and run.via == "Ingress"]


def plural(n: int, word: str) -> str:
    """'1 pod', '2 pods'."""
    return f"{n} {word}{'' if n == 1 else 's'}"


# --- 1. pods are disposable ---------------------------------------------------------------------
def pod_replaced(ctx: Context) -> Verdict | None:
    """A killed pod's replacement has a new name and a new IP and becomes Ready."""
    for kill in kills(ctx):
        new = kill.replacement
        if new is None or kill.ready_at is None:
            continue
        if new.ip and new.ip == kill.pod.ip:
            return failed(f"{new.name} became Ready with the same IP {new.ip} as {kill.pod.name}")
        return passed(
            f"replacement {new.name} Ready {kill.ready_at - kill.at:.1f} s after {kill.pod.name} "
            f"was killed; new IP {new.ip or '?'} (was {kill.pod.ip or '?'})"
        )
    return None


def service_kept_answering(ctx: Context) -> Verdict | None:
    """From the kill until its replacement was Ready the Service kept a ready endpoint."""
    for kill in kills(ctx):
        if kill.ready_at is None:
            continue
        fewest = ctx.history.min_ready_endpoints(kill.at, kill.ready_at)
        span = kill.ready_at - kill.at
        if fewest == 0:
            return failed(f"{ctx.service} had no ready endpoint for part of the {span:.1f} s replacement")
        return passed(
            f"{ctx.service} kept at least {plural(fewest, 'ready endpoint')} throughout the "
            f"{span:.1f} s from the kill to the replacement's Ready"
        )
    return None


# --- 2. ReplicaSet count, Deployment intent -----------------------------------------------------
def scaled(direction: int) -> CheckFn:
    """spec.replicas moved up (1) or down (-1) and the pods followed."""

    def check(ctx: Context) -> Verdict | None:
        for t, before, after in replicas_changes(ctx):
            if (after - before) * direction <= 0:
                continue
            done = reached(ctx.history, after, t)
            if done is None:
                continue
            moved = "created" if direction > 0 else "deleted"
            return passed(
                f"Deployment spec.replicas {before}→{after}; the ReplicaSet {moved} "
                f"{plural(abs(after - before), 'pod')}, {after}/{after} ready {done - t:.1f} s later"
            )
        return None

    return check


def two_killed(ctx: Context) -> Verdict | None:
    """Two pods killed within 10 s: the Deployment's spec stays, the ReplicaSet recreates both."""
    done = [k for k in kills(ctx) if k.ready_at is not None]
    for first, second in itertools.pairwise(done):
        gap = second.at - first.at
        if gap > 10:
            continue
        replicas = ctx.history.replicas.at(first.at, -1)
        generation = ctx.history.generation.at(first.at, 0)
        if ctx.history.generation.at(max(first.ready_at or 0, second.ready_at or 0), 0) != generation:
            continue
        assert first.replacement and second.replacement and first.ready_at and second.ready_at
        rs = ctx.history.replicaset_of(first.pod) or "its ReplicaSet"
        healed = max(first.ready_at, second.ready_at) - second.at
        return passed(
            f"{first.pod.name} and {second.pod.name} killed {gap:.1f} s apart; the Deployment "
            f"did not change (spec.replicas {replicas}, generation {generation}); {rs} created "
            f"{first.replacement.name} and {second.replacement.name}, Ready {healed:.1f} s after "
            "the second kill"
        )
    return None


# --- 3. Services select by label ----------------------------------------------------------------
def frontend_no_traffic(ctx: Context) -> Verdict | None:
    """A run through the Service while the unselected pod ran and was Ready: it got nothing."""
    history = ctx.history
    for run in runs_through(ctx):
        if run.ok < MIN_REQUESTS:
            continue
        for track in history.pods.values():
            if any(v for _, v in track.selected.steps) or track.created > run.started:
                continue
            if (track.terminating or run.ended + 1) < run.ended or not track.ready.at(run.started, False):
                continue
            got = run.pods.get(track.name)
            if got is not None and got.requests:
                return failed(f"{track.name} ({track.labels.last}) got {got.requests} requests")
            return passed(
                f"0 of {run.ok} requests reached {track.name} ({track.labels.last}, Running and "
                f"Ready); {plural(len(run.pods), 'backend pod')} served them"
            )
    return None


@dataclass(frozen=True)
class Relabel:
    """A backend pod whose labels stopped matching the selector during the lesson."""

    pod: PodTrack
    at: float
    owner: str


def relabels(ctx: Context) -> list[Relabel]:
    """Pods that left the selector (by a label change, not by being deleted)."""
    found = []
    for track in ctx.history.backend_pods():
        at = track.selected.first_time(False, after=ctx.since)
        if at is None or (track.terminating is not None and track.terminating <= at):
            continue
        found.append(Relabel(track, at, track.owner.at(at - 1e-6, "") or track.owner.at(at, "")))
    return found


def relabel_left_endpoints(ctx: Context) -> Verdict | None:
    """The relabelled pod left the Service's endpoints."""
    for relabel in relabels(ctx):
        left = relabel.pod.endpoint.first_time("none", after=relabel.at - 0.5)
        if left is not None:
            return passed(
                f"{relabel.pod.name} (now {relabel.pod.labels.at(relabel.at, '')}) left the endpoints "
                f"{max(0.0, left - relabel.at):.1f} s after the relabel"
            )
    return None


def replacement_of_relabelled(ctx: Context, relabel: Relabel) -> PodTrack | None:
    """The pod the relabelled pod's ReplicaSet created after it let go."""
    return min(
        (
            p
            for p in ctx.history.pods.values()
            if p.uid != relabel.pod.uid
            and p.owner.steps
            and p.owner.steps[0][1] == relabel.owner
            and p.created >= relabel.at
        ),
        key=lambda p: p.created,
        default=None,
    )


def released_and_replaced(ctx: Context) -> Verdict | None:
    """Its ReplicaSet released it (no owner) and created a replacement."""
    for relabel in relabels(ctx):
        released = relabel.pod.owner.first_time("", after=relabel.at - 0.5)
        new = replacement_of_relabelled(ctx, relabel)
        if released is None or new is None or not relabel.owner:
            continue
        return passed(
            f"the ReplicaSet released {relabel.pod.name} {max(0.0, released - relabel.at):.1f} s "
            f"after the relabel and created {new.name} {max(0.0, new.created - relabel.at):.1f} s after"
        )
    return None


def orphan_keeps_running(ctx: Context) -> Verdict | None:
    """The orphan still runs once its replacement is Ready."""
    for relabel in relabels(ctx):
        new = replacement_of_relabelled(ctx, relabel)
        ready = new.ready.first_time(True, after=new.created) if new else None
        if new is None or ready is None:
            continue
        orphan = relabel.pod
        if orphan.terminating is not None and orphan.terminating <= ready:
            return failed(f"{orphan.name} was deleted before {new.name} was Ready")
        status = orphan.status.at(ready, "")
        if status != "Running":
            continue
        return passed(
            f"{orphan.name} still Running, owned by nothing, when {new.name} became Ready "
            f"{ready - relabel.at:.1f} s after the relabel"
        )
    return None


# --- 4. only Ready pods get traffic -------------------------------------------------------------
def starting_pod_no_traffic(ctx: Context) -> Verdict | None:
    """A pod that started during a run of new connections got no request until it was a ready
    endpoint (with keep-alive it would get none either way: no evidence of readiness)."""
    for run in runs_through(ctx):
        if run.ok < MIN_REQUESTS or run.mode != "new-conn":
            continue
        for track in ctx.history.backend_pods():
            if track.created <= run.started:
                continue
            joined = track.endpoint.first_time("ready", after=track.created) or run.ended
            start, end = track.created, min(joined, run.ended)
            if end - start < 1.0:
                continue
            got = run.served_between(track.name, start, end)
            others = run.total_between(start, end) - got
            if others < 10:
                continue
            after = run.pods[track.name].requests if track.name in run.pods else 0
            if got:
                return failed(f"{track.name} got {got} requests while it was starting (not a ready endpoint)")
            return passed(
                f"{track.name} spent {end - start:.1f} s of the run starting (ContainerCreating, "
                f"then Running but not ready) and got 0 of the {others} requests then; "
                f"{after} once Ready"
            )
    return None


def unready_transitions(ctx: Context) -> list[tuple[PodTrack, float, float | None]]:
    """(pod, when it turned unready, when it left the ready endpoints) for running pods that
    turned unready during the lesson while not terminating."""
    out = []
    for track in ctx.history.backend_pods():
        for index, (t, ready) in enumerate(track.ready.steps):
            if ready or index == 0 or t < ctx.since or track.status.at(t, "") != "Running":
                continue
            if track.terminating is not None and track.terminating <= t + 0.5:
                continue
            left = next(
                (t2 for t2, state in track.endpoint.steps if t2 >= t - 0.5 and state != "ready"), None
            )
            out.append((track, t, left))
    return out


def unready_left_endpoints(ctx: Context) -> Verdict | None:
    """A pod switched unready leaves the ready endpoints, still Running."""
    for track, t, left in unready_transitions(ctx):
        if left is not None:
            return passed(
                f"{track.name} turned unready and left the ready endpoints "
                f"{max(0.0, left - t):.1f} s later, still Running"
            )
    return None


def rejoined_endpoints(ctx: Context) -> Verdict | None:
    """The same pod, ready again, rejoins the endpoints."""
    for track, t, left in unready_transitions(ctx):
        if left is None:
            continue
        back = track.ready.first_time(True, after=t)
        rejoined = track.endpoint.first_time("ready", after=left) if back else None
        if back is not None and rejoined is not None:
            return passed(
                f"{track.name} turned ready again and rejoined the endpoints "
                f"{max(0.0, rejoined - back):.1f} s later"
            )
    return None


# --- 5. per-connection balancing ----------------------------------------------------------------
def keepalive_pinned(ctx: Context) -> Verdict | None:
    """A keep-alive run: few connections carry many requests, each on one pod."""
    verdict = None
    for run in runs_through(ctx):
        if run.ok < 2 * MIN_REQUESTS:
            continue
        if run.mode == "keepalive" and run.connections <= 2 * run.conns:
            return passed(
                f"{plural(run.connections, 'connection')} carried {run.ok} requests "
                f"(~{run.ok // max(1, run.connections)} each); each stayed on the pod the Service "
                f"picked when it opened ({plural(len(run.pods), 'pod')} served)"
            )
        if verdict is None:
            verdict = failed(
                f"that run opened {run.connections} connections for {run.ok} requests: "
                "with new connections nothing stays pinned"
            )
    return verdict


def new_connections_spread(ctx: Context) -> Verdict | None:
    """A new-connection run spreads over the ready pods, as even as chance allows."""
    for run in runs_through(ctx):
        if run.mode != "new-conn" or run.ok < 4 * MIN_REQUESTS or run.p_value is None:
            continue
        ready = ctx.history.ready_endpoints.at(run.started, 0)
        shares = " / ".join(
            f"{100 * p.requests / run.ok:.0f} %" for p in sorted(run.pods.values(), key=lambda p: -p.requests)
        )
        if run.p_value < 0.001:
            return failed(
                f"{run.connections} new connections split {shares}: uneven (χ² p = {run.p_value:.2g})"
            )
        if len(run.pods) >= min(2, ready):
            return passed(
                f"{run.connections} new connections spread over {plural(len(run.pods), 'pod')} "
                f"({shares}); χ² p = {run.p_value:.2f} against each pod's expected share"
            )
    return None


def scale_up_during_keepalive(ctx: Context) -> Verdict | None:
    """Pods that joined during a keep-alive run got nothing (the connections stayed put)."""
    for run in runs_through(ctx):
        if run.mode != "keepalive" or run.max_per_conn or run.ok < MIN_REQUESTS:
            continue
        joined = []
        for track in ctx.history.backend_pods():
            t = track.endpoint.first_time("ready", after=run.started + 0.5)
            if t is not None and t < run.ended - 1.0 and track.endpoint.at(run.started, "none") != "ready":
                joined.append((track, t))
        if not joined:
            continue
        got = sum(run.pods[t.name].requests for t, _ in joined if t.name in run.pods)
        first = min(t for _, t in joined) - run.started
        names = ", ".join(t.name for t, _ in joined)
        if got:
            return failed(f"{names} joined mid-run and got {got} requests: connections were reopened")
        return passed(
            f"{plural(len(joined), 'pod')} ({names}) joined {first:.1f} s into the run and got 0 of "
            f"its {run.ok} requests: the {plural(run.conns, 'connection')} stayed where they were"
        )
    return None


# --- 6. scaling is an infrastructure concern ----------------------------------------------------
def scaled_up_under_traffic(ctx: Context) -> tuple[RunRecord, float] | None:
    """A run during which the ready endpoints went from at most 1 to at least 5."""
    history = ctx.history
    for run in runs_through(ctx):
        if run.ok < 2 * MIN_REQUESTS or history.ready_endpoints.at(run.started, 0) > 1:
            continue
        five = next(
            (t for t, n in history.ready_endpoints.steps if run.started < t <= run.ended and n >= 5), None
        )
        if five is not None:
            return run, five
    return None


def scale_one_to_five(ctx: Context) -> Verdict | None:
    """Scaling 1→5 under traffic: no request fails."""
    found = scaled_up_under_traffic(ctx)
    if found is None:
        return None
    run, five = found
    if run.failed:
        return failed(f"{run.failed} of {run.requests} requests failed while scaling")
    return passed(
        f"1→5 ready endpoints {five - run.started:.1f} s into the run; {run.requests} requests, "
        f"0 failed, served by {plural(len(run.pods), 'pod')}"
    )


def nothing_else_changed(ctx: Context) -> Verdict | None:
    """While it scaled, the image, the pod template (the code) and the Service stayed the same."""
    found = scaled_up_under_traffic(ctx)
    if found is None:
        return None
    run, _ = found
    history = ctx.history
    templates = {v for t, v in history.template.steps if ctx.since <= t <= run.ended} | {
        history.template.at(ctx.since, "")
    }
    services = {v for t, v in history.service_spec.steps if ctx.since <= t <= run.ended} | {
        history.service_spec.at(ctx.since, "")
    }
    hashes = {track.template_hash for name in run.pods if (track := history.by_name(name))}
    if len(templates) > 1 or len(services) > 1 or len(hashes) > 1:
        return failed("the pod template or the Service changed while scaling")
    return passed(
        f"image {history.image.at(run.ended, '?')}, one pod template ({hashes.pop() if hashes else '?'}) "
        f"for all {plural(len(run.pods), 'pod')}, {ctx.service} unchanged: only the count moved"
    )


# --- 7. nodes must have the image ---------------------------------------------------------------
def pull_failures(ctx: Context) -> list[PodTrack]:
    """Backend pods created during the lesson whose image could not be pulled."""
    return [t for t in ctx.history.backend_pods() if t.created >= ctx.since and t.pull_errors]


def image_pull_failed(ctx: Context) -> Verdict | None:
    """A pod of the new template shows ErrImagePull / ImagePullBackOff."""
    for track in pull_failures(ctx):
        statuses = sorted({s for _, s in track.status.steps if s in {"ErrImagePull", "ImagePullBackOff"}})
        return passed(
            f"{track.name}: {' then '.join(statuses)} — image {track.image} is not on its node "
            f"({track.pull_errors[0] - track.created:.1f} s after the pod was created)"
        )
    return None


def old_pods_kept_serving(ctx: Context) -> Verdict | None:
    """While the new pod could not start, the old pods kept serving."""
    for track in pull_failures(ctx):
        start = track.pull_errors[0]
        end = track.ready.first_time(True, after=start) or ctx.now
        fewest = ctx.history.min_ready_endpoints(start, end)
        if fewest == 0:
            return failed(f"{ctx.service} had no ready endpoint while {track.name} could not pull its image")
        return passed(
            f"meanwhile {ctx.service} kept {plural(fewest, 'ready endpoint')} of the old version: "
            "the rollout waits (maxUnavailable 0)"
        )
    return None


def loaded_image_started(ctx: Context) -> Verdict | None:
    """After the image is on the node, the pods start."""
    for track in pull_failures(ctx):
        ready = track.ready.first_time(True, after=track.pull_errors[-1])
        if ready is not None:
            return passed(
                f"{track.name} ({track.image}) Ready {ready - track.pull_errors[-1]:.1f} s after its "
                "last pull error: the node has the image now"
            )
    for track in ctx.history.backend_pods():  # a pod that failed, was replaced, and the new one ran
        if track.created >= ctx.since and not track.pull_errors and pull_failures(ctx):
            image = track.image
            if any(f.image == image for f in pull_failures(ctx)):
                ready = track.ready.first_time(True, after=track.created)
                if ready is not None and ready > max(f.pull_errors[-1] for f in pull_failures(ctx)):
                    return passed(
                        f"{track.name} ({image}) started and became Ready once the node had the image"
                    )
    return None


# --- 8. declarative ----------------------------------------------------------------------------
def desired_state_applied(ctx: Context) -> Verdict | None:
    """A change of the desired replicas was reconciled by the controllers."""
    for t, before, after in replicas_changes(ctx):
        done = reached(ctx.history, after, t)
        if done is None:
            continue
        generation = ctx.history.generation.at(t, 0)
        return passed(
            f"desired state replicas: {before}→{after} (generation {generation}); the controllers "
            f"reconciled it: {after}/{after} ready {done - t:.1f} s later"
        )
    return None


def deleting_does_not_scale(ctx: Context) -> Verdict | None:
    """A pod deleted by hand comes back: deleting is not how you scale."""
    for kill in kills(ctx):
        if kill.ready_at is None or kill.replacement is None:
            continue
        replicas = ctx.history.replicas.at(kill.ready_at, -1)
        return passed(
            f"deleting {kill.pod.name} by hand did not scale: the ReplicaSet replaced it with "
            f"{kill.replacement.name} ({kill.ready_at - kill.at:.1f} s); spec.replicas stayed {replicas}"
        )
    return None


# --- 9. debugging is observing state ------------------------------------------------------------
def stuck_pods(ctx: Context) -> list[PodTrack]:
    """Pods of a template introduced during the lesson that ran but never became Ready."""
    start_hash = {t.template_hash for t in ctx.history.backend_pods() if t.created < ctx.since}
    return [
        t
        for t in ctx.history.backend_pods()
        if t.created >= ctx.since
        and t.template_hash not in start_hash
        and any(s == "Running" for _, s in t.status.steps)
        and not any(r for _, r in t.ready.steps)
    ]


def probe_failures(ctx: Context, track: PodTrack) -> list[str]:
    """Messages of the Unhealthy Events seen for a pod during the lesson."""
    return [
        e.message
        for e in ctx.history.events
        if e.t >= ctx.since and e.name == track.name and e.reason == "Unhealthy"
    ]


def probe_event(ctx: Context) -> Verdict | None:
    """The Events say why: the readiness probe fails."""
    for track in stuck_pods(ctx):
        messages = probe_failures(ctx, track)
        if messages:
            return passed(
                f"Event Unhealthy on {track.name}: {messages[-1]} (seen {plural(len(messages), 'time')})"
            )
    return None


def endpoints_not_ready(ctx: Context) -> Verdict | None:
    """The Service lists the new pod as a not-ready endpoint while the old ones serve."""
    for track in stuck_pods(ctx):
        at = track.endpoint.first_time("not-ready", after=ctx.since)
        if at is None:
            continue
        serving = ctx.history.ready_endpoints.at(at, 0)
        return passed(
            f"{ctx.service} lists {track.name} under notReadyAddresses (Running, READY 0/1) while "
            f"{plural(serving, 'old pod')} keep serving: the rollout is stuck, not down"
        )
    return None


def rolled_back(ctx: Context) -> Verdict | None:
    """The broken rollout is undone: back to the working template, the broken pods gone, every
    pod Ready."""
    stuck = stuck_pods(ctx)
    if not stuck:
        return None
    history = ctx.history
    broke = min(t.created for t in stuck)
    good = history.template.at(broke - 5, "") or history.template.at(ctx.since, "")
    for t, value in history.template.steps:
        if t <= broke or value != good:
            continue
        removed = [s.terminating for s in stuck]
        if any(at is None for at in removed):
            return None
        cleared = max(at for at in removed if at is not None)
        replicas = history.replicas.at(cleared, 0)
        done = reached(history, replicas, cleared)
        if done is None:
            continue
        fewest = history.min_ready_endpoints(broke, done)
        return passed(
            f"rolled back to the previous template: {plural(len(stuck), 'broken pod')} removed "
            f"{max(0.0, cleared - t):.1f} s after the undo, {replicas}/{replicas} ready; the Service "
            f"never had fewer than {plural(fewest, 'ready endpoint')}"
        )
    return None


# --- 10. rolling update -------------------------------------------------------------------------
@dataclass(frozen=True)
class Rollout:
    """A template change during the lesson and when it completed."""

    started: float
    done: float | None
    old: str
    new: str
    before: int
    after: int


def rollouts(ctx: Context) -> list[Rollout]:
    """Template changes of the Deployment during the lesson, with their ReplicaSets."""
    history = ctx.history
    out = []
    for index, (t, _digest) in enumerate(history.template.steps):
        if index == 0 or t < ctx.since:
            continue
        old_pods = [
            p
            for p in history.backend_pods()
            if p.created < t and p.template_hash and (p.terminating is None or p.terminating >= t)
        ]
        new_pods = [p for p in history.backend_pods() if p.created >= t and p.template_hash]
        if not old_pods or not new_pods:
            continue
        old = f"{history.scope.deployment}-{old_pods[0].template_hash}"
        new = f"{history.scope.deployment}-{new_pods[0].template_hash}"
        if old == new or old not in history.replicasets or new not in history.replicasets:
            continue
        old_desired, old_ready = history.replicasets[old]
        _new_desired, new_ready = history.replicasets[new]
        replicas = history.replicas.at(t, 0)
        done = next(
            (
                t2
                for t2, ready in new_ready.steps
                if t2 >= t and ready >= replicas and old_desired.at(t2, 1) == 0 and old_ready.at(t2, 1) == 0
            ),
            None,
        )
        if done is None:
            done = next(
                (
                    t2
                    for t2, ready in old_ready.steps
                    if t2 >= t
                    and ready == 0
                    and new_ready.at(t2, 0) >= replicas
                    and old_desired.at(t2, 1) == 0
                ),
                None,
            )
        out.append(Rollout(t, done, old, new, old_desired.at(t - 1e-6, 0), replicas))
    return out


def two_replicasets(ctx: Context) -> Verdict | None:
    """The old and the new ReplicaSet hand over: both serve for a while, then only the new one."""
    for rollout in rollouts(ctx):
        if rollout.done is None:
            continue
        old_ready = ctx.history.replicasets[rollout.old][1]
        new_ready = ctx.history.replicasets[rollout.new][1]
        overlap = any(
            new_ready.at(t, 0) > 0 and ready > 0 for t, ready in old_ready.steps if t >= rollout.started
        ) or any(old_ready.at(t, 0) > 0 and ready > 0 for t, ready in new_ready.steps if t >= rollout.started)
        if not overlap:
            continue
        return passed(
            f"{rollout.old} {rollout.before}→0 while {rollout.new} 0→{rollout.after}, both serving "
            f"for a while; done {rollout.done - rollout.started:.1f} s after the new template"
        )
    return None


def rollout_run(ctx: Context) -> tuple[Rollout, RunRecord] | None:
    """A run that covered a whole rollout."""
    for rollout in rollouts(ctx):
        if rollout.done is None:
            continue
        for run in runs_through(ctx):
            if run.started < rollout.started and run.ended > rollout.done and run.ok >= MIN_REQUESTS:
                return rollout, run
    return None


def rollout_zero_failed(ctx: Context) -> Verdict | None:
    """Under traffic, the rolling update fails no request (pods drain before they stop)."""
    found = rollout_run(ctx)
    if found is None:
        return None
    rollout, run = found
    assert rollout.done is not None
    if run.failed:
        return failed(f"{run.failed} of {run.requests} requests failed during the rollout")
    return passed(
        f"0 of {run.requests} requests failed during the {rollout.done - rollout.started:.1f} s "
        "rollout: each old pod left the endpoints, finished its requests, then stopped"
    )


def both_versions_served(ctx: Context) -> Verdict | None:
    """The same run was answered by the old version, then by the new one."""
    found = rollout_run(ctx)
    if found is None:
        return None
    rollout, run = found
    by_rs: dict[str, int] = {}
    for name, served in run.pods.items():
        track = ctx.history.by_name(name)
        if track is not None:
            rs = ctx.history.replicaset_of(track)
            by_rs[rs] = by_rs.get(rs, 0) + served.requests
    old, new = by_rs.get(rollout.old, 0), by_rs.get(rollout.new, 0)
    if old and new:
        return passed(
            f"{old} requests answered by {rollout.old} pods, then {new} by {rollout.new} pods "
            "(the heatmap marks the rollout)"
        )
    return None


# --- 11. a Service balances connections, an Ingress balances requests ---------------------------
def _split(run: RunRecord) -> str:
    return " / ".join(f"{100 * p.requests / max(1, run.ok):.0f} %"
                      for p in sorted(run.pods.values(), key=lambda p: -p.requests))


def service_one_connection_one_pod(ctx: Context) -> Verdict | None:
    """Through the Service, one keep-alive connection's requests all reach one pod."""
    for run in runs_through(ctx):
        if run.mode != "keepalive" or run.max_per_conn or run.connections > 1 or run.ok < 2 * MIN_REQUESTS:
            continue
        if len(run.pods) == 1:
            (pod,) = run.pods
            return passed(f"1 keep-alive connection through the Service: all {run.ok} requests reached {pod}")
        reached = plural(len(run.pods), "pod")
        return failed(f"1 connection through the Service reached {reached} ({_split(run)})")
    return None


def ingress_one_connection_every_pod(ctx: Context) -> Verdict | None:
    """Through the Ingress, one keep-alive connection's requests reach every ready pod in turn."""
    for run in runs_via_ingress(ctx):
        if run.mode != "keepalive" or run.connections > 2 * run.conns or run.ok < 2 * MIN_REQUESTS:
            continue
        ready = max(1, ctx.history.min_ready_endpoints(run.started, run.ended))
        if len(run.pods) >= max(2, ready):
            return passed(f"{plural(run.connections, 'keep-alive connection')} through the Ingress: {run.ok} "
                          f"requests spread over {plural(len(run.pods), 'pod')} ({_split(run)})")
        return failed(f"through the Ingress {run.ok} requests reached only {plural(len(run.pods), 'pod')} of "
                      f"{ready} ready")
    return None


# --- 12. autoscaling --------------------------------------------------------------------------
def _rescales(ctx: Context, word: str) -> list[EventRecord]:
    return [e for e in ctx.history.events if e.t >= ctx.since and e.reason == "SuccessfulRescale"
            and e.kind == "HorizontalPodAutoscaler" and word in e.message]


def hpa_scaled_up(ctx: Context) -> Verdict | None:
    """The HPA raised the replicas because the CPU utilisation was above its target."""
    ups = _rescales(ctx, "above target")
    if not ups:
        return None
    first = ups[0]
    runs = [r for r in ctx.runs if r.started <= first.t]
    into = f", {first.t - runs[-1].started:.0f} s into the traffic run" if runs else ""
    return passed(f"{first.name}: {first.message}{into}")


def new_pods_took_requests(ctx: Context) -> Verdict | None:
    """Pods the HPA added during a new-connection run served some of its requests."""
    ups = _rescales(ctx, "above target")
    if not ups:
        return None
    for run in runs_through(ctx) + runs_via_ingress(ctx):
        if run.mode != "new-conn" or run.ok < MIN_REQUESTS:
            continue
        added = [t for t in ctx.history.backend_pods() if run.started < t.created < run.ended]
        served = {t.name: run.pods[t.name].requests for t in added if t.name in run.pods}
        if served:
            total = sum(served.values())
            return passed(f"{plural(len(served), 'new pod')} took {total} of the run's {run.ok} requests")
    return None


def hpa_scaled_down(ctx: Context) -> Verdict | None:
    """After the traffic stopped, the HPA scaled back down once its stabilization window passed."""
    ups = _rescales(ctx, "above target")
    downs = [e for e in _rescales(ctx, "All metrics below target") if ups and e.t > ups[0].t]
    if not downs:
        return None
    last_run = max((r.ended for r in ctx.runs if r.ended <= downs[0].t), default=None)
    after = f" {downs[0].t - last_run:.0f} s after the traffic stopped" if last_run else ""
    return passed(f"{downs[0].name}: {downs[0].message}{after}")
