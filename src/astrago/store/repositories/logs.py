from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from astrago.store.models import LogArchive


class LogArchiveRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def put(self, workload_id: str, replica_index: int, content: bytes) -> None:
        existing = await self.session.get(LogArchive, (workload_id, replica_index))
        if existing is not None:
            existing.content = content
            return
        self.session.add(LogArchive(workload_id=workload_id, replica_index=replica_index, content=content))

    async def get(self, workload_id: str, replica_index: int) -> bytes | None:
        row = await self.session.get(LogArchive, (workload_id, replica_index))
        return row.content if row is not None else None

    async def delete_older_than(self, cutoff: datetime) -> int:
        result = await self.session.execute(delete(LogArchive).where(LogArchive.archived_at < cutoff))
        return int(getattr(result, "rowcount", 0) or 0)

    async def archived(self, workload_id: str) -> list[int]:
        rows = await self.session.execute(
            select(LogArchive.replica_index).where(LogArchive.workload_id == workload_id)
        )
        return sorted(rows.scalars())
