from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from astrago.store.models import QuotaEntry


class QuotaRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def for_workspace(self, workspace_id: str) -> Sequence[QuotaEntry]:
        query = (
            select(QuotaEntry).where(QuotaEntry.workspace_id == workspace_id).order_by(QuotaEntry.resource)
        )
        return (await self.session.scalars(query)).all()

    async def all(self) -> Sequence[QuotaEntry]:
        return (await self.session.scalars(select(QuotaEntry))).all()

    async def set(self, workspace_id: str, resource: str, guaranteed: int, limit: int | None) -> QuotaEntry:
        entry = await self.session.get(QuotaEntry, (workspace_id, resource))
        if entry is None:
            entry = QuotaEntry(
                workspace_id=workspace_id, resource=resource, guaranteed=guaranteed, limit=limit
            )
            self.session.add(entry)
        else:
            entry.guaranteed = guaranteed
            entry.limit = limit
        await self.session.flush()
        return entry
