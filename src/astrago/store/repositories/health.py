from __future__ import annotations

from sqlalchemy import literal, select
from sqlalchemy.ext.asyncio import AsyncSession


class HealthRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def ping(self) -> None:
        """One round trip that touches no table: the database answers, whatever the data holds."""
        await self.session.execute(select(literal(1)))
