"""Leader-election Leases for kube-scheduler and kube-controller-manager (client-go's
`tools/leaderelection` with the `leases` resource lock).

A real control plane's scheduler and controller manager each hold a Lease in kube-system,
``kube-scheduler`` and ``kube-controller-manager``, renewed every 2 s (retryPeriod) for a
leaseDurationSeconds of 15; ``kubectl get leases -n kube-system`` shows who holds them, and a new
holder records a Normal ``LeaderElection`` Event "<identity> became leader" on the Lease.
`LeaseHolder` does the same here, with client-go's rules (`tryAcquireOrRenew`):

- no Lease -> create it, holding it (``leaseTransitions`` 0);
- held by another identity whose renewal is not yet ``leaseDurationSeconds`` old (measured on
  our own clock from when we last saw the record change, as client-go does) -> wait and retry;
- held by us, released (empty holder) or expired -> write ourselves in (``leaseTransitions`` + 1
  and ``acquireTime`` now unless we were the holder), by PUT with the resourceVersion read, so
  two writers never both win;
- a leader renews with one PUT of the Lease as its last write left it (client-go's optimistic fast
  path, one request every 2 s instead of two); a conflict falls back to the rules above;
- on shutdown the Lease is released (holder emptied, ``leaseDurationSeconds: 1``), as the
  scheduler's ``ReleaseOnCancel`` does, so a restarted sandbox takes it over at once.

Design note: the sandbox runs exactly one scheduler and one controller manager (in the
node-agents process), so they do not wait for the Lease before working; the Lease is their
liveness record. The API server's ``componentstatuses`` (`kinds/componentstatus.py`) reads it
to tell Healthy from Unhealthy, where kube-apiserver probes the components' /healthz ports.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
import uuid
from datetime import UTC, datetime

from sandbox.client import LEASES, ApiClient, ApiError, Obj
from sandbox.record import NORMAL, EventRecorder

log = logging.getLogger("sandbox.leaderelection")

NAMESPACE = "kube-system"
SCHEDULER_LEASE = "kube-scheduler"
CONTROLLER_MANAGER_LEASE = "kube-controller-manager"
LEASE_DURATION = 15
RETRY_PERIOD = 2.0


def micro_time(epoch: float | None = None) -> str:
    """A MicroTime as client-go writes it (RFC 3339 with microseconds)."""
    stamp = datetime.fromtimestamp(time.time() if epoch is None else epoch, UTC)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def new_identity() -> str:
    """``<hostname>_<uuid>``: the identity kube-scheduler and kube-controller-manager use."""
    return f"{socket.gethostname()}_{uuid.uuid4()}"


class LeaseHolder:
    """Acquires and keeps renewing one leader-election Lease until `run` is cancelled."""

    def __init__(self, client: ApiClient, name: str, *, identity: str | None = None,
                 lease_duration: int = LEASE_DURATION, retry_period: float = RETRY_PERIOD) -> None:
        self.client = client
        self.name = name
        self.identity = identity or new_identity()
        self.lease_duration = lease_duration
        self.retry_period = retry_period
        self.recorder = EventRecorder(client, component=name)
        self.leading = False
        self._observed: tuple[dict, float] | None = None  # (spec seen, monotonic time first seen)
        self._written: Obj | None = None  # the Lease as our last write left it

    async def run(self) -> None:
        """Try to acquire or renew every retry period; release the Lease when cancelled."""
        try:
            while True:
                try:
                    await self.try_acquire_or_renew()
                except (ApiError, OSError, TimeoutError) as exc:
                    log.info("lease %s/%s: %s", NAMESPACE, self.name, exc)
                await asyncio.sleep(self.retry_period)
        finally:
            if self.leading:
                with contextlib.suppress(Exception):
                    await asyncio.shield(self.release())

    def _record(self, old: dict, now: float) -> dict:
        """The spec we write: ours, keeping acquireTime and transitions while we hold it."""
        ours = old.get("holderIdentity") == self.identity
        changed = bool(old) and not ours  # client-go: +1 whenever we were not the leader
        return {
            "holderIdentity": self.identity,
            "leaseDurationSeconds": self.lease_duration,
            "acquireTime": old.get("acquireTime") if ours and old.get("acquireTime") else micro_time(now),
            "renewTime": micro_time(now),
            "leaseTransitions": int(old.get("leaseTransitions") or 0) + changed,
        }

    def _expired(self, spec: dict) -> bool:
        """client-go's rule: another holder's record is valid for leaseDurationSeconds after we
        first observed it (our clock, not the writer's renewTime)."""
        now = time.monotonic()
        if self._observed is None or self._observed[0] != spec:
            self._observed = (dict(spec), now)
        duration = int(spec.get("leaseDurationSeconds") or self.lease_duration)
        return now - self._observed[1] >= duration

    async def try_acquire_or_renew(self) -> bool:
        """One round of `tryAcquireOrRenew`; True when we hold the Lease afterwards. A leader
        renews with one PUT of the Lease it last wrote (client-go's optimistic fast path); a
        conflict or any other failure falls back to reading the Lease first."""
        now = time.time()
        last = self._written
        if self.leading and last is not None:
            last["spec"] = self._record(last.get("spec") or {}, now)
            try:
                self._written = await self.client.replace(LEASES, last)
                return True
            except ApiError as exc:
                log.info("renewing %s/%s optimistically failed (%s); reading it", NAMESPACE, self.name, exc)
                self._written = None
        try:
            lease = await self.client.get(LEASES, self.name, namespace=NAMESPACE)
        except ApiError as exc:
            if not exc.not_found:
                raise
            lease = await self.client.create(LEASES, {
                "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                "metadata": {"name": self.name, "namespace": NAMESPACE},
                "spec": self._record({}, now)}, namespace=NAMESPACE)
            self._written = lease
            return self._became_leader(lease)
        spec = lease.get("spec") or {}
        holder = spec.get("holderIdentity") or ""
        if holder and holder != self.identity and not self._expired(spec):
            self.leading = False
            return False
        lease["spec"] = self._record(spec, now)
        lease = self._written = await self.client.replace(LEASES, lease)
        if holder == self.identity:
            self.leading = True
            return True
        return self._became_leader(lease)

    def _became_leader(self, lease: Obj) -> bool:
        self.leading = True
        log.info("%s became leader of %s/%s", self.identity, NAMESPACE, self.name)
        self.recorder.event(lease, NORMAL, "LeaderElection", f"{self.identity} became leader")
        return True

    async def release(self) -> None:
        """Give the Lease up (client-go's `release`): empty holder, duration 1 s."""
        lease = await self.client.get(LEASES, self.name, namespace=NAMESPACE)
        spec = lease.get("spec") or {}
        if spec.get("holderIdentity") != self.identity:
            return
        now = micro_time()
        lease["spec"] = {"holderIdentity": "", "leaseDurationSeconds": 1, "acquireTime": now,
                         "renewTime": now, "leaseTransitions": int(spec.get("leaseTransitions") or 0)}
        await self.client.replace(LEASES, lease)
        self.leading = False
        self._written = None
        with contextlib.suppress(TimeoutError):
            await self.recorder.flush(timeout=2.0)
