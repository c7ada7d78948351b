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
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import cast

from sqlalchemy import Table, bindparam, update
from sqlalchemy.ext.asyncio import AsyncSession

from astrago.backends.base import (
    Backend,
    BackendError,
    BackendUnavailable,
    Capability,
    LaunchSpec,
    NodeInventory,
    OrphanPolicy,
    ReplicaObservation,
)
from astrago.controllers.cleanups import BACKOFF_S, CleanupKind, Cleanups
from astrago.controllers.launch import launch_spec
from astrago.controllers.metrics import ControllerMetrics
from astrago.controllers.outcomes import replica_facts, workload_facts, write_outcome, write_replica
from astrago.controllers.tasks import WorkloadTasks
from astrago.domain.changes import ChangeKind
from astrago.domain.enums import ReplicaState, WorkloadKind, WorkloadStatus
from astrago.domain.gpu_models import canonical_gpu_model
from astrago.domain.lifecycle import (
    ENDED_REPLICA_STATES,
    Observed,
    ReplicaFacts,
    StopRequest,
    WorkloadFacts,
    fold_observation,
    launch_failed,
    launched,
    settle,
    settle_unlaunched,
)
from astrago.domain.status import LIVE_STATUSES, check_transition
from astrago.domain.usage import AllocationChange, allocation_change
from astrago.scheduler import schedule
from astrago.scheduler.types import Decisions, ReplicaPlacement, SchedulerConfig
from astrago.services.context import ServiceContext
from astrago.services.snapshot import PendingState, SnapshotReader
from astrago.store.models import Device, Replica, Workload
from astrago.store.repositories import (
    AllocationRepository,
    ChangeRepository,
    EventRepository,
    LiveRow,
    LogArchiveRepository,
    NodeRepository,
    WorkloadRepository,
)

log = logging.getLogger(__name__)

INVENTORY_EVERY_S = 30.0
PRUNE_LOGS_EVERY_S = 3600.0
FULL_RECONCILE_EVERY_S = 15.0
MIN_REST_S = 0.05
REST_PER_CYCLE = 3.0  # the loop rests this many times as long as a cycle took: at most 1/4 of the event loop
# ... but never longer than this: a cycle's wall time grows with the machine's load (it waits for the
# CPU), and the rest delays every observation and launch, not only scheduling
MAX_REST_S = 1.0
LAUNCH_CONCURRENCY = 8  # backend starts in flight at once
STOP_CONCURRENCY = 16


def _now() -> datetime:
    return datetime.now(UTC)


def _transition(
    workload: Workload, target: WorkloadStatus, reason: str | None, events: EventRepository
) -> None:
    check_transition(WorkloadStatus(workload.status), target)
    workload.status = target.value
    workload.reason = reason
    events.add(workload.id, target.value.capitalize(), reason or target.value.lower())


def _fold(replica: Replica, observation: ReplicaObservation) -> bool:
    """Fold one observation into its replica row; True when the row changed."""
    updated = fold_observation(replica_facts(replica), _observed(observation), _now())
    if updated is None:
        return False
    write_replica(replica, updated)
    return True


def _observed(observation: ReplicaObservation) -> Observed:
    return Observed(
        state=observation.state,
        exit_code=observation.exit_code,
        reason=observation.reason,
        started_at=_at(observation.started_at),
        finished_at=_at(observation.finished_at),
    )


def _at(timestamp: float | None) -> datetime | None:
    return datetime.fromtimestamp(timestamp, UTC) if timestamp else None


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
        self._launches = WorkloadTasks("launch", LAUNCH_CONCURRENCY, on_done=self.wake)
        self._stops = WorkloadTasks("stop", STOP_CONCURRENCY, on_done=self._stop_done)
        self._cleanups = Cleanups(self._clean, self._record_event)
        self._launch_retries: dict[str, tuple[int, float]] = {}  # workload id → (failures, next try)
        self._backend_was_down = False  # a full observation failed as unavailable, none succeeded since
        self.launch_backoff_s = BACKOFF_S
        self._last_inventory = -INVENTORY_EVERY_S
        self._last_full_reconcile = -FULL_RECONCILE_EVERY_S
        self._last_log_prune = -PRUNE_LOGS_EVERY_S
        self._orphans_checked = False
        self._changed = True
        self._last_schedule = -math.inf
        self.schedule_every_s = schedule_every_s
        self._inventory_seen: dict[str, NodeInventory] = {}  # what live clients were last told
        self._snapshots = SnapshotReader()

    def wake(self) -> None:
        """Something changed (a submission, a cancel, a quota, an observation): schedule soon."""
        self._changed = True
        self._wake.set()

    async def run(self) -> None:
        """Run until cancelled.

        Wakes are coalesced: after a cycle the loop rests REST_PER_CYCLE times as long as the cycle took
        (at least MIN_REST_S, at most MAX_REST_S), so a burst of submissions costs a few cycles rather
        than one cycle each, and a cycle shorter than MAX_REST_S / REST_PER_CYCLE takes at most about a
        quarter of the event loop from the API (at 10,000 queued a cycle takes about 0.1 s: a submission
        waits at most about 0.5 s for one)."""
        watcher = asyncio.create_task(self._consume_watch(), name="backend-watch")
        try:
            while True:
                started = time.monotonic()
                await self.cycle()
                await asyncio.sleep(self._rest_after(time.monotonic() - started))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=self.ctx.settings.scheduling_interval_s)
                self._wake.clear()
        finally:
            watcher.cancel()
            self._launches.cancel()
            self._stops.cancel()

    @staticmethod
    def _rest_after(cycle_s: float) -> float:
        return min(MAX_REST_S, max(MIN_REST_S, REST_PER_CYCLE * cycle_s))

    async def drain(self) -> None:
        """Wait for the launches and stops in flight (tests; the loop itself never waits for them)."""
        await self._launches.drain()
        await self._stops.drain()

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
        steps += [self.apply_watched, self.handle_stop_requests, self.retry_cleanups]
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
            except BackendUnavailable as exc:  # an outage (e.g. the Kubernetes API answering 500): one line
                log.warning("controller step %s: %s; retrying next cycle", step.__name__, exc)
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
                    gpus_held_by_others=item.gpus_held_by_others,
                )
            changes = ChangeRepository(session)
            for item in inventory:
                if self._inventory_seen.get(item.name) != item:
                    changes.record(ChangeKind.NODE, item.name)
            for node in await nodes.list():
                if node.name not in reported and node.backend == self.backend.name and node.schedulable:
                    # Keep the row while workloads may still be placed there; the backend reports them lost.
                    node.schedulable = False
                    changes.record(ChangeKind.NODE, node.name)
                    log.warning("node %s disappeared from the %s backend", node.name, self.backend.name)
        self._inventory_seen = {item.name: item for item in inventory}
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
        try:
            observed = await self.backend.observe()
        except BackendUnavailable:
            self._backend_was_down = True
            raise
        if self._backend_was_down:  # the outage is over: delayed starts need not wait out their backoff
            self._backend_was_down = False
            self._backend_is_back()
        await self.apply_observations(observed, complete=True)
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
        them is lost (e.g. its process vanished while the server was down). The live workloads are read
        as columns first; only those the observations change are loaded as rows and written, so a cycle
        where nothing changed writes nothing."""
        by_workload: dict[str, dict[int, ReplicaObservation]] = defaultdict(dict)
        for reported in observations:
            by_workload[reported.workload_id][reported.replica_index] = reported
        async with self.ctx.read() as session:
            live = await WorkloadRepository(session).live_rows(LIVE_STATUSES)
        touched = [
            workload_id
            for workload_id, row in live.items()
            if self._changes(row, by_workload.get(workload_id, {}), complete)
        ]
        if not touched:
            return
        finished: list[tuple[str, int]] = []
        async with self.ctx.write() as session:
            events = EventRepository(session)
            allocations: list[tuple[Workload, AllocationChange]] = []
            for workload in (await WorkloadRepository(session).by_ids(touched)).values():
                if workload.status in LIVE_STATUSES and self._fold_into(
                    workload, by_workload.get(workload.id, {}), complete, events, allocations
                ):
                    finished.append((workload.id, workload.replicas))
            # the usage ledger commits with the replica rows it follows: never lost, never twice
            await AllocationRepository(session).record(allocations)
        for workload_id, replicas in finished:
            if not self.backend.capabilities.supports(Capability.DURABLE_LOGS):
                await self._archive_logs(workload_id, replicas)
            await self._cleanups.attempt(workload_id, CleanupKind.FORGET)
        if finished:
            self.wake()  # resources were released: the queue may move

    def _observation_for(
        self,
        workload_id: str,
        index: int,
        state: str | None,
        seen: dict[int, ReplicaObservation],
        complete: bool,
    ) -> ReplicaObservation | None:
        observation = seen.get(index)
        if observation is None and complete and state not in ENDED_REPLICA_STATES:
            return ReplicaObservation(
                workload_id,
                index,
                ReplicaState.LOST,
                reason=f"the {self.backend.name} backend no longer knows this replica",
            )
        return observation

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

    def _changes(self, row: LiveRow, seen: dict[int, ReplicaObservation], complete: bool) -> bool:
        """Whether the observations change this workload (a pure check on its columns)."""
        if not row.launched:
            return bool(seen)  # started just before a crash: to be adopted
        replicas = []
        changed = False
        for replica in row.replicas:
            facts = ReplicaFacts(
                index=replica.index,
                state=ReplicaState(replica.state) if replica.state else None,
                exit_code=replica.exit_code,
                reason=replica.reason,
                started_at=replica.started_at,
                finished_at=replica.finished_at,
            )
            observation = self._observation_for(row.id, replica.index, replica.state, seen, complete)
            folded = fold_observation(facts, _observed(observation), _now()) if observation else None
            changed |= folded is not None
            replicas.append(folded or facts)
        if not (changed or complete):
            return False
        stop = StopRequest(row.stop_requested) if row.stop_requested else None
        facts_now = WorkloadFacts(WorkloadStatus(row.status), tuple(replicas), stop, row.stop_reason)
        return changed or settle(facts_now).changed

    def _fold_into(
        self,
        workload: Workload,
        seen: dict[int, ReplicaObservation],
        complete: bool,
        events: EventRepository,
        allocations: list[tuple[Workload, AllocationChange]],
    ) -> bool:
        """Fold into the row and settle its status; True when it ended (its backend objects can go).
        Replicas that start or end add their allocation change to `allocations`."""
        if seen and not workload.launched:
            workload.launched = True  # started just before a crash: adopt instead of starting again
        if not workload.launched:
            return False
        changed = False
        for replica in workload.replica_rows:
            observation = self._observation_for(workload.id, replica.index, replica.state, seen, complete)
            if observation is None:
                continue
            before = replica_facts(replica)
            if _fold(replica, observation):
                changed = True
                allocation = allocation_change(before, replica_facts(replica), _now())
                if allocation is not None:
                    allocations.append((workload, allocation))
        if not (changed or complete):
            return False
        outcome = settle(workload_facts(workload))
        write_outcome(workload, outcome, events, _now())
        return outcome.finished or outcome.requeue

    # -- cleanups ----------------------------------------------------------------------------------

    async def retry_cleanups(self) -> None:
        await self._cleanups.retry_due()

    async def _clean(self, workload_id: str, kind: CleanupKind) -> None:
        if kind is CleanupKind.FORGET:
            await self.backend.forget(workload_id)
        else:
            await self.backend.stop(workload_id, 0, "launch failed")

    async def _record_event(self, workload_id: str, kind: str, reason: str) -> None:
        async with self.ctx.write() as session:
            EventRepository(session).add(workload_id, kind, reason)

    # -- stops -------------------------------------------------------------------------------------

    async def handle_stop_requests(self) -> None:
        """Only workloads asked to stop are read (usually none): unlaunched ones settle at once, launched
        ones get a stop task each (bounded; the stop's outcome comes back as observations)."""
        async with self.ctx.read() as session:
            asked = await WorkloadRepository(session).stop_requested(LIVE_STATUSES)
        unlaunched = [w.id for w in asked if not w.launched]
        for workload in asked:
            if workload.launched and workload.id not in self._stops:
                reason = workload.stop_reason or workload.stop_requested or "stop"
                self._stops.spawn(workload.id, partial(self._stop, workload.id, reason))
        if unlaunched:
            await self._settle_unlaunched(unlaunched)

    async def _settle_unlaunched(self, workload_ids: list[str]) -> None:
        async with self.ctx.write() as session:
            events = EventRepository(session)
            for workload in (await WorkloadRepository(session).by_ids(workload_ids)).values():
                # read again in the write transaction: a launch may have finished meanwhile
                if workload.status in LIVE_STATUSES and not workload.launched:
                    outcome = settle_unlaunched(workload_facts(workload, with_replicas=False))
                    write_outcome(workload, outcome, events, _now())

    async def _stop(self, workload_id: str, reason: str) -> None:
        await self.backend.stop(workload_id, self.ctx.settings.stop_grace_s, reason)

    def _stop_done(self) -> None:
        # the stop's outcome arrives through watch(); a full reconcile also catches a missed report
        self._last_full_reconcile = -FULL_RECONCILE_EVERY_S
        self.wake()

    # -- scheduling --------------------------------------------------------------------------------

    async def schedule_once(self) -> None:
        started = time.perf_counter()
        async with self.ctx.read() as session:
            snapshot, shown = await self._snapshots.read(session)
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
            if (now := shown.get(workload_id)) is None
            or now.position != p.position
            or now.code != p.code
            or now.reason != p.message
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
                # live clients see why a workload waits and where it stands in the queue
                await ChangeRepository(session).record_many(
                    ChangeKind.WORKLOAD, [str(c["wid"]) for c in changed]
                )
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
        """Each admitted workload gets a launch task (at most LAUNCH_CONCURRENCY at once); the loop moves
        on at once, so a slow start (a Kubernetes start may wait minutes for an old run's objects) holds
        up nothing else."""
        async with self.ctx.read() as session:
            now = time.monotonic()
            ready = [
                w
                for w in await WorkloadRepository(session).launchable()
                if w.id not in self._launches and self._launch_retries.get(w.id, (0, 0.0))[1] <= now
            ]
            volumes_dir = self.ctx.settings.effective_volumes_dir
            specs = [launch_spec(w, volumes_dir) for w in ready]
        for spec in specs:
            self._launches.spawn(spec.workload_id, partial(self._launch, spec))

    async def _launch(self, spec: LaunchSpec) -> None:
        try:
            await self.backend.start(spec)
        except BackendUnavailable as exc:
            await self._launch_unavailable(spec.workload_id, str(exc))
            return
        except BackendError as exc:
            await self._launch_failed(spec.workload_id, str(exc))
            return
        self._launch_retries.pop(spec.workload_id, None)
        self._backend_is_back()
        async with self.ctx.write() as session:
            workload = await WorkloadRepository(session).get(spec.workload_id)
            if workload is not None and workload.status in LIVE_STATUSES:
                workload.launched = True
                outcome = launched(WorkloadStatus(workload.status))
                write_outcome(workload, outcome, EventRepository(session), _now())

    def _backend_is_back(self) -> None:
        """The backend answers again (a start went through, or a full observation after a failed one): the
        starts waiting out
        their backoff (up to minutes after a long outage) are tried now rather than when each one's delay
        ends. Their failure counts stay, so a backend that fails again puts them back on their growing
        delays."""
        if not self._launch_retries:
            return
        now = time.monotonic()
        waiting = {w: (failures, now) for w, (failures, at) in self._launch_retries.items() if at > now}
        if waiting:
            self._launch_retries.update(waiting)
            self.wake()

    async def _launch_unavailable(self, workload_id: str, message: str) -> None:
        """The backend failed on its side (e.g. the Kubernetes API answered 500 or timed out): the workload
        stays admitted, holding its place, and the start is tried again after a growing delay. Starts are
        idempotent, so whatever the failed try created is adopted, never created twice."""
        failures = self._launch_retries.get(workload_id, (0, 0.0))[0] + 1
        delay = self.launch_backoff_s[min(failures, len(self.launch_backoff_s)) - 1]
        self._launch_retries[workload_id] = (failures, time.monotonic() + delay)
        log.warning("workload %s: backend unavailable (%s); retrying in %gs", workload_id, message, delay)
        await self._record_event(
            workload_id, "StartDelayed", f"the backend is unavailable: {message}; trying again in {delay:g}s"
        )

    async def roll_services(self) -> None:
        """Services whose spec has a newer revision than they run: the backend rolls them (idempotent,
        in the background; a cheap no-op for those already at their revision)."""
        async with self.ctx.read() as session:
            specs = [
                launch_spec(w, self.ctx.settings.effective_volumes_dir)
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
        # nothing half-started stays behind: stopped now, or retried until it is
        await self._cleanups.attempt(workload_id, CleanupKind.STOP)
        async with self.ctx.write() as session:
            workload = await WorkloadRepository(session).get(workload_id)
            if workload is not None:
                outcome = launch_failed(WorkloadStatus(workload.status), message)
                write_outcome(workload, outcome, EventRepository(session), _now())
