"""Builds the scheduler's view (`astrago.scheduler.types`) from the store."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from astrago.domain.enums import WorkloadStatus
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
from astrago.services.specs import resource_request
from astrago.store.models import Node, QuotaEntry, Replica, Workload, Workspace
from astrago.store.repositories import NodeRepository, QuotaRepository, WorkspaceRepository


def node_info(node: Node, in_use: Collection[int] = (), fences: Fences = NO_FENCES) -> NodeInfo:
    """The scheduler's view of a node. GPUs held by others are counted, not known by index: they are
    marked on the highest healthy devices that no AstraGo replica holds (`in_use`), so the count is right
    and the platform's own placements stay valid. Fenced (unhealthy) and cordoned GPUs and nodes take no
    new work and say why (`fences`)."""
    fenced = {d.index: note for d in node.devices if (note := fences.gpu_note(node.name, d.index))}
    held = _held_indices(node, set(in_use), set(fenced))
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
            for d in node.devices
        ),
        schedulable=node.schedulable and cordoned is None,
        labels=tuple(sorted(node.labels.items())),
        cordoned=cordoned,
    )


def _held_indices(node: Node, in_use: set[int], fenced: set[int]) -> set[int]:
    if not node.gpus_held_by_others:
        return set()
    free = [
        d.index
        for d in reversed(node.devices)
        if d.healthy and d.index not in in_use and d.index not in fenced
    ]
    return set(free[: node.gpus_held_by_others])


def _request(
    workload_id: str,
    workspace: str,
    spec: dict[str, Any],
    replicas: int,
    priority: int,
    seq: int,
    preemptible: bool,
) -> WorkloadRequest:
    return WorkloadRequest(
        id=workload_id,
        workspace=workspace,
        resources=resource_request(spec),
        replicas=replicas,
        priority=priority,
        submitted_seq=seq,
        preemptible=preemptible,
    )


@dataclass(frozen=True, slots=True)
class PendingState:
    """What a queued workload currently shows, so that only changed reasons are written back."""

    code: str | None
    reason: str | None
    position: int | None


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
    return tuple(node_info(n, in_use[n.name], fences) for n in await NodeRepository(session).list())


_REQUEST_COLUMNS = (
    Workload.id,
    Workspace.name,
    Workload.spec,
    Workload.replicas,
    Workload.priority,
    Workload.seq,
    Workload.preemptible,
)


async def _queued(session: AsyncSession) -> tuple[list[WorkloadRequest], dict[str, PendingState]]:
    query = (
        select(*_REQUEST_COLUMNS, Workload.pending_code, Workload.reason, Workload.queue_position)
        .join(Workspace, Workspace.id == Workload.workspace_id)
        .where(Workload.status == WorkloadStatus.PENDING.value)
        .order_by(Workload.seq)
    )
    requests, shown = [], {}
    for row in await session.execute(query):
        requests.append(_request(*row[:7]))
        shown[row[0]] = PendingState(row[7], row[8], row[9])
    return requests, shown


async def _running(session: AsyncSession) -> list[RunningWorkload]:
    """Workloads holding resources: admitted ones with their placements (still held while stopping)."""
    live = [s.value for s in LIVE_STATUSES]
    workloads = await session.execute(
        select(*_REQUEST_COLUMNS, Workload.admitted_seq, Workload.stop_requested)
        .join(Workspace, Workspace.id == Workload.workspace_id)
        .where(Workload.status.in_(live))
        .order_by(Workload.seq)
    )
    placements: dict[str, list[ReplicaPlacement]] = defaultdict(list)
    replicas = await session.execute(
        select(
            Replica.workload_id,
            Replica.node,
            Replica.cpu_milli,
            Replica.memory_mib,
            Replica.gpu_indices,
            Replica.gpu_milli,
            Replica.mig_profile,
            Replica.mig_start,
        )
        .join(Workload, Workload.id == Replica.workload_id)
        .where(Workload.status.in_(live))
        .order_by(Replica.workload_id, Replica.index)
    )
    for workload_id, node, cpu, memory, gpus, gpu_milli, mig_profile, mig_start in replicas:
        placements[workload_id].append(
            ReplicaPlacement(
                node=node,
                cpu_milli=cpu,
                memory_mib=memory,
                gpu_indices=tuple(gpus),
                gpu_milli=gpu_milli,
                mig_profile=mig_profile,
                mig_start=mig_start,
            )
        )
    return [
        RunningWorkload(
            request=_request(*row[:7]),
            placements=tuple(placements[row[0]]),
            started_seq=row[7] or 0,
            terminating=row[8] is not None,  # being stopped: holds its resources, but is no victim again
        )
        for row in workloads
        if placements.get(row[0])
    ]


async def build_snapshot(session: AsyncSession) -> tuple[Snapshot, dict[str, PendingState]]:
    """The scheduler's snapshot, and what each queued workload shows now.

    Read with plain column queries rather than ORM objects: with thousands of queued workloads this runs
    on every scheduling cycle."""
    pending, shown = await _queued(session)
    running = await _running(session)
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
