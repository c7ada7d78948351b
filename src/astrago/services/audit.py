"""Reading the audit trail (admins only)."""

from __future__ import annotations

from collections.abc import Sequence

from astrago.auth.principal import Principal
from astrago.services.context import ServiceContext
from astrago.services.errors import InvalidInput
from astrago.services.schemas import AuditOut
from astrago.services.users import require_admin
from astrago.store.repositories import AuditRepository


class AuditService:
    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx

    async def recent(self, principal: Principal, limit: int, before_id: int | None) -> Sequence[AuditOut]:
        require_admin(principal, "read the audit trail")
        if not 1 <= limit <= 1000:
            raise InvalidInput("limit must be between 1 and 1000")
        async with self.ctx.read() as session:
            records = await AuditRepository(session).recent(limit, before_id)
            return [
                AuditOut(
                    id=r.id,
                    created_at=r.created_at,
                    actor=r.actor,
                    action=r.action,
                    target=r.target,
                    result=r.result,
                    detail=r.detail,
                )
                for r in records
            ]
