from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import cast

from sqlalchemy import Table, delete, func, insert, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from astrago.domain.changes import ChangeKind
from astrago.store.models import Change, utcnow

# Set on a session that recorded a change, so that its commit wakes the live streams of this process.
CHANGES_RECORDED = "astrago.changes_recorded"


class ChangeRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    def record(self, kind: ChangeKind, subject: str) -> None:
        self.session.add(Change(kind=kind.value, subject=subject))
        self.session.info[CHANGES_RECORDED] = True

    async def record_many(self, kind: ChangeKind, subjects: Collection[str]) -> None:
        """One Core statement for many subjects (the scheduler updates queue positions in bulk)."""
        if not subjects:
            return
        now = utcnow()
        rows = [{"kind": kind.value, "subject": s, "created_at": now} for s in subjects]
        await (await self.session.connection()).execute(insert(cast(Table, Change.__table__)), rows)
        self.session.info[CHANGES_RECORDED] = True

    async def after(self, last: int, gaps: Collection[int], limit: int) -> Sequence[Change]:
        """Changes above `last`, and those of `gaps` that have committed since, oldest first."""
        condition = Change.id > last
        if gaps:
            condition = or_(condition, Change.id.in_(list(gaps)))
        query = select(Change).where(condition).order_by(Change.id).limit(limit)
        return (await self.session.scalars(query)).all()

    async def latest_id(self) -> int:
        return int(await self.session.scalar(select(func.coalesce(func.max(Change.id), 0))) or 0)

    async def oldest_id(self) -> int | None:
        oldest = await self.session.scalar(select(func.min(Change.id)))
        return int(oldest) if oldest is not None else None

    async def prune(self, before: datetime) -> int:
        """Delete changes older than `before`, except the newest (it keeps the id sequence's position)."""
        newest = await self.latest_id()
        statement = delete(Change).where(Change.created_at < before, Change.id < newest)
        result = await self.session.execute(statement)
        return int(getattr(result, "rowcount", 0) or 0)
