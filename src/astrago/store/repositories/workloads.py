from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from astrago.domain.enums import WorkloadStatus
from astrago.store.models import Workload


@dataclass(frozen=True, slots=True)
class WorkloadPage:
    items: Sequence[Workload]
    total: int
    next_cursor: int | None  # pass back as `cursor` for the next (older) page


class WorkloadRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, workload_id: str, for_update: bool = False) -> Workload | None:
        query = select(Workload).where(Workload.id == workload_id)
        if for_update:
            query = query.with_for_update()
        return await self.session.scalar(query)

    async def by_ids(self, ids: Collection[str]) -> dict[str, Workload]:
        if not ids:
            return {}
        query = (
            select(Workload).where(Workload.id.in_(list(ids))).options(selectinload(Workload.replica_rows))
        )
        return {w.id: w for w in (await self.session.scalars(query)).all()}

    def add(self, workload: Workload) -> None:
        self.session.add(workload)

    async def page(
        self,
        workspace_ids: Collection[str] | None,
        statuses: Collection[WorkloadStatus] | None,
        limit: int,
        cursor: int | None,
    ) -> WorkloadPage:
        """Newest first, keyset-paginated on `seq` so pages stay fast and stable under inserts."""
        filters = []
        if workspace_ids is not None:
            filters.append(Workload.workspace_id.in_(list(workspace_ids)))
        if statuses:
            filters.append(Workload.status.in_([s.value for s in statuses]))
        total = await self.session.scalar(select(func.count()).select_from(Workload).where(*filters))
        query = select(Workload).where(*filters)
        if cursor is not None:
            query = query.where(Workload.seq < cursor)
        query = query.order_by(Workload.seq.desc()).limit(limit + 1)
        rows = (await self.session.scalars(query)).all()
        next_cursor = rows[limit - 1].seq if len(rows) > limit else None
        return WorkloadPage(items=rows[:limit], total=int(total or 0), next_cursor=next_cursor)

    async def with_statuses(self, statuses: Collection[WorkloadStatus]) -> Sequence[Workload]:
        query = (
            select(Workload)
            .where(Workload.status.in_([s.value for s in statuses]))
            .options(selectinload(Workload.replica_rows))
            .order_by(Workload.seq)
        )
        return (await self.session.scalars(query)).all()

    async def code_bundles_of_unfinished(self) -> set[str]:
        """The code bundles that workloads not yet ended still refer to (they may still be launched)."""
        ended = [s.value for s in (WorkloadStatus.SUCCEEDED, WorkloadStatus.FAILED, WorkloadStatus.CANCELLED)]
        specs = await self.session.scalars(select(Workload.spec).where(Workload.status.not_in(ended)))
        return {str(spec["code"]) for spec in specs if spec.get("code")}

    async def count_by_status_and_workspace(self) -> Sequence[tuple[str, str, int]]:
        query = select(Workload.status, Workload.workspace_id, func.count()).group_by(
            Workload.status, Workload.workspace_id
        )
        return [(row[0], row[1], int(row[2])) for row in (await self.session.execute(query)).all()]

    async def all_ids(self) -> set[str]:
        return set((await self.session.scalars(select(Workload.id))).all())

    async def max_admitted_seq(self) -> int:
        return int(await self.session.scalar(select(func.max(Workload.admitted_seq))) or 0)
