from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from astrago.store.models import Event


class EventRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    def add(self, workload_id: str | None, type_: str, reason: str) -> None:
        self.session.add(Event(workload_id=workload_id, type=type_, reason=reason))

    async def for_workload(self, workload_id: str, limit: int = 200) -> Sequence[Event]:
        query = select(Event).where(Event.workload_id == workload_id).order_by(Event.id).limit(limit)
        return (await self.session.scalars(query)).all()
