"""Whether this server can serve: the readiness probe's database ping."""

from __future__ import annotations

from astrago.services.context import ServiceContext
from astrago.store.repositories import HealthRepository


class HealthService:
    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx

    async def database_answers(self) -> None:
        """Raises what the driver raises when the database does not answer. Probes run every few seconds
        on every replica, so this reads nothing: its cost does not grow with the data."""
        async with self.ctx.read() as session:
            await HealthRepository(session).ping()
