"""Builds the scheduler's view (`astrago.scheduler.types`) from the store."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from functools import lru_cache

from sqlalchemy.ext.asyncio import AsyncSession

from astrago.domain.status import LIVE_STATUSES
from astrago.scheduler.types import (
    GpuInfo,
    NodeInfo,
    ReplicaPlacement,
    RunningWorkload,
    Snapshot,
    WorkloadRequest,
)
from astrago.services.fences import NO_FENCES, Fences, load_fences
from astrago.services.quotas import quota_from_entries
from astrago.services.specs import resource_request_from_json
from astrago.store.models import QuotaEntry
from astrago.store.repositories import QuotaRepository, WorkspaceRepository
from astrago.store.repositories.scheduling import (
    DeviceRow,
    HoldingRow,
    NodeRow,
    PlacedReplicaRow,
    QueuedRow,
    SchedulingRepository,
)


def node_info(
    node: NodeRow, devices: Sequence[DeviceRow], in_use: Collection[int] = (), fences: Fences = NO_FENCES
) -> NodeInfo:
    """The scheduler's view of a node. GPUs held by others are counted, not known by index: they are
    marked on the highest healthy devices that no AstraGo replica holds (`in_use`), so the count is right
    and the platform's own placements stay valid. Fenced (unhealthy) and cordoned GPUs and nodes take no
    new work and say why (`fences`)."""
    fenced = {d.index: note for d in devices if (note := fences.gpu_note(node.name, d.index))}
    held = _held_indices(node, devices, set(in_use), set(fenced))
    cordoned = fences.node_note(node.name)
    return NodeInfo(
        name=node.name,
        cpu_milli=node.cpu_milli,
        memory_mib=node.memory_mib,
        gpus=tuple(
            GpuInfo(
                index=d.index,
                model=d.model,
                memory_mib=d.memory_mib,
                uuid=d.uuid,
                healthy=d.healthy,
                mig_enabled=d.mig_enabled,
                held_by_others=d.index in held,
                fenced=fenced.get(d.index),
            )
            for d in devices
        ),
        schedulable=node.schedulable and cordoned is None,
        labels=tuple(sorted(node.labels.items())),
        cordoned=cordoned,
    )


def _held_indices(
    node: NodeRow, devices: Sequence[DeviceRow], in_use: set[int], fenced: set[int]
) -> set[int]:
    if not node.gpus_held_by_others:
        return set()
    free = [
        d.index for d in reversed(devices) if d.healthy and d.index not in in_use and d.index not in fenced
    ]
    return set(free[: node.gpus_held_by_others])


@dataclass(frozen=True, slots=True)
class PendingState:
    """What a queued workload currently shows, so that only changed reasons are written back."""

    code: str | None
    reason: str | None
    position: int | None


def _placement(replica: PlacedReplicaRow) -> ReplicaPlacement:
    return ReplicaPlacement(
        node=replica.node,
        cpu_milli=replica.cpu_milli,
        memory_mib=replica.memory_mib,
        gpu_indices=_gpu_indices(replica.gpu_indices),
        gpu_milli=replica.gpu_milli,
        mig_profile=replica.mig_profile,
        mig_start=replica.mig_start,
    )


@lru_cache(maxsize=1024)
def _gpu_indices(stored: str) -> tuple[int, ...]:
    """A replica's GPU indices from their stored JSON text ("[0, 1]"): a handful of distinct texts."""
    return tuple(int(index) for index in json.loads(stored))


async def nodes_view(
    session: AsyncSession, running: Sequence[RunningWorkload] = (), *, with_fences: bool = True
) -> tuple[NodeInfo, ...]:
    """The scheduler's nodes. `with_fences=False` gives the capacity alone (fences and cordons are
    temporary: a submission is not refused for them, it waits with a reason that names them)."""
    in_use: dict[str, set[int]] = defaultdict(set)
    for workload in running:
        for placement in workload.placements:
            in_use[placement.node].update(placement.gpu_indices)
    fences = await load_fences(session) if with_fences else NO_FENCES
    return tuple(
        node_info(node, devices, in_use[node.name], fences)
        for node, devices in await SchedulingRepository(session).nodes()
    )


class SnapshotReader:
    """Reads the scheduler's snapshot from the store, every row on every cycle (the store stays the truth;
    a restarted server starts with an empty reader and reads the same).

    Between cycles it keeps the objects it built for each queued or running workload and reuses those whose
    row has not changed: at 10,000 queued, building 10,000 requests and shown states again on every cycle,
    and collecting them as garbage, cost more than reading the rows."""

    def __init__(self) -> None:
        self._requests: dict[str, WorkloadRequest] = {}
        # each queued and each running workload's rows as last read, with what was built from them
        self._queue: dict[str, tuple[QueuedRow, WorkloadRequest, PendingState]] = {}
        self._holding: dict[str, tuple[HoldingRow, list[PlacedReplicaRow], RunningWorkload]] = {}

    async def read(self, session: AsyncSession) -> tuple[Snapshot, dict[str, PendingState]]:
        """The scheduler's snapshot, and what each queued workload shows now."""
        requests: dict[str, WorkloadRequest] = {}
        pending, shown = await self._queued(session, requests)
        running = await self._running(session, requests)
        self._requests = requests  # only what this cycle read: finished workloads are let go
        workspaces = {r.workspace for r in pending} | {r.request.workspace for r in running}
        quota_rows: dict[str, list[QuotaEntry]] = defaultdict(list)
        names = {w.id: w.name for w in await WorkspaceRepository(session).list()}
        for row in await QuotaRepository(session).all():
            if names.get(row.workspace_id) in workspaces:  # only teams with work in the snapshot matter
                quota_rows[names[row.workspace_id]].append(row)
        snapshot = Snapshot(
            nodes=await nodes_view(session, running),
            running=tuple(running),
            pending=tuple(pending),
            quotas=tuple((name, quota_from_entries(rows)) for name, rows in sorted(quota_rows.items())),
        )
        return snapshot, shown

    async def _queued(
        self, session: AsyncSession, requests: dict[str, WorkloadRequest]
    ) -> tuple[list[WorkloadRequest], dict[str, PendingState]]:
        pending: list[WorkloadRequest] = []
        shown: dict[str, PendingState] = {}
        before, queue = self._queue, {}
        for row in await SchedulingRepository(session).queued():
            known = before.get(row.id)
            if known is None or known[0] != row:  # one comparison of every column read
                state = known[2] if known is not None else None
                if state is None or (state.code, state.reason, state.position) != row[-3:]:
                    state = PendingState(row.pending_code, row.reason, row.queue_position)
                known = (row, self._request(row), state)
            queue[row.id] = known
            requests[row.id] = known[1]
            pending.append(known[1])
            shown[row.id] = known[2]
        self._queue = queue
        return pending, shown

    async def _running(
        self, session: AsyncSession, requests: dict[str, WorkloadRequest]
    ) -> list[RunningWorkload]:
        """Workloads holding resources: admitted ones with their placements (still held while stopping)."""
        repo = SchedulingRepository(session)
        replicas: dict[str, list[PlacedReplicaRow]] = defaultdict(list)
        for replica in await repo.placed_replicas(LIVE_STATUSES):
            replicas[replica.workload_id].append(replica)
        before, holding = self._holding, {}
        running = []
        for row in await repo.holding(LIVE_STATUSES):
            placed = replicas.get(row.id)
            if not placed:
                continue
            known = before.get(row.id)
            if known is None or known[0] != row or known[1] != placed:
                workload = RunningWorkload(
                    request=self._request(row),
                    placements=tuple(_placement(replica) for replica in placed),
                    started_seq=row.admitted_seq or 0,
                    # being stopped: holds its resources, but is no victim again
                    terminating=row.stop_requested is not None,
                )
                known = (row, placed, workload)
            holding[row.id] = known
            requests[row.id] = known[2].request
            running.append(known[2])
        self._holding = holding
        return running

    def _request(self, row: QueuedRow | HoldingRow) -> WorkloadRequest:
        """The workload's request: last cycle's object when every field read is the same."""
        resources = resource_request_from_json(row.resources)  # one object per distinct text
        known = self._requests.get(row.id)
        if (
            known is not None
            and (known.resources is resources or known.resources == resources)
            and known.workspace == row.workspace
            and known.replicas == row.replicas
            and known.priority == row.priority
            and known.submitted_seq == row.seq
            and known.preemptible == row.preemptible
        ):
            return known
        return WorkloadRequest(
            id=row.id,
            workspace=row.workspace,
            resources=resources,
            replicas=row.replicas,
            priority=row.priority,
            submitted_seq=row.seq,
            preemptible=row.preemptible,
        )


async def build_snapshot(session: AsyncSession) -> tuple[Snapshot, dict[str, PendingState]]:
    """The scheduler's snapshot, and what each queued workload shows now (a one-off read; the controller
    keeps a `SnapshotReader` across cycles).

    Read with plain column queries rather than ORM objects, and only the resources of each spec: with
    thousands of queued workloads this runs on every scheduling cycle."""
    return await SnapshotReader().read(session)
