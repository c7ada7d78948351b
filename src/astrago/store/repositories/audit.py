from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from astrago.store.models import AuditRecord
from astrago.store.repositories.keyset import older_than


class AuditRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    def add(
        self, actor: str | None, action: str, target: str | None, result: str, detail: str | None
    ) -> None:
        self.session.add(AuditRecord(actor=actor, action=action, target=target, result=result, detail=detail))

    async def recent(self, limit: int, before_id: int | None = None) -> Sequence[AuditRecord]:
        query = select(AuditRecord).order_by(AuditRecord.id.desc()).limit(limit)
        if (older := older_than(AuditRecord.id, before_id)) is not None:
            query = query.where(older)
        return (await self.session.scalars(query)).all()
