"""The server's GPU sampler: every interval, read the GPU source, attribute each process to its workload
replica, and store one row per replica and GPU, and one per GPU.

A replica that holds a GPU but runs nothing on it used 0 % of it (a true, measured 0); on a MIG GPU its
utilisation is unknown (None) whatever it runs, because MIG does not report utilisation per process."""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from astrago.domain.status import LIVE_STATUSES
from astrago.gpu.collector import AttributedProcess, Collector
from astrago.gpu.model import GpuDevice, GpuProcess
from astrago.gpu.sources import GpuSource
from astrago.monitor.attribution import Allocation, ProcessAncestry, ReplicaRef, Root, owners_by_allocation
from astrago.monitor.schemas import DeviceReading, ReplicaGpuReading, SampleSource
from astrago.services.context import ServiceContext
from astrago.store.repositories.gpu_samples import (
    DeviceSampleValues,
    GpuSampleRepository,
    WorkloadSampleValues,
    bucket_start,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class CycleResult:
    at: datetime
    replica_rows: int
    device_rows: int
    unattributed_processes: int


class GpuSampler:
    """Samples one node's GPUs. `runners` lists the live replicas' runner processes (local backend)."""

    def __init__(
        self,
        ctx: ServiceContext,
        source: GpuSource,
        node: str,
        runners: Callable[[], Sequence[Root]],
        proc_root: str = "/proc",
    ) -> None:
        self.ctx = ctx
        self.node = node
        self.collector = Collector(source)  # PIDs are attributed to replicas here, not to containers
        self.runners = runners
        self.ancestry = ProcessAncestry(proc_root)
        self.interval_s = ctx.settings.telemetry_interval_s
        self._last_slot: datetime | None = None
        self.kind = _source_kind(source.name)

    async def run(self) -> None:
        await self._resume()
        while True:
            try:
                await self.sample(datetime.now(UTC))
            except Exception:
                log.exception("GPU sampling failed; trying again next interval")
            await asyncio.sleep(until_next_period(self.interval_s))

    async def _resume(self) -> None:
        """After a restart, never write a second row for a period already sampled."""
        async with self.ctx.read() as session:
            self._last_slot = await GpuSampleRepository(session).latest_device_sample_at(self.node)

    async def sample(self, now: datetime) -> CycleResult | None:
        slot = bucket_start(now, self.interval_s)
        if self._last_slot is not None and slot <= self._last_slot:
            return None
        snapshot = await asyncio.to_thread(self.collector.collect)
        if not snapshot.ok:
            return None
        allocations = await self._allocations()
        readings, unattributed = self.attribute(snapshot.devices, snapshot.processes, allocations)
        devices = [self._device_reading(device) for device in snapshot.devices]
        async with self.ctx.write() as session:
            await GpuSampleRepository(session).insert_samples(
                [workload_row(reading, slot, self.interval_s, self.kind) for reading in readings],
                [device_row(reading, slot, self.interval_s, self.kind) for reading in devices],
            )
        self._last_slot = slot
        return CycleResult(slot, len(readings), len(devices), unattributed)

    async def _allocations(self) -> list[Allocation]:
        async with self.ctx.read() as session:
            rows = await GpuSampleRepository(session).live_allocations(
                self.node, [status.value for status in LIVE_STATUSES]
            )
        return [
            Allocation(
                ref=ReplicaRef(row.workload_id, row.replica_index),
                node=row.node,
                gpu_indices=tuple(row.gpu_indices),
                shared=bool(row.mig_profile) or 0 < row.gpu_milli < 1000,
            )
            for row in rows
        ]

    def attribute(
        self,
        devices: Sequence[GpuDevice],
        processes: Sequence[AttributedProcess],
        allocations: Sequence[Allocation],
    ) -> tuple[list[ReplicaGpuReading], int]:
        """One reading per (replica, GPU) of this node: what the replica's processes did there, or 0 where
        it holds the GPU and runs nothing on it. Also the number of processes no replica owns."""
        live = {allocation.ref for allocation in allocations}
        by_replica: dict[tuple[ReplicaRef, int], list[GpuProcess]] = defaultdict(list)
        unattributed = 0
        if self.kind is SampleSource.REPLAY:  # another machine's PIDs: attribute by allocation
            for row in processes:
                owner = owners_by_allocation(self.node, row.process.gpu_index, allocations)
                if owner is None:
                    unattributed += 1
                else:
                    by_replica[(owner, row.process.gpu_index)].append(row.process)
        else:
            roots = [root for root in self.runners() if root.ref in live]
            owners = self.ancestry.owners({row.process.pid for row in processes}, roots)
            for row in processes:
                owner = owners.get(row.process.pid)
                if owner is None:
                    unattributed += 1
                else:
                    by_replica[(owner, row.process.gpu_index)].append(row.process)
        device_by_index = {device.index: device for device in devices}
        for allocation in allocations:  # held and unused: a measured 0
            for gpu in allocation.gpu_indices:
                if gpu in device_by_index:
                    by_replica.setdefault((allocation.ref, gpu), [])
        readings = [
            replica_reading(self.node, ref, gpu, procs, device_by_index.get(gpu))
            for (ref, gpu), procs in by_replica.items()
        ]
        return readings, unattributed

    def _device_reading(self, device: GpuDevice) -> DeviceReading:
        return DeviceReading(
            node=self.node,
            gpu_index=device.index,
            gpu_util_percent=device.utilization_percent,
            memory_used_bytes=None
            if device.memory_used_mib is None
            else device.memory_used_mib * 1024 * 1024,
            memory_total_bytes=device.memory_total_bytes or None,
            temperature_celsius=device.temperature_celsius,
            power_watts=device.power_watts,
            healthy=device.healthy,
            mig_enabled=device.mig_enabled,
        )


def workload_row(
    reading: ReplicaGpuReading, slot: datetime, interval_s: int, source: SampleSource
) -> WorkloadSampleValues:
    """The stored row of one replica's use of one GPU in the period starting at `slot`."""
    return WorkloadSampleValues(
        workload_id=reading.workload_id,
        replica_index=reading.replica_index,
        node=reading.node,
        gpu_index=reading.gpu_index,
        at=slot,
        resolution_s=interval_s,
        sampled_s=interval_s,
        gpu_util_percent=reading.gpu_util_percent,
        memory_used_bytes=reading.memory_used_bytes,
        source=source.value,
    )


def device_row(
    reading: DeviceReading, slot: datetime, interval_s: int, source: SampleSource
) -> DeviceSampleValues:
    """The stored row of one GPU's own reading in the period starting at `slot`."""
    return DeviceSampleValues(
        node=reading.node,
        gpu_index=reading.gpu_index,
        at=slot,
        resolution_s=interval_s,
        sampled_s=interval_s,
        gpu_util_percent=reading.gpu_util_percent,
        memory_used_bytes=reading.memory_used_bytes,
        memory_total_bytes=reading.memory_total_bytes,
        temperature_celsius=reading.temperature_celsius,
        power_watts=reading.power_watts,
        healthy=reading.healthy,
        mig_enabled=reading.mig_enabled,
        source=source.value,
    )


def until_next_period(interval_s: int, now: datetime | None = None) -> float:
    """Seconds to the start of the next sample period (plus a little): waking on period boundaries, not
    `interval` after the last cycle, means a slow cycle never makes the next one skip a period."""
    now = now or datetime.now(UTC)
    return (bucket_start(now, interval_s) + timedelta(seconds=interval_s) - now).total_seconds() + 0.05


def replica_reading(
    node: str, ref: ReplicaRef, gpu: int, processes: Sequence[GpuProcess], device: GpuDevice | None
) -> ReplicaGpuReading:
    """What a replica's processes did on one GPU: utilisation and memory summed (utilisation capped at 100,
    unknown on MIG or where no process has a sample); no process at all is a measured 0."""
    mig = (device is not None and device.mig_enabled) or any(p.mig_key is not None for p in processes)
    shares = [p.sm_utilization_percent for p in processes if p.sm_utilization_percent is not None]
    if mig or (processes and not shares):
        utilisation: float | None = None  # the driver does not say what these processes did
    else:
        utilisation = min(100.0, sum(shares))
    memories = [p.used_memory_bytes for p in processes if p.used_memory_bytes is not None]
    memory = sum(memories) if memories or not processes else None
    return ReplicaGpuReading(
        workload_id=ref.workload_id,
        replica_index=ref.replica_index,
        node=node,
        gpu_index=gpu,
        gpu_util_percent=utilisation,
        memory_used_bytes=memory,
    )


def _source_kind(name: str) -> SampleSource:
    try:
        return SampleSource(name)
    except ValueError:
        return SampleSource.NVML
