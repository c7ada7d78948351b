from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import ColumnElement, insert, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from astrago.domain.audit import AuditFilter
from astrago.store.models import AUDIT_WORKSPACE_LENGTH, AuditRecord
from astrago.store.repositories.keyset import older_than


def _like_prefix(prefix: str) -> str:
    """A LIKE pattern for `prefix` followed by anything, with LIKE's wildcards in `prefix` taken literally."""
    escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped + "%"


def _conditions(found: AuditFilter) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if found.actor is not None:
        conditions.append(AuditRecord.actor == found.actor)
    if found.action is not None:
        if found.is_family():
            family = AuditRecord.action.like(_like_prefix(found.action + "."), escape="\\")
            conditions.append(or_(AuditRecord.action == found.action, family))
        else:
            conditions.append(AuditRecord.action == found.action)
    if found.target is not None:
        conditions.append(AuditRecord.target == found.target)
    if found.workspace is not None:
        conditions.append(AuditRecord.workspace == found.workspace)
    if found.result is not None:
        conditions.append(AuditRecord.result == found.result.value)
    if found.since is not None:
        conditions.append(AuditRecord.created_at >= found.since)
    if found.until is not None:
        conditions.append(AuditRecord.created_at < found.until)
    return conditions


@dataclass(frozen=True)
class AuditEntry:
    actor: str | None
    action: str
    target: str | None
    result: str
    detail: str | None
    workspace: str | None = None


def _row(entry: AuditEntry) -> dict[str, str | None]:
    workspace = entry.workspace
    if workspace is not None and len(workspace) > AUDIT_WORKSPACE_LENGTH:
        workspace = None  # no workspace has so long a name: a refused request named it
    return {
        "actor": entry.actor,
        "action": entry.action,
        "target": entry.target,
        "workspace": workspace,
        "result": entry.result,
        "detail": entry.detail,
    }


class AuditRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add_many(self, records: Sequence[AuditEntry]) -> None:
        """Several records in one bulk statement (a group of submissions)."""
        if records:
            await self.session.execute(insert(AuditRecord), [_row(record) for record in records])

    def add(
        self,
        actor: str | None,
        action: str,
        target: str | None,
        result: str,
        detail: str | None,
        workspace: str | None = None,
    ) -> None:
        self.session.add(AuditRecord(**_row(AuditEntry(actor, action, target, result, detail, workspace))))

    async def recent(
        self, limit: int, before_id: int | None = None, matching: AuditFilter | None = None
    ) -> Sequence[AuditRecord]:
        """The newest `limit` records matching the filter, older than `before_id` (keyset paging: the
        next page is `before_id` = the last id of this one)."""
        query = select(AuditRecord).order_by(AuditRecord.id.desc()).limit(limit)
        if (older := older_than(AuditRecord.id, before_id)) is not None:
            query = query.where(older)
        if matching is not None:
            query = query.where(*_conditions(matching))
        return (await self.session.scalars(query)).all()
