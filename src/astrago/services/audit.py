"""Reading the audit trail (admins only): searched by actor, action, target, workspace, outcome and time,
newest first, a page at a time."""

from __future__ import annotations

from collections.abc import Sequence

from astrago.auth.principal import Principal
from astrago.domain.audit import AuditFilter
from astrago.services.context import ServiceContext
from astrago.services.errors import InvalidInput
from astrago.services.schemas import AuditOut
from astrago.services.users import require_admin
from astrago.store.repositories import AuditRepository


class AuditService:
    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx

    async def recent(
        self,
        principal: Principal,
        limit: int,
        before_id: int | None,
        matching: AuditFilter | None = None,
    ) -> Sequence[AuditOut]:
        """The newest `limit` records matching the filter and older than `before_id`: pass the last id of
        a full page as `before_id` for the next one."""
        require_admin(principal, "read the audit trail")
        if not 1 <= limit <= 1000:
            raise InvalidInput("limit must be between 1 and 1000")
        if matching and matching.since and matching.until and matching.since >= matching.until:
            raise InvalidInput("since must be before until")
        async with self.ctx.read() as session:
            records = await AuditRepository(session).recent(limit, before_id, matching)
            return [
                AuditOut(
                    id=r.id,
                    created_at=r.created_at,
                    actor=r.actor,
                    action=r.action,
                    target=r.target,
                    workspace=r.workspace,
                    result=r.result,
                    detail=r.detail,
                )
                for r in records
            ]
