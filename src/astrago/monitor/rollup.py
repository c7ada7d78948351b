"""Downsampling and retention: raw rows older than the raw retention become 5-minute rows, and every row
older than the retention goes. One transaction per batch, so a crash loses nothing and rolls nothing up
twice (the raw rows a rolled-up row replaces are deleted in the same transaction)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from astrago.services.context import ServiceContext
from astrago.store.models import GpuDeviceSample, WorkloadGpuSample
from astrago.store.repositories.gpu_samples import (
    ROLLUP_BATCH,
    ROLLUP_RESOLUTION_S,
    GpuSampleRepository,
    bucket_start,
)

_Row = TypeVar("_Row", WorkloadGpuSample, GpuDeviceSample)


@dataclass(frozen=True, slots=True)
class RollupResult:
    rolled_up: int  # raw rows replaced
    written: int  # 5-minute rows written
    expired: int  # rows removed by retention


@dataclass(slots=True)
class _Totals:
    util_weighted: float = 0.0
    util_seconds: int = 0
    util_peak: float | None = None
    memory_weighted: float = 0.0
    memory_seconds: int = 0
    memory_peak: int | None = None
    seconds: int = 0

    def add(
        self, util: float | None, util_peak: float | None, memory: int | None, memory_peak: int | None, s: int
    ) -> None:
        self.seconds += s
        if util is not None:
            self.util_weighted += util * s
            self.util_seconds += s
            peak = util if util_peak is None else util_peak
            self.util_peak = peak if self.util_peak is None else max(self.util_peak, peak)
        if memory is not None:
            self.memory_weighted += memory * s
            self.memory_seconds += s
            top = memory if memory_peak is None else memory_peak
            self.memory_peak = top if self.memory_peak is None else max(self.memory_peak, top)

    @property
    def util(self) -> float | None:
        return self.util_weighted / self.util_seconds if self.util_seconds else None

    @property
    def memory(self) -> int | None:
        return round(self.memory_weighted / self.memory_seconds) if self.memory_seconds else None


async def roll_up(
    ctx: ServiceContext, now: datetime, raw_retention: timedelta, retention: timedelta
) -> RollupResult:
    cutoff = bucket_start(now - raw_retention, ROLLUP_RESOLUTION_S)
    rolled, written = 0, 0
    for table in (_WORKLOAD_ROWS, _DEVICE_ROWS):
        table_rolled, table_written = await _roll_table(ctx, cutoff, table)
        rolled, written = rolled + table_rolled, written + table_written
    async with ctx.write() as session:
        expired = await GpuSampleRepository(session).delete_older_than(now - retention)
    return RollupResult(rolled_up=rolled, written=written, expired=expired)


@dataclass(frozen=True, slots=True)
class _Table:
    """How one samples table is rolled up: read a batch of raw rows, roll them, add the rollups, delete."""

    read: Callable[[GpuSampleRepository, datetime, int], Awaitable[Sequence[Any]]]
    roll: Callable[[Sequence[Any]], list[Any]]
    add: Callable[[GpuSampleRepository, list[Any]], None]
    delete: Callable[[GpuSampleRepository, list[int]], Awaitable[None]]


async def _roll_table(ctx: ServiceContext, cutoff: datetime, table: _Table) -> tuple[int, int]:
    """Each batch in its own transaction: the rollups are written and the raw rows deleted together."""
    rolled = written = 0
    while True:
        async with ctx.write() as session:
            repository = GpuSampleRepository(session)
            rows = _whole_buckets(await table.read(repository, cutoff, ROLLUP_BATCH))
            if not rows:
                return rolled, written
            rollups = table.roll(rows)
            table.add(repository, rollups)
            await table.delete(repository, [row.id for row in rows])
            rolled, written = rolled + len(rows), written + len(rollups)


def _whole_buckets(rows: Sequence[_Row]) -> Sequence[_Row]:
    """A full batch may end inside a bucket: leave that bucket for the next batch (one row per bucket)."""
    if len(rows) < ROLLUP_BATCH:
        return rows
    last = bucket_start(rows[-1].at, ROLLUP_RESOLUTION_S)
    whole = [row for row in rows if bucket_start(row.at, ROLLUP_RESOLUTION_S) < last]
    return whole or rows


def _roll_workload_rows(rows: Sequence[WorkloadGpuSample]) -> list[WorkloadGpuSample]:
    groups: dict[tuple[str, int, str, int, datetime, str], _Totals] = defaultdict(_Totals)
    for row in rows:
        key = (row.workload_id, row.replica_index, row.node, row.gpu_index, _bucket(row.at), row.source)
        groups[key].add(
            row.gpu_util_percent,
            row.gpu_util_peak_percent,
            row.memory_used_bytes,
            row.memory_peak_bytes,
            row.sampled_s,
        )
    return [
        WorkloadGpuSample(
            workload_id=workload_id,
            replica_index=replica,
            node=node,
            gpu_index=gpu,
            at=at,
            resolution_s=ROLLUP_RESOLUTION_S,
            sampled_s=totals.seconds,
            gpu_util_percent=totals.util,
            memory_used_bytes=totals.memory,
            gpu_util_peak_percent=totals.util_peak,
            memory_peak_bytes=totals.memory_peak,
            source=source,
        )
        for (workload_id, replica, node, gpu, at, source), totals in groups.items()
    ]


def _roll_device_rows(rows: Sequence[GpuDeviceSample]) -> list[GpuDeviceSample]:
    groups: dict[tuple[str, int, datetime, str], list[GpuDeviceSample]] = defaultdict(list)
    for row in rows:
        groups[(row.node, row.gpu_index, _bucket(row.at), row.source)].append(row)
    rolled = []
    for (node, gpu, at, source), members in groups.items():
        totals = _Totals()
        for row in members:
            totals.add(
                row.gpu_util_percent,
                row.gpu_util_peak_percent,
                row.memory_used_bytes,
                row.memory_peak_bytes,
                row.sampled_s,
            )
        last = members[-1]  # temperature, power and health: the bucket's last reading
        rolled.append(
            GpuDeviceSample(
                node=node,
                gpu_index=gpu,
                at=at,
                resolution_s=ROLLUP_RESOLUTION_S,
                sampled_s=totals.seconds,
                gpu_util_percent=totals.util,
                memory_used_bytes=totals.memory,
                memory_total_bytes=last.memory_total_bytes,
                temperature_celsius=last.temperature_celsius,
                power_watts=last.power_watts,
                healthy=all(row.healthy is not False for row in members)
                if any(row.healthy is not None for row in members)
                else None,
                mig_enabled=last.mig_enabled,
                gpu_util_peak_percent=totals.util_peak,
                memory_peak_bytes=totals.memory_peak,
                source=source,
            )
        )
    return rolled


def _bucket(at: datetime) -> datetime:
    return bucket_start(at, ROLLUP_RESOLUTION_S)


_WORKLOAD_ROWS = _Table(
    read=GpuSampleRepository.raw_workload_rows_before,
    roll=_roll_workload_rows,
    add=GpuSampleRepository.add_workload_samples,
    delete=GpuSampleRepository.delete_workload_rows,
)
_DEVICE_ROWS = _Table(
    read=GpuSampleRepository.raw_device_rows_before,
    roll=_roll_device_rows,
    add=GpuSampleRepository.add_device_samples,
    delete=GpuSampleRepository.delete_device_rows,
)
