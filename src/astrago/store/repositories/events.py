from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from astrago.domain.changes import ChangeKind
from astrago.store.models import Event
from astrago.store.repositories.changes import ChangeRepository


class EventRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add_many(self, type_: str, reasons: Sequence[tuple[str, str]]) -> None:
        """One event of `type_` for each (workload id, reason), in one bulk statement, with their changes."""
        if not reasons:
            return
        rows = [{"workload_id": workload, "type": type_, "reason": reason} for workload, reason in reasons]
        await self.session.execute(insert(Event), rows)
        await ChangeRepository(self.session).record_many(ChangeKind.WORKLOAD, [w for w, _ in reasons])

    def add(self, workload_id: str | None, type_: str, reason: str) -> None:
        """Every workload event is also a change that live clients hear of (same transaction)."""
        self.session.add(Event(workload_id=workload_id, type=type_, reason=reason))
        if workload_id is not None:
            ChangeRepository(self.session).record(ChangeKind.WORKLOAD, workload_id)

    async def for_workload(self, workload_id: str, limit: int = 200) -> Sequence[Event]:
        query = select(Event).where(Event.workload_id == workload_id).order_by(Event.id).limit(limit)
        return (await self.session.scalars(query)).all()
