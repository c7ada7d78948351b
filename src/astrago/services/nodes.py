"""Nodes and their GPUs, with what is allocated on them; platform metrics."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from astrago.auth.principal import Principal
from astrago.domain.enums import WorkloadStatus
from astrago.domain.status import LIVE_STATUSES
from astrago.services.context import ServiceContext
from astrago.services.schemas import DeviceOut, NodeOut
from astrago.store.repositories import NodeRepository, WorkloadRepository, WorkspaceRepository


@dataclass(frozen=True)
class PlatformGauges:
    workloads: list[tuple[str, str, int]]  # (status, workspace, count)
    queue_length: int
    gpus_total: int
    gpus_allocated_milli: int


class NodeService:
    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx

    async def list(self, _principal: Principal) -> Sequence[NodeOut]:
        async with self.ctx.read() as session:
            nodes = await NodeRepository(session).list()
            live = await WorkloadRepository(session).with_statuses(LIVE_STATUSES)
        gpu_milli: dict[tuple[str, int], int] = defaultdict(int)
        cpu: dict[str, int] = defaultdict(int)
        memory: dict[str, int] = defaultdict(int)
        for workload in live:
            for replica in workload.replica_rows:
                cpu[replica.node] += replica.cpu_milli
                memory[replica.node] += replica.memory_mib
                for index in replica.gpu_indices:
                    gpu_milli[(replica.node, index)] += replica.gpu_milli
        return [
            NodeOut(
                name=n.name,
                backend=n.backend,
                cpu_milli=n.cpu_milli,
                memory_mib=n.memory_mib,
                schedulable=n.schedulable,
                simulated=n.simulated,
                last_seen_at=n.last_seen_at,
                allocated_cpu_milli=cpu[n.name],
                allocated_memory_mib=memory[n.name],
                devices=[
                    DeviceOut(
                        index=d.index,
                        uuid=d.uuid,
                        model=d.model,
                        product=d.product or d.model,
                        memory_mib=d.memory_mib,
                        simulated=d.simulated,
                        healthy=d.healthy,
                        allocated_milli=gpu_milli[(n.name, d.index)],
                    )
                    for d in n.devices
                ],
            )
            for n in nodes
        ]

    async def gauges(self) -> PlatformGauges:
        async with self.ctx.read() as session:
            names = {w.id: w.name for w in await WorkspaceRepository(session).list()}
            counts = await WorkloadRepository(session).count_by_status_and_workspace()
            nodes = await NodeRepository(session).list()
            live = await WorkloadRepository(session).with_statuses(LIVE_STATUSES)
        allocated = sum(r.gpu_milli * len(r.gpu_indices) for w in live for r in w.replica_rows)
        return PlatformGauges(
            workloads=[(status, names.get(ws, ws), count) for status, ws, count in counts],
            queue_length=sum(c for status, _ws, c in counts if status == WorkloadStatus.PENDING),
            gpus_total=sum(len(n.devices) for n in nodes if n.schedulable),
            gpus_allocated_milli=allocated,
        )
