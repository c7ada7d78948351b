"""The workload controller: reconciles desired state (database) with observed state (backend).

One task owns every state change after submission, so the steps below never race each other:
inventory → observations → stop requests → scheduling → launches. Each step is idempotent and keeps
no state that a restart would lose: after `kill -9` the next start re-reads the database, asks the
backend what it still runs, adopts it, and carries on — nothing is started twice or forgotten.
Backend calls happen outside database transactions."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import cast

from sqlalchemy import Table, bindparam, update
from sqlalchemy.ext.asyncio import AsyncSession

from astrago.backends.base import (
    Backend,
    BackendError,
    Capability,
    NodeInventory,
    OrphanPolicy,
    ReplicaObservation,
)
from astrago.controllers.launch import launch_spec
from astrago.controllers.metrics import ControllerMetrics
from astrago.domain.enums import ReplicaState, WorkloadKind, WorkloadStatus
from astrago.domain.gpu_models import canonical_gpu_model
from astrago.domain.status import LIVE_STATUSES, check_transition
from astrago.scheduler import schedule
from astrago.scheduler.types import Decisions, ReplicaPlacement, SchedulerConfig
from astrago.services.context import ServiceContext
from astrago.services.snapshot import PendingState, build_snapshot
from astrago.store.models import Device, Replica, Workload
from astrago.store.repositories import (
    EventRepository,
    LogArchiveRepository,
    NodeRepository,
    WorkloadRepository,
)

log = logging.getLogger(__name__)

ENDED_REPLICA_STATES = frozenset(
    {ReplicaState.SUCCEEDED, ReplicaState.FAILED, ReplicaState.STOPPED, ReplicaState.LOST}
)
INVENTORY_EVERY_S = 30.0
PRUNE_LOGS_EVERY_S = 3600.0
FULL_RECONCILE_EVERY_S = 15.0
MIN_REST_S = 0.05


def _now() -> datetime:
    return datetime.now(UTC)


def _transition(
    workload: Workload, target: WorkloadStatus, reason: str | None, events: EventRepository
) -> None:
    check_transition(WorkloadStatus(workload.status), target)
    workload.status = target.value
    workload.reason = reason
    events.add(workload.id, target.value.capitalize(), reason or target.value.lower())


def _replica_failure(replicas: Iterable[Replica]) -> str | None:
    for replica in replicas:
        if replica.state in (ReplicaState.FAILED, ReplicaState.LOST, ReplicaState.STOPPED):
            return f"replica {replica.index}: {replica.reason or replica.state.lower()}"
    return None


class WorkloadController:
    def __init__(
        self,
        ctx: ServiceContext,
        backend: Backend,
        config: SchedulerConfig | None = None,
        metrics: ControllerMetrics | None = None,
        schedule_every_s: float = 30.0,
    ) -> None:
        self.ctx = ctx
        self.backend = backend
        self.config = config or SchedulerConfig(policy=ctx.settings.scheduler_policy)
        self.metrics = metrics or ControllerMetrics()
        self._wake = asyncio.Event()
        self._observed: asyncio.Queue[ReplicaObservation] = asyncio.Queue()
        self._stopping: dict[str, asyncio.Task[None]] = {}
        self._last_inventory = -INVENTORY_EVERY_S
        self._last_full_reconcile = -FULL_RECONCILE_EVERY_S
        self._last_log_prune = -PRUNE_LOGS_EVERY_S
        self._orphans_checked = False
        self._changed = True
        self._last_schedule = -math.inf
        self.schedule_every_s = schedule_every_s

    def wake(self) -> None:
        """Something changed (a submission, a cancel, a quota, an observation): schedule soon."""
        self._changed = True
        self._wake.set()

    async def run(self) -> None:
        """Run until cancelled.

        Wakes are coalesced: after a cycle the loop rests at least as long as the cycle took (and
        MIN_REST_S), so a burst of submissions costs a few cycles rather than one cycle each, and the
        controller never takes more than about half of the event loop from the API."""
        watcher = asyncio.create_task(self._consume_watch(), name="backend-watch")
        try:
            while True:
                started = time.monotonic()
                await self.cycle()
                await asyncio.sleep(max(MIN_REST_S, time.monotonic() - started))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=self.ctx.settings.scheduling_interval_s)
                self._wake.clear()
        finally:
            watcher.cancel()
            for task in self._stopping.values():
                task.cancel()

    async def cycle(self) -> None:
        """One pass of every step; a failing step is logged and retried next pass, never fatal."""
        now = time.monotonic()
        steps = []
        if now - self._last_inventory >= INVENTORY_EVERY_S:
            self._last_inventory = now
            steps.append(self.sync_inventory)
        if now - self._last_full_reconcile >= FULL_RECONCILE_EVERY_S:
            self._last_full_reconcile = now
            steps.append(self.full_reconcile)
        if now - self._last_log_prune >= PRUNE_LOGS_EVERY_S:
            self._last_log_prune = now
            steps.append(self.prune_log_archives)
        steps += [self.apply_watched, self.handle_stop_requests]
        # Scheduling is a pure function of the store: without a change it would decide the same again.
        # `schedule_every_s` bounds how long a change made by another process (an API-only server) waits.
        if self._changed or now - self._last_schedule >= self.schedule_every_s:
            self._changed = False
            self._last_schedule = now
            steps.append(self.schedule_once)
        steps.append(self.launch_admitted)
        if self.backend.capabilities.supports(Capability.ROLLING_UPDATE):
            steps.append(self.roll_services)
        for step in steps:
            try:
                await step()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("controller step %s failed; retrying next cycle", step.__name__)

    # -- inventory ---------------------------------------------------------------------------------

    async def sync_inventory(self) -> None:
        inventory = await self.backend.inventory()
        await self._store_inventory(inventory)

    async def _store_inventory(self, inventory: Sequence[NodeInventory]) -> None:
        seen = _now()
        async with self.ctx.write() as session:
            nodes = NodeRepository(session)
            reported = {n.name for n in inventory}
            for item in inventory:
                await nodes.upsert(
                    name=item.name,
                    backend=self.backend.name,
                    cpu_milli=item.cpu_milli,
                    memory_mib=item.memory_mib,
                    schedulable=item.schedulable and item.ready,
                    simulated=item.simulated,
                    labels=dict(item.labels),
                    devices=[
                        Device(
                            node_name=item.name,
                            index=d.index,
                            uuid=d.uuid,
                            # one name per model whatever the backend reports; the raw name for display
                            model=canonical_gpu_model(d.model, d.memory_mib),
                            product=d.model,
                            memory_mib=d.memory_mib,
                            simulated=d.simulated,
                            healthy=d.healthy,
                            mig_enabled=d.mig_enabled,
                        )
                        for d in item.devices
                    ],
                    seen_at=seen,
                )
            for node in await nodes.list():
                if node.name not in reported and node.backend == self.backend.name and node.schedulable:
                    # Keep the row while workloads may still be placed there; the backend reports them lost.
                    node.schedulable = False
                    log.warning("node %s disappeared from the %s backend", node.name, self.backend.name)
        self.wake()

    # -- observed state ----------------------------------------------------------------------------

    async def _consume_watch(self) -> None:
        while True:
            try:
                async for observation in self.backend.watch():
                    self._observed.put_nowait(observation)
                    self.wake()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("backend watch failed; resuming in 2s (the periodic reconcile covers the gap)")
            await asyncio.sleep(2)

    async def apply_watched(self) -> None:
        batch: list[ReplicaObservation] = []
        while not self._observed.empty():
            batch.append(self._observed.get_nowait())
        if batch:
            await self.apply_observations(batch, complete=False)

    async def full_reconcile(self) -> None:
        await self.apply_observations(await self.backend.observe(), complete=True)
        if not self._orphans_checked:
            await self._report_orphans()

    async def _report_orphans(self) -> None:
        """Once per start: objects in the backend whose workload the database does not know (e.g. created
        just before a crash that lost the transaction) are reported, and deleted if so configured."""
        self._orphans_checked = True
        if not self.backend.capabilities.supports(Capability.ORPHAN_CLEANUP):
            return
        async with self.ctx.read() as session:
            known = await WorkloadRepository(session).all_ids()
        orphans = await self.backend.reconcile_orphans(known, OrphanPolicy(self.ctx.settings.orphan_policy))
        for orphan in orphans:
            log.warning(
                "orphaned %s object in the backend (policy: %s)", orphan, self.ctx.settings.orphan_policy
            )

    async def apply_observations(self, observations: Sequence[ReplicaObservation], complete: bool) -> None:
        """Fold observations into replica rows and workload statuses.

        With `complete`, the observations are everything the backend runs: a launched replica missing from
        them is lost (e.g. its process vanished while the server was down)."""
        by_workload: dict[str, dict[int, ReplicaObservation]] = defaultdict(dict)
        for reported in observations:
            by_workload[reported.workload_id][reported.replica_index] = reported
        finished: list[tuple[str, int]] = []
        async with self.ctx.write() as session:
            events = EventRepository(session)
            for workload in await WorkloadRepository(session).with_statuses(LIVE_STATUSES):
                seen = by_workload.get(workload.id, {})
                if seen and not workload.launched:
                    workload.launched = True  # started just before a crash: adopt instead of starting again
                if not workload.launched:
                    continue
                changed = False
                for replica in workload.replica_rows:
                    observation: ReplicaObservation | None = seen.get(replica.index)
                    if observation is None and complete and replica.state not in ENDED_REPLICA_STATES:
                        observation = ReplicaObservation(
                            workload.id,
                            replica.index,
                            ReplicaState.LOST,
                            reason=f"the {self.backend.name} backend no longer knows this replica",
                        )
                    if observation is not None:
                        changed |= self._update_replica(replica, observation)
                if (changed or complete) and self._derive_status(workload, events):
                    finished.append((workload.id, workload.replicas))
        for workload_id, replicas in finished:
            if not self.backend.capabilities.supports(Capability.DURABLE_LOGS):
                await self._archive_logs(workload_id, replicas)
            with contextlib.suppress(Exception):
                await self.backend.forget(workload_id)
        if finished:
            self.wake()  # resources were released: the queue may move

    async def _archive_logs(self, workload_id: str, replicas: int) -> None:
        """Copy a finished workload's logs into the database before the backend forgets it (and deletes
        them): any server process can then serve them, long after the pods are gone."""
        for index in range(replicas):
            chunks: list[bytes] = []
            try:
                async for chunk in self.backend.logs(workload_id, index, follow=False):
                    chunks.append(chunk)
            except BackendError as exc:  # a replica that never started has no log
                log.info("no log to archive for %s replica %s: %s", workload_id, index, exc)
                continue
            async with self.ctx.write() as session:
                await LogArchiveRepository(session).put(workload_id, index, b"".join(chunks))

    async def prune_log_archives(self) -> None:
        cutoff = _now() - timedelta(days=self.ctx.settings.log_retention_days)
        async with self.ctx.write() as session:
            pruned = await LogArchiveRepository(session).delete_older_than(cutoff)
        if pruned:
            log.info(
                "deleted %d archived logs older than %g days", pruned, self.ctx.settings.log_retention_days
            )

    @staticmethod
    def _update_replica(replica: Replica, observation: ReplicaObservation) -> bool:
        if replica.state in ENDED_REPLICA_STATES:
            return False  # an ended replica stays ended; late or duplicate reports change nothing
        new_state = observation.state.value
        if (replica.state, replica.exit_code, replica.reason) == (
            new_state,
            observation.exit_code,
            observation.reason,
        ):
            return False
        replica.state = new_state
        replica.exit_code = observation.exit_code
        replica.reason = observation.reason
        if observation.started_at and replica.started_at is None:
            replica.started_at = datetime.fromtimestamp(observation.started_at, UTC)
        if observation.state in ENDED_REPLICA_STATES:
            ended = observation.finished_at
            replica.finished_at = datetime.fromtimestamp(ended, UTC) if ended else _now()
        return True

    def _derive_status(self, workload: Workload, events: EventRepository) -> bool:
        """Workload status from its replicas. Returns True when the workload just finished."""
        replicas = workload.replica_rows
        states = [ReplicaState(r.state) if r.state else None for r in replicas]
        if all(s in ENDED_REPLICA_STATES for s in states):
            self._finish(workload, events)
            return True
        failure = _replica_failure(replicas)
        if failure and workload.stop_requested is None:
            # A gang lives and dies together: one failed replica stops the others.
            workload.stop_requested = "failure"
            workload.stop_reason = failure
            events.add(workload.id, "StopRequested", f"stopping the other replicas: {failure}")
            return False
        current = WorkloadStatus(workload.status)
        running = all(s in (ReplicaState.RUNNING, ReplicaState.SUCCEEDED) for s in states)
        if running and current != WorkloadStatus.RUNNING:
            _transition(workload, WorkloadStatus.RUNNING, None, events)
            workload.started_at = workload.started_at or _now()
        elif not running and current == WorkloadStatus.ADMITTED:
            _transition(workload, WorkloadStatus.STARTING, None, events)
        return False

    def _finish(self, workload: Workload, events: EventRepository) -> None:
        request = workload.stop_requested
        replicas = workload.replica_rows
        if request == "preempt":
            _transition(workload, WorkloadStatus.PREEMPTED, workload.stop_reason, events)
            self._requeue(workload, events)
            return
        if request == "cancel":
            _transition(workload, WorkloadStatus.CANCELLED, workload.stop_reason, events)
        elif all(r.state == ReplicaState.SUCCEEDED for r in replicas):
            _transition(workload, WorkloadStatus.SUCCEEDED, "all replicas exited with code 0", events)
        else:
            reason = workload.stop_reason if request == "failure" else _replica_failure(replicas)
            _transition(workload, WorkloadStatus.FAILED, reason, events)
        workload.finished_at = _now()
        workload.pending_code = None
        workload.queue_position = None

    @staticmethod
    def _requeue(workload: Workload, events: EventRepository) -> None:
        reason = f"preempted ({workload.stop_reason}); waiting to run again"
        _transition(workload, WorkloadStatus.PENDING, reason, events)
        workload.replica_rows.clear()
        workload.launched = False
        workload.admitted_at = None
        workload.admitted_seq = None
        workload.stop_requested = None
        workload.stop_reason = None
        workload.pending_code = "preempted"

    # -- stops -------------------------------------------------------------------------------------

    async def handle_stop_requests(self) -> None:
        to_stop: list[tuple[str, str]] = []
        async with self.ctx.write() as session:
            events = EventRepository(session)
            for workload in await WorkloadRepository(session).with_statuses(LIVE_STATUSES):
                if workload.stop_requested is None:
                    continue
                if not workload.launched:
                    self._stop_unlaunched(workload, events)
                elif workload.id not in self._stopping:
                    to_stop.append((workload.id, workload.stop_reason or workload.stop_requested))
        for workload_id, reason in to_stop:
            self._stopping[workload_id] = asyncio.create_task(self._stop(workload_id, reason))

    def _stop_unlaunched(self, workload: Workload, events: EventRepository) -> None:
        """Nothing runs yet: settle it at once (the backend was never asked to start it)."""
        if workload.stop_requested == "preempt":
            _transition(workload, WorkloadStatus.PREEMPTED, workload.stop_reason, events)
            self._requeue(workload, events)
            return
        target = WorkloadStatus.CANCELLED if workload.stop_requested == "cancel" else WorkloadStatus.FAILED
        _transition(workload, target, workload.stop_reason, events)
        workload.finished_at = _now()

    async def _stop(self, workload_id: str, reason: str) -> None:
        try:
            await self.backend.stop(workload_id, self.ctx.settings.stop_grace_s, reason)
        except Exception:
            log.exception("stopping workload %s failed; will retry", workload_id)
        finally:
            self._stopping.pop(workload_id, None)
            # the stop's outcome arrives through watch(); a full reconcile also catches a missed report
            self._last_full_reconcile = -FULL_RECONCILE_EVERY_S
            self.wake()

    # -- scheduling --------------------------------------------------------------------------------

    async def schedule_once(self) -> None:
        started = time.perf_counter()
        async with self.ctx.read() as session:
            snapshot, shown = await build_snapshot(session)
        if not snapshot.pending:
            return
        decisions = await asyncio.to_thread(schedule, snapshot, self.config)
        await self._apply_decisions(decisions, shown)
        self.metrics.observe_cycle(time.perf_counter() - started)

    async def _apply_decisions(self, decisions: Decisions, shown: dict[str, PendingState]) -> None:
        """Admissions and preemptions on their rows; pending reasons written only where they changed, in
        one statement, guarded so that a workload cancelled meanwhile is not touched."""
        changed = [
            {"wid": workload_id, "code": p.code, "reason": p.message, "position": p.position}
            for workload_id, p in decisions.pending.items()
            if shown.get(workload_id) != PendingState(p.code, p.message, p.position)
        ]
        if not (decisions.admit or decisions.preempt or changed):
            return
        async with self.ctx.write() as session:
            if changed:
                table = cast(Table, Workload.__table__)  # Core executemany: no ORM objects to load
                statement = (
                    update(table)
                    .where(table.c.id == bindparam("wid"), table.c.status == WorkloadStatus.PENDING.value)
                    .values(
                        pending_code=bindparam("code"),
                        reason=bindparam("reason"),
                        queue_position=bindparam("position"),
                    )
                )
                await (await session.connection()).execute(statement, changed)
            if decisions.admit or decisions.preempt:
                await self._admit_and_preempt(session, decisions)
        if decisions.admit or decisions.preempt:
            self.wake()

    async def _admit_and_preempt(self, session: AsyncSession, decisions: Decisions) -> None:
        repo = WorkloadRepository(session)
        workloads = await repo.by_ids(
            [a.workload_id for a in decisions.admit] + [p.workload_id for p in decisions.preempt]
        )
        devices = {(n.name, d.index): d.uuid for n in await NodeRepository(session).list() for d in n.devices}
        events = EventRepository(session)
        next_seq = await repo.max_admitted_seq()
        for admission in decisions.admit:
            workload = workloads.get(admission.workload_id)
            if workload is None or workload.status != WorkloadStatus.PENDING or workload.stop_requested:
                continue  # cancelled since the snapshot was taken
            next_seq += 1
            self._admit(workload, admission.placements, devices, next_seq, events)
        for preemption in decisions.preempt:
            victim = workloads.get(preemption.workload_id)
            if victim is None or victim.status not in LIVE_STATUSES or victim.stop_requested:
                continue
            victim.stop_requested = "preempt"
            victim.stop_reason = preemption.reason
            events.add(victim.id, "PreemptionRequested", preemption.reason)

    @staticmethod
    def _admit(
        workload: Workload,
        placements: Sequence[ReplicaPlacement],
        devices: dict[tuple[str, int], str | None],
        admitted_seq: int,
        events: EventRepository,
    ) -> None:
        rows = []
        for index, placement in enumerate(placements):
            uuids = [devices.get((placement.node, i)) for i in placement.gpu_indices]
            rows.append(
                Replica(
                    index=index,
                    node=placement.node,
                    cpu_milli=placement.cpu_milli,
                    memory_mib=placement.memory_mib,
                    gpu_indices=list(placement.gpu_indices),
                    gpu_uuids=[u for u in uuids if u] if all(uuids) else [],
                    gpu_milli=placement.gpu_milli,
                    mig_profile=placement.mig_profile,
                    mig_start=placement.mig_start,
                )
            )
        where = "; ".join(
            f"replica {r.index} on {r.node}" + (f" GPUs {r.gpu_indices}" if r.gpu_indices else "")
            for r in rows
        )
        _transition(workload, WorkloadStatus.ADMITTED, None, events)
        events.add(workload.id, "Placed", where)
        workload.replica_rows.extend(rows)
        workload.admitted_at = _now()
        workload.admitted_seq = admitted_seq
        workload.pending_code = None
        workload.queue_position = None

    # -- launches ----------------------------------------------------------------------------------

    async def launch_admitted(self) -> None:
        async with self.ctx.read() as session:
            ready = [
                w
                for w in await WorkloadRepository(session).with_statuses([WorkloadStatus.ADMITTED])
                if not w.launched and w.stop_requested is None
            ]
            specs = [(w.id, launch_spec(w)) for w in ready]
        for workload_id, spec in specs:
            try:
                await self.backend.start(spec)
            except BackendError as exc:
                await self._launch_failed(workload_id, str(exc))
                continue
            async with self.ctx.write() as session:
                workload = await WorkloadRepository(session).get(workload_id)
                if workload is not None and workload.status in LIVE_STATUSES:
                    workload.launched = True
                    if workload.status == WorkloadStatus.ADMITTED:
                        _transition(workload, WorkloadStatus.STARTING, "launched", EventRepository(session))

    async def roll_services(self) -> None:
        """Services whose spec has a newer revision than they run: the backend rolls them (idempotent,
        in the background; a cheap no-op for those already at their revision)."""
        async with self.ctx.read() as session:
            specs = [
                launch_spec(w)
                for w in await WorkloadRepository(session).with_statuses([WorkloadStatus.RUNNING])
                if w.kind == WorkloadKind.SERVICE
                and (w.spec.get("revision") or 0) > 0
                and not w.stop_requested
            ]
        for spec in specs:
            try:
                await self.backend.roll(spec)
            except BackendError as exc:
                log.warning("could not roll %s to revision %s: %s", spec.workload_id, spec.revision, exc)

    async def _launch_failed(self, workload_id: str, message: str) -> None:
        with contextlib.suppress(Exception):
            await self.backend.stop(workload_id, 0, "launch failed")  # nothing half-started stays behind
        async with self.ctx.write() as session:
            workload = await WorkloadRepository(session).get(workload_id)
            if workload is not None and workload.status == WorkloadStatus.ADMITTED:
                _transition(
                    workload, WorkloadStatus.FAILED, f"could not start: {message}", EventRepository(session)
                )
                workload.finished_at = _now()
