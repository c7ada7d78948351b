"""Nodes and their GPUs, with what is allocated on them; platform metrics."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

from astrago.auth.principal import Principal
from astrago.domain.enums import WorkloadStatus, WorkspaceRole
from astrago.domain.gpu_health import GpuHealthState
from astrago.domain.status import LIVE_STATUSES
from astrago.services.context import ServiceContext
from astrago.services.fences import cordon_out, load_fences
from astrago.services.schemas import DeviceOut, DeviceTenantOut, GpuHealthOut, NodeOut
from astrago.store.models import GpuHealthRecord
from astrago.store.repositories import NodeRepository, WorkloadRepository, WorkspaceRepository


def _health_out(record: GpuHealthRecord | None) -> GpuHealthOut:
    if record is None:
        return GpuHealthOut(state=GpuHealthState.HEALTHY)
    return GpuHealthOut(
        state=GpuHealthState(record.state), cause=record.cause, since=record.since, sticky=record.sticky
    )


@dataclass(frozen=True)
class PlatformGauges:
    workloads: list[tuple[str, str, int]]  # (status, workspace, count)
    queue_length: int
    gpus_total: int
    gpus_allocated_milli: int
    # GPU health and cordons: (node, gpu, state, cause) of GPUs not healthy; cordoned GPUs and nodes
    gpu_health: list[tuple[str, int, str, str]] = field(default_factory=list)
    gpu_cordons: list[tuple[str, int]] = field(default_factory=list)
    node_cordons: list[str] = field(default_factory=list)
    # (workload id, workload name, workspace, node, GPU index, milli-GPUs held) of every live workload's GPUs
    workload_gpus: list[tuple[str, str, str, str, int, int]] = field(default_factory=list)
    gpus_fenced: int = 0  # GPUs that take no new work (unhealthy, cordoned, or on a cordoned node)


class NodeService:
    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx

    async def list(self, principal: Principal) -> Sequence[NodeOut]:
        async with self.ctx.read() as session:
            nodes = await NodeRepository(session).list()
            live = await WorkloadRepository(session).with_statuses(LIVE_STATUSES)
            fences = await load_fences(session)
        gpu_milli: dict[tuple[str, int], int] = defaultdict(int)
        tenants: dict[tuple[str, int], list[DeviceTenantOut]] = defaultdict(list)
        hidden: dict[tuple[str, int], int] = defaultdict(int)
        cpu: dict[str, int] = defaultdict(int)
        memory: dict[str, int] = defaultdict(int)
        for workload in live:
            visible = principal.can(workload.workspace_id, WorkspaceRole.VIEWER)
            for replica in workload.replica_rows:
                cpu[replica.node] += replica.cpu_milli
                memory[replica.node] += replica.memory_mib
                for index in replica.gpu_indices:
                    gpu_milli[(replica.node, index)] += replica.gpu_milli
                    if not visible:
                        hidden[(replica.node, index)] += 1
                        continue
                    tenants[(replica.node, index)].append(
                        DeviceTenantOut(
                            workload_id=workload.id,
                            workload_name=workload.name,
                            workspace=workload.workspace.name,
                            replica=replica.index,
                            gpu_milli=replica.gpu_milli,
                            mig_profile=replica.mig_profile,
                        )
                    )
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
                gpus_held_by_others=n.gpus_held_by_others,
                cordon=cordon_out(fences.node_cordons.get(n.name)),
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
                        mig_enabled=d.mig_enabled,
                        tenants=tenants[(n.name, d.index)],
                        other_tenants=hidden[(n.name, d.index)],
                        health=_health_out(fences.health.get((n.name, d.index))),
                        cordon=cordon_out(fences.gpu_cordons.get((n.name, d.index))),
                        fenced=fences.gpu_note(n.name, d.index) is not None or n.name in fences.node_cordons,
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
            allocations = await WorkloadRepository(session).allocations(LIVE_STATUSES)
            fences = await load_fences(session)
            shares = await WorkloadRepository(session).gpu_shares(LIVE_STATUSES)
        allocated = sum(r.gpu_milli * len(r.gpu_indices) for r in allocations)
        fenced = sum(
            1
            for n in nodes
            for d in n.devices
            if n.name in fences.node_cordons or fences.gpu_note(n.name, d.index) is not None
        )
        return PlatformGauges(
            gpu_health=[(r.node, r.gpu_index, r.state, r.cause) for r in fences.health.values()],
            gpu_cordons=sorted(fences.gpu_cordons),
            node_cordons=sorted(fences.node_cordons),
            gpus_fenced=fenced,
            workload_gpus=[
                (wid, name, names.get(ws, ws), node, gpu, milli) for wid, name, ws, node, gpu, milli in shares
            ],
            workloads=[(status, names.get(ws, ws), count) for status, ws, count in counts],
            queue_length=sum(c for status, _ws, c in counts if status == WorkloadStatus.PENDING),
            gpus_total=sum(len(n.devices) for n in nodes if n.schedulable),
            gpus_allocated_milli=allocated,
        )
