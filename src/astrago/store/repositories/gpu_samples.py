"""GPU telemetry rows: per-workload-replica and per-GPU samples, and their downsampling.

Rows of the two resolutions never overlap in time (a 5-minute row replaces the raw rows of its bucket when
they expire), so aggregates read both, weighted by `sampled_s`."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TypedDict

from sqlalchemy import case, delete, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from astrago.domain.usage import MeasuredSample
from astrago.store.models import GpuDeviceSample, Replica, Workload, WorkloadGpuSample
from astrago.store.repositories.usage_hours import UsageHourRepository

ROLLUP_RESOLUTION_S = 300  # rolled-up rows; anything finer is raw
ROLLUP_BATCH = 20_000  # raw rows rolled up per query, so one rollup never holds a huge result in memory


@dataclass(frozen=True, slots=True)
class UtilisationTotals:
    """Sums over a workload's rows in a period (None where no row had the value)."""

    samples: int
    util_seconds: float  # sum(util × sampled_s) over rows with a utilisation
    util_sampled_s: int  # sum(sampled_s) over those rows
    util_peak: float | None
    memory_byte_seconds: float
    memory_sampled_s: int
    memory_peak: int | None
    sources: tuple[str, ...]


class WorkloadSampleValues(TypedDict):
    workload_id: str
    replica_index: int
    node: str
    gpu_index: int
    at: datetime
    resolution_s: int
    sampled_s: int
    gpu_util_percent: float | None
    memory_used_bytes: int | None
    source: str


class DeviceSampleValues(TypedDict):
    node: str
    gpu_index: int
    at: datetime
    resolution_s: int
    sampled_s: int
    gpu_util_percent: float | None
    memory_used_bytes: int | None
    memory_total_bytes: int | None
    temperature_celsius: float | None
    power_watts: float | None
    healthy: bool | None
    mig_enabled: bool
    source: str


@dataclass(frozen=True, slots=True)
class AllocationRow:
    """Where one live replica runs and what GPUs it holds (plain columns, no ORM objects)."""

    workload_id: str
    replica_index: int
    node: str
    gpu_indices: list[int]
    gpu_milli: int
    mig_profile: str | None


class GpuSampleRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def insert_samples(
        self, workload_rows: Sequence[WorkloadSampleValues], device_rows: Sequence[DeviceSampleValues]
    ) -> None:
        """One cycle's rows in two multi-row inserts (the sampler's hot path: no ORM objects). The usage
        ledger's used GPU time is added to in this transaction, so every writer of samples keeps it and a
        crash never counts a sample twice or loses it."""
        if workload_rows:
            await self.session.execute(insert(WorkloadGpuSample), list(workload_rows))
            await UsageHourRepository(self.session).add_samples(
                [
                    MeasuredSample(
                        row["workload_id"],
                        row["replica_index"],
                        row["at"],
                        row["sampled_s"],
                        row["gpu_util_percent"],
                    )
                    for row in workload_rows
                ]
            )
        if device_rows:
            await self.session.execute(insert(GpuDeviceSample), list(device_rows))

    async def live_workload_replicas(self, statuses: Iterable[str]) -> dict[str, int]:
        """Live workloads' ids and replica counts."""
        rows = await self.session.execute(
            select(Workload.id, Workload.replicas).where(Workload.status.in_(list(statuses)))
        )
        return {workload_id: replicas for workload_id, replicas in rows}

    async def live_allocations(self, node: str, statuses: Iterable[str]) -> list[AllocationRow]:
        rows = await self.session.execute(
            select(
                Replica.workload_id,
                Replica.index,
                Replica.node,
                Replica.gpu_indices,
                Replica.gpu_milli,
                Replica.mig_profile,
            )
            .join(Workload, Workload.id == Replica.workload_id)
            .where(Replica.node == node, Workload.status.in_(list(statuses)))
        )
        return [AllocationRow(*row) for row in rows]

    def add_workload_samples(self, rows: Iterable[WorkloadGpuSample]) -> None:
        self.session.add_all(list(rows))

    def add_device_samples(self, rows: Iterable[GpuDeviceSample]) -> None:
        self.session.add_all(list(rows))

    async def workload_totals(self, workload_id: str, since: datetime, until: datetime) -> UtilisationTotals:
        window = (
            WorkloadGpuSample.workload_id == workload_id,
            WorkloadGpuSample.at >= since,
            WorkloadGpuSample.at < until,
        )
        util = WorkloadGpuSample.gpu_util_percent
        memory = WorkloadGpuSample.memory_used_bytes
        seconds = WorkloadGpuSample.sampled_s
        row = (
            await self.session.execute(
                select(
                    func.count(),
                    func.sum(util * seconds),
                    func.sum(case((util.is_not(None), seconds), else_=0)),
                    func.max(func.coalesce(WorkloadGpuSample.gpu_util_peak_percent, util)),
                    func.sum(memory * seconds),
                    func.sum(case((memory.is_not(None), seconds), else_=0)),
                    func.max(func.coalesce(WorkloadGpuSample.memory_peak_bytes, memory)),
                ).where(*window)
            )
        ).one()
        sources = (
            await self.session.scalars(select(WorkloadGpuSample.source).where(*window).distinct())
        ).all()
        return UtilisationTotals(
            samples=int(row[0] or 0),
            util_seconds=float(row[1] or 0.0),
            util_sampled_s=int(row[2] or 0),
            util_peak=None if row[3] is None else float(row[3]),
            memory_byte_seconds=float(row[4] or 0.0),
            memory_sampled_s=int(row[5] or 0),
            memory_peak=None if row[6] is None else int(row[6]),
            sources=tuple(sorted(sources)),
        )

    async def workload_rows(
        self, workload_id: str, since: datetime, until: datetime
    ) -> Sequence[WorkloadGpuSample]:
        return (
            await self.session.scalars(
                select(WorkloadGpuSample)
                .where(
                    WorkloadGpuSample.workload_id == workload_id,
                    WorkloadGpuSample.at >= since,
                    WorkloadGpuSample.at < until,
                )
                .order_by(WorkloadGpuSample.at, WorkloadGpuSample.id)
            )
        ).all()

    async def recent_workload_rows(self, since: datetime) -> Sequence[WorkloadGpuSample]:
        """Raw rows from `since` on, for every workload (the live listing)."""
        return (
            await self.session.scalars(
                select(WorkloadGpuSample)
                .where(WorkloadGpuSample.at >= since)
                .order_by(WorkloadGpuSample.at, WorkloadGpuSample.id)
            )
        ).all()

    async def device_rows(self, node: str, since: datetime, until: datetime) -> Sequence[GpuDeviceSample]:
        return (
            await self.session.scalars(
                select(GpuDeviceSample)
                .where(GpuDeviceSample.node == node, GpuDeviceSample.at >= since, GpuDeviceSample.at < until)
                .order_by(GpuDeviceSample.at, GpuDeviceSample.id)
            )
        ).all()

    async def latest_device_sample_at(self, node: str) -> datetime | None:
        return await self.session.scalar(
            select(func.max(GpuDeviceSample.at)).where(GpuDeviceSample.node == node)
        )

    async def latest_device_rows(self, node: str) -> Sequence[GpuDeviceSample]:
        """The newest row of each GPU of `node`."""
        newest = (
            select(GpuDeviceSample.gpu_index, func.max(GpuDeviceSample.at).label("at"))
            .where(GpuDeviceSample.node == node)
            .group_by(GpuDeviceSample.gpu_index)
            .subquery()
        )
        rows = (
            await self.session.scalars(
                select(GpuDeviceSample)
                .join(
                    newest,
                    (GpuDeviceSample.gpu_index == newest.c.gpu_index) & (GpuDeviceSample.at == newest.c.at),
                )
                .where(GpuDeviceSample.node == node)
                .order_by(GpuDeviceSample.gpu_index, GpuDeviceSample.id.desc())
            )
        ).all()
        latest: dict[int, GpuDeviceSample] = {}
        for row in rows:
            latest.setdefault(row.gpu_index, row)
        return list(latest.values())

    # -- downsampling and retention --------------------------------------------------------------------

    async def raw_workload_rows_before(self, cutoff: datetime, limit: int) -> Sequence[WorkloadGpuSample]:
        return (
            await self.session.scalars(
                select(WorkloadGpuSample)
                .where(WorkloadGpuSample.at < cutoff, WorkloadGpuSample.resolution_s < ROLLUP_RESOLUTION_S)
                .order_by(WorkloadGpuSample.at, WorkloadGpuSample.id)
                .limit(limit)
            )
        ).all()

    async def raw_device_rows_before(self, cutoff: datetime, limit: int) -> Sequence[GpuDeviceSample]:
        return (
            await self.session.scalars(
                select(GpuDeviceSample)
                .where(GpuDeviceSample.at < cutoff, GpuDeviceSample.resolution_s < ROLLUP_RESOLUTION_S)
                .order_by(GpuDeviceSample.at, GpuDeviceSample.id)
                .limit(limit)
            )
        ).all()

    async def delete_workload_rows(self, ids: Sequence[int]) -> None:
        for chunk in _chunks(ids):
            await self.session.execute(delete(WorkloadGpuSample).where(WorkloadGpuSample.id.in_(chunk)))

    async def delete_device_rows(self, ids: Sequence[int]) -> None:
        for chunk in _chunks(ids):
            await self.session.execute(delete(GpuDeviceSample).where(GpuDeviceSample.id.in_(chunk)))

    async def delete_older_than(self, cutoff: datetime) -> int:
        """Remove every row (of any resolution) that starts before `cutoff`; the number removed."""
        removed = 0
        for model in (WorkloadGpuSample, GpuDeviceSample):
            result = await self.session.execute(delete(model).where(model.at < cutoff))
            removed += int(getattr(result, "rowcount", 0) or 0)
        return removed

    async def count(self, resolution_s: int | None = None) -> int:
        query = select(func.count()).select_from(WorkloadGpuSample)
        if resolution_s is not None:
            query = query.where(WorkloadGpuSample.resolution_s == resolution_s)
        return int(await self.session.scalar(query) or 0)


def _chunks(ids: Sequence[int], size: int = 500) -> Iterable[Sequence[int]]:
    for start in range(0, len(ids), size):
        yield ids[start : start + size]


def bucket_start(at: datetime, seconds: int) -> datetime:
    """The start of the `seconds`-long bucket holding `at` (buckets aligned on the Unix epoch)."""
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    offset = int((at - epoch).total_seconds()) // seconds * seconds
    return epoch + timedelta(seconds=offset)
