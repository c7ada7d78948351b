"""Builds the scheduler's view (`astrago.scheduler.types`) from the store."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

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
from astrago.services.quotas import quota_from_entries
from astrago.services.specs import resource_request
from astrago.store.models import Node, QuotaEntry, Workload
from astrago.store.repositories import NodeRepository, QuotaRepository, WorkloadRepository

QUEUED_STATUSES = (WorkloadStatus.PENDING,)


def node_info(node: Node) -> NodeInfo:
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
            )
            for d in node.devices
        ),
        schedulable=node.schedulable,
        labels=tuple(sorted(node.labels.items())),
    )


def workload_request(workload: Workload, workspace_name: str) -> WorkloadRequest:
    return WorkloadRequest(
        id=workload.id,
        workspace=workspace_name,
        resources=resource_request(workload.spec),
        replicas=workload.replicas,
        priority=workload.priority,
        submitted_seq=workload.seq,
        preemptible=workload.preemptible,
    )


def running_workload(workload: Workload, workspace_name: str) -> RunningWorkload:
    return RunningWorkload(
        request=workload_request(workload, workspace_name),
        placements=tuple(
            ReplicaPlacement(
                node=r.node,
                cpu_milli=r.cpu_milli,
                memory_mib=r.memory_mib,
                gpu_indices=tuple(r.gpu_indices),
                gpu_milli=r.gpu_milli,
                mig_profile=r.mig_profile,
                mig_start=r.mig_start,
            )
            for r in workload.replica_rows
        ),
        started_seq=workload.admitted_seq or 0,
    )


async def nodes_view(session: AsyncSession) -> tuple[NodeInfo, ...]:
    return tuple(node_info(n) for n in await NodeRepository(session).list())


async def build_snapshot(session: AsyncSession) -> tuple[Snapshot, Sequence[Workload], Sequence[Workload]]:
    """The snapshot, plus the live and queued workload rows it was built from."""
    workloads = WorkloadRepository(session)
    live = await workloads.with_statuses(LIVE_STATUSES)
    queued = await workloads.with_statuses(QUEUED_STATUSES)
    names = {w.workspace_id: w.workspace.name for w in (*live, *queued)}
    quota_rows: dict[str, list[QuotaEntry]] = defaultdict(list)
    for row in await QuotaRepository(session).all():
        if row.workspace_id in names:  # only teams with work in the snapshot matter to this decision
            quota_rows[row.workspace_id].append(row)
    snapshot = Snapshot(
        nodes=await nodes_view(session),
        running=tuple(running_workload(w, names[w.workspace_id]) for w in live if w.replica_rows),
        pending=tuple(workload_request(w, names[w.workspace_id]) for w in queued),
        quotas=tuple((names[ws], quota_from_entries(rows)) for ws, rows in sorted(quota_rows.items())),
    )
    return snapshot, live, queued
