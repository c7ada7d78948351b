"""GPU health records and admin cordons: what keeps GPUs and nodes out of new placements."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from astrago.store.models import GpuCordon, GpuHealthRecord, NodeCordon, Replica, Workload


class FenceRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    # -- health
    async def health_records(self, node: str | None = None) -> Sequence[GpuHealthRecord]:
        query = select(GpuHealthRecord).order_by(GpuHealthRecord.node, GpuHealthRecord.gpu_index)
        if node is not None:
            query = query.where(GpuHealthRecord.node == node)
        return (await self.session.scalars(query)).all()

    async def health(self, node: str, gpu_index: int) -> GpuHealthRecord | None:
        return await self.session.get(GpuHealthRecord, (node, gpu_index))

    async def set_health(
        self, node: str, gpu_index: int, *, state: str, cause: str, sticky: bool, at: datetime
    ) -> GpuHealthRecord:
        record = await self.health(node, gpu_index)
        if record is None:
            record = GpuHealthRecord(node=node, gpu_index=gpu_index)
            self.session.add(record)
        record.state, record.cause, record.sticky, record.since = state, cause, sticky, at
        await self.session.flush()
        return record

    async def clear_health(self, node: str, gpu_index: int) -> bool:
        result = await self.session.execute(
            delete(GpuHealthRecord).where(
                GpuHealthRecord.node == node, GpuHealthRecord.gpu_index == gpu_index
            )
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    # -- cordons
    async def node_cordons(self) -> Sequence[NodeCordon]:
        return (await self.session.scalars(select(NodeCordon).order_by(NodeCordon.node))).all()

    async def gpu_cordons(self, node: str | None = None) -> Sequence[GpuCordon]:
        query = select(GpuCordon).order_by(GpuCordon.node, GpuCordon.gpu_index)
        if node is not None:
            query = query.where(GpuCordon.node == node)
        return (await self.session.scalars(query)).all()

    async def node_cordon(self, node: str) -> NodeCordon | None:
        return await self.session.get(NodeCordon, node)

    async def gpu_cordon(self, node: str, gpu_index: int) -> GpuCordon | None:
        return await self.session.get(GpuCordon, (node, gpu_index))

    async def cordon_node(self, node: str, reason: str | None, by: str | None, at: datetime) -> NodeCordon:
        cordon = await self.node_cordon(node)
        if cordon is None:
            cordon = NodeCordon(node=node)
            self.session.add(cordon)
        cordon.reason, cordon.cordoned_by, cordon.cordoned_at = reason, by, at
        await self.session.flush()
        return cordon

    async def cordon_gpu(
        self, node: str, gpu_index: int, reason: str | None, by: str | None, at: datetime
    ) -> GpuCordon:
        cordon = await self.gpu_cordon(node, gpu_index)
        if cordon is None:
            cordon = GpuCordon(node=node, gpu_index=gpu_index)
            self.session.add(cordon)
        cordon.reason, cordon.cordoned_by, cordon.cordoned_at = reason, by, at
        await self.session.flush()
        return cordon

    async def uncordon_node(self, node: str) -> bool:
        result = await self.session.execute(delete(NodeCordon).where(NodeCordon.node == node))
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def uncordon_gpu(self, node: str, gpu_index: int) -> bool:
        result = await self.session.execute(
            delete(GpuCordon).where(GpuCordon.node == node, GpuCordon.gpu_index == gpu_index)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    # -- work on a GPU
    async def workloads_on_gpu(self, node: str, gpu_index: int, statuses: Sequence[str]) -> list[str]:
        """Ids of workloads in `statuses` with a replica holding that GPU (indices are a JSON list, so the
        match is made here rather than in SQL, over the node's replicas only)."""
        rows = await self.session.execute(
            select(Replica.workload_id, Replica.gpu_indices)
            .join(Workload, Workload.id == Replica.workload_id)
            .where(Replica.node == node, Workload.status.in_(statuses))
            .order_by(Replica.workload_id)
        )
        found: list[str] = []
        for workload_id, indices in rows:
            if gpu_index in (indices or []) and workload_id not in found:
                found.append(workload_id)
        return found
