"""The usage ledger's used GPU time per allocation interval and UTC hour: added to as the telemetry writes
its samples (in that transaction), read by the usage reports summed per interval and local day."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from datetime import datetime, timedelta
from math import ceil
from typing import cast

from sqlalchemy import ColumnElement, Table, bindparam, case, func, insert, literal, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from astrago.domain.usage import (
    EPOCH,
    SECONDS_PER_HOUR,
    DayUsage,
    HourOffsets,
    MeasuredSample,
    Run,
    Window,
    hourly_usage,
    usage_after_end,
)
from astrago.store.models import AllocationInterval, AllocationUsageHour, WorkloadGpuSample

IN_CHUNK = 500  # values in one IN list (SQLite bounds a statement's parameters)
MAX_SAMPLE_S = 300  # the longest a telemetry row covers (a 5-minute rollup)

_hours = cast(Table, AllocationUsageHour.__table__)
_intervals = cast(Table, AllocationInterval.__table__)
_samples = cast(Table, WorkloadGpuSample.__table__)


class UsageHourRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add_samples(self, samples: Sequence[MeasuredSample]) -> None:
        """Add what the samples measured to their intervals' hours (in the caller's transaction, the one
        that writes the samples: a sample is counted once, or not at all if that transaction fails)."""
        measured = [sample for sample in samples if sample.util_percent is not None]
        if not measured:
            return
        runs = await self._runs({s.workload_id for s in measured}, min(s.at for s in measured))
        usage = hourly_usage(measured, runs)
        if not usage:
            return
        existing = await self._existing(usage.keys())
        updates = [
            {"b_interval": i, "b_hour": h, "b_measured": u.measured_s, "b_util": u.util_percent_seconds}
            for (i, h), u in usage.items()
            if (i, h) in existing
        ]
        inserts = [
            {
                "interval_id": i,
                "epoch_hour": h,
                "measured_s": u.measured_s,
                "util_percent_seconds": u.util_percent_seconds,
            }
            for (i, h), u in usage.items()
            if (i, h) not in existing
        ]
        if updates:
            await self.session.execute(
                update(_hours)
                .where(
                    _hours.c.interval_id == bindparam("b_interval"),
                    _hours.c.epoch_hour == bindparam("b_hour"),
                )
                .values(
                    measured_s=_hours.c.measured_s + bindparam("b_measured"),
                    util_percent_seconds=_hours.c.util_percent_seconds + bindparam("b_util"),
                ),
                updates,
            )
        if inserts:
            await self.session.execute(insert(_hours), inserts)

    async def take_back_after_end(self, runs: Sequence[Run]) -> None:
        """Runs just closed: take back what their samples counted past the recorded end (in the closing
        transaction). Samples are at most MAX_SAMPLE_S long, so only those that start that close to the
        end are read."""
        for run in runs:
            if run.ended_at is None:
                continue
            rows = await self.session.execute(
                select(
                    _samples.c.workload_id,
                    _samples.c.replica_index,
                    _samples.c.at,
                    _samples.c.sampled_s,
                    _samples.c.gpu_util_percent,
                ).where(
                    _samples.c.workload_id == run.workload_id,
                    _samples.c.replica_index == run.replica_index,
                    _samples.c.at >= max(run.started_at, run.ended_at - timedelta(seconds=MAX_SAMPLE_S)),
                )
            )
            excess = usage_after_end([MeasuredSample(*row) for row in rows], run)
            if excess:
                await self.session.execute(
                    update(_hours)
                    .where(
                        _hours.c.interval_id == bindparam("b_interval"),
                        _hours.c.epoch_hour == bindparam("b_hour"),
                    )
                    .values(
                        measured_s=_hours.c.measured_s - bindparam("b_measured"),
                        util_percent_seconds=_hours.c.util_percent_seconds - bindparam("b_util"),
                    ),
                    [
                        {
                            "b_interval": i,
                            "b_hour": h,
                            "b_measured": u.measured_s,
                            "b_util": u.util_percent_seconds,
                        }
                        for (i, h), u in excess.items()
                    ],
                )

    async def _runs(self, workload_ids: Collection[str], since: datetime) -> list[Run]:
        runs: list[Run] = []
        ids = sorted(workload_ids)
        for start in range(0, len(ids), IN_CHUNK):
            rows = await self.session.execute(
                select(
                    _intervals.c.id,
                    _intervals.c.workload_id,
                    _intervals.c.replica_index,
                    _intervals.c.started_at,
                    _intervals.c.ended_at,
                )
                .where(
                    _intervals.c.workload_id.in_(ids[start : start + IN_CHUNK]),
                    or_(_intervals.c.ended_at.is_(None), _intervals.c.ended_at > since),
                )
                # a run that closes meanwhile waits for these samples, then takes back what is past its end
                .with_for_update()
            )
            runs.extend(Run(*row) for row in rows)
        return runs

    async def _existing(self, keys: Iterable[tuple[int, int]]) -> set[tuple[int, int]]:
        wanted = sorted(keys)
        found: set[tuple[int, int]] = set()
        for start in range(0, len(wanted), IN_CHUNK):
            chunk = set(wanted[start : start + IN_CHUNK])
            rows = await self.session.execute(
                select(_hours.c.interval_id, _hours.c.epoch_hour).where(
                    _hours.c.interval_id.in_({i for i, _ in chunk}),
                    _hours.c.epoch_hour.in_({h for _, h in chunk}),
                )
            )
            found.update((i, h) for i, h in rows if (i, h) in chunk)  # the IN lists cross
        return found

    async def daily(
        self, window: Window, until: datetime, offsets: HourOffsets, workspace_ids: Collection[str] | None
    ) -> list[DayUsage]:
        """Per interval and local day, the measured seconds and utilisation percent × seconds of the UTC
        hours that start in [window start, min(window end, until)), summed by the database."""
        first = ceil((window.start - EPOCH).total_seconds() / SECONDS_PER_HOUR)
        last = ceil((min(window.end, until) - EPOCH).total_seconds() / SECONDS_PER_HOUR)
        if last <= first:
            return []
        day = ((_hours.c.epoch_hour * 60 + _offset(offsets)) // 1440).label("day")
        pieces = select(_hours.c.interval_id, day, _hours.c.measured_s, _hours.c.util_percent_seconds).where(
            _hours.c.epoch_hour >= first, _hours.c.epoch_hour < last
        )
        if workspace_ids is not None:
            pieces = pieces.join(_intervals, _intervals.c.id == _hours.c.interval_id).where(
                _intervals.c.workspace_id.in_(list(workspace_ids))
            )
        # grouped outside: a GROUP BY on an expression with parameters is refused by PostgreSQL
        inner = pieces.subquery()
        rows = await (await self.session.connection()).execute(
            select(
                inner.c.interval_id,
                inner.c.day,
                func.sum(inner.c.measured_s),
                func.sum(inner.c.util_percent_seconds),
            ).group_by(inner.c.interval_id, inner.c.day)
        )
        return [
            DayUsage(interval_id, HourOffsets.day(int(day_number)), float(measured or 0), float(util or 0))
            for interval_id, day_number, measured, util in rows
        ]


def _offset(offsets: HourOffsets) -> ColumnElement[int]:
    """The zone's offset in minutes at each row's hour, as SQL (a constant unless daylight saving
    changes it inside the window)."""
    if not offsets.changes:
        return literal(offsets.first)
    whens = []
    previous = offsets.first
    for hour, offset in offsets.changes:
        whens.append((_hours.c.epoch_hour < hour, literal(previous)))
        previous = offset
    return case(*whens, else_=literal(previous))
