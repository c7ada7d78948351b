"""The usage ledger's allocation intervals: recorded by the workload controller in the transaction that
writes the replica rows they follow, read by the usage reports."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import UTC, datetime
from typing import cast

from sqlalchemy import String, Table, func, or_, select, type_coerce
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.types import TypeDecorator

from astrago.domain.usage import Allocation, AllocationChange, AllocationClosed, AllocationOpened, Run, Window
from astrago.store.models import AllocationInterval, Device, Replica, Workload
from astrago.store.repositories.usage_hours import UsageHourRepository


class _UtcInstant(TypeDecorator[datetime]):
    """The interval timestamps as a report reads them, parsed once by `datetime.fromisoformat` (SQLite
    returns text; the generic DateTime parser and then the UTC conversion took most of a 90-day report's
    time). PostgreSQL and MariaDB return datetimes, made aware here as the column type does."""

    impl = String
    cache_ok = True

    def process_result_value(self, value: object, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, datetime):
            return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        try:  # stored without an offset, in UTC: parsing it with one is 15 times faster than replace()
            return datetime.fromisoformat(f"{value}+00:00")
        except ValueError:
            return datetime.fromisoformat(str(value)).astimezone(UTC)


class AllocationRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def record(self, changes: Sequence[tuple[Workload, AllocationChange]]) -> None:
        """Open and close intervals for replicas of loaded workload rows (in the caller's transaction)."""
        opened = [(w, c) for w, c in changes if isinstance(c, AllocationOpened)]
        closed = [(w, c) for w, c in changes if isinstance(c, AllocationClosed)]
        if opened:
            models = await self._gpu_models({_replica(w, c.replica_index).node for w, c in opened})
            for workload, change in opened:
                self.session.add(_interval(workload, change, models))
        if closed:
            await self._close(closed)

    async def _gpu_models(self, nodes: Collection[str]) -> dict[tuple[str, int], str]:
        rows = await self.session.execute(
            select(Device.node_name, Device.index, Device.model).where(Device.node_name.in_(nodes))
        )
        return {(node, index): model for node, index, model in rows}

    async def _close(self, closed: Sequence[tuple[Workload, AllocationClosed]]) -> None:
        wanted = {(w.id, c.replica_index): c.ended_at for w, c in closed}
        rows = await self.session.scalars(
            select(AllocationInterval).where(
                AllocationInterval.workload_id.in_({w.id for w, _ in closed}),
                AllocationInterval.ended_at.is_(None),
            )
        )
        runs = []
        for interval in rows:
            ended = wanted.get((interval.workload_id, interval.replica_index))
            if ended is not None:
                # a clock that stepped back never makes an interval negative
                interval.ended_at = max(ended, interval.started_at)
                runs.append(
                    Run(
                        interval.id,
                        interval.workload_id,
                        interval.replica_index,
                        interval.started_at,
                        interval.ended_at,
                    )
                )
        await UsageHourRepository(self.session).take_back_after_end(runs)

    async def overlapping(self, window: Window, workspace_ids: Collection[str] | None) -> list[Allocation]:
        """Intervals that overlap the window (open ones included), as plain values. Read as Core rows
        (no ORM identity map): a 90-day report reads tens of thousands of them."""
        table = cast(Table, AllocationInterval.__table__)
        query = select(
            table.c.workload_id,
            table.c.replica_index,
            table.c.workspace,
            table.c.username,
            table.c.gpu_model,
            table.c.gpu_milli,
            table.c.cpu_milli,
            table.c.memory_mib,
            type_coerce(table.c.started_at, _UtcInstant),
            type_coerce(table.c.ended_at, _UtcInstant),
            table.c.id,
        ).where(
            table.c.started_at < window.end, or_(table.c.ended_at.is_(None), table.c.ended_at > window.start)
        )
        if workspace_ids is not None:
            query = query.where(table.c.workspace_id.in_(list(workspace_ids)))
        rows = await (await self.session.connection()).execute(query)
        return [Allocation._make(row) for row in rows]

    async def for_workload(self, workload_id: str) -> Sequence[AllocationInterval]:
        rows = await self.session.scalars(
            select(AllocationInterval)
            .where(AllocationInterval.workload_id == workload_id)
            .order_by(AllocationInterval.started_at, AllocationInterval.replica_index)
        )
        return rows.all()

    async def open_count(self) -> int:
        count = await self.session.scalar(
            select(func.count()).select_from(AllocationInterval).where(AllocationInterval.ended_at.is_(None))
        )
        return int(count or 0)

    def add(self, interval: AllocationInterval) -> None:
        """An interval recorded by hand (imports, tests of the reports)."""
        self.session.add(interval)


def _interval(
    workload: Workload, change: AllocationOpened, models: dict[tuple[str, int], str]
) -> AllocationInterval:
    replica = _replica(workload, change.replica_index)
    gpus = list(replica.gpu_indices)
    creator = workload.creator
    return AllocationInterval(
        workload_id=workload.id,
        workload_name=workload.name,
        replica_index=replica.index,
        workspace_id=workload.workspace_id,
        workspace=workload.workspace.name,
        user_id=workload.created_by,
        username=creator.username if creator is not None else None,
        node=replica.node,
        gpu_model=models.get((replica.node, gpus[0])) if gpus else None,
        gpu_count=len(gpus),
        # per GPU: 1000 for a whole GPU, the share, or the MIG slice's fraction of its GPU
        gpu_milli=replica.gpu_milli * len(gpus),
        mig_profile=replica.mig_profile,
        cpu_milli=replica.cpu_milli,
        memory_mib=replica.memory_mib,
        started_at=change.started_at,
        ended_at=change.ended_at,
    )


def _replica(workload: Workload, index: int) -> Replica:
    return next(r for r in workload.replica_rows if r.index == index)
