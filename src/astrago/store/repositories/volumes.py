from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from astrago.store.models import Upload, Volume, Workload


class VolumeRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def by_name(self, workspace_id: str, name: str) -> Volume | None:
        """By name, or by slug when no volume has that name (so ASCII shells can type `korean-v2`)."""
        query = select(Volume).where(
            Volume.workspace_id == workspace_id, or_(Volume.name == name, Volume.slug == name)
        )
        found = (await self.session.scalars(query)).all()
        exact = [volume for volume in found if volume.name == name]
        candidates = exact or list(found)
        return candidates[0] if candidates else None

    async def get(self, volume_id: str) -> Volume | None:
        return await self.session.get(Volume, volume_id)

    async def in_workspace(self, workspace_id: str) -> Sequence[Volume]:
        query = select(Volume).where(Volume.workspace_id == workspace_id).order_by(Volume.name)
        return (await self.session.scalars(query)).all()

    async def slugs(self, workspace_id: str) -> set[str]:
        query = select(Volume.slug).where(Volume.workspace_id == workspace_id)
        return set((await self.session.scalars(query)).all())

    async def count_in_workspace(self, workspace_id: str) -> int:
        query = select(func.count()).select_from(Volume).where(Volume.workspace_id == workspace_id)
        return int(await self.session.scalar(query) or 0)

    async def unfinished_workloads(self, workspace_id: str, statuses: Sequence[str]) -> Sequence[Workload]:
        """Workloads of the workspace in `statuses` (the unfinished ones, which may mount its volumes)."""
        query = select(Workload).where(Workload.workspace_id == workspace_id, Workload.status.in_(statuses))
        return (await self.session.scalars(query.order_by(Workload.seq))).all()

    def add(self, volume: Volume) -> None:
        self.session.add(volume)

    async def delete(self, volume: Volume) -> None:
        await self.session.delete(volume)


class UploadRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, upload_id: str) -> Upload | None:
        return await self.session.get(Upload, upload_id)

    async def unfinished_in(self, volume_ids: Sequence[str]) -> Sequence[Upload]:
        """Uploads still receiving bytes (their declared lengths are reserved against the quotas)."""
        if not volume_ids:
            return []
        query = (
            select(Upload)
            .where(Upload.volume_id.in_(volume_ids), Upload.completed_at.is_(None))
            .order_by(Upload.created_at)
        )
        return (await self.session.scalars(query)).all()

    async def expired(self, now: datetime, limit: int = 100) -> Sequence[Upload]:
        query = select(Upload).where(Upload.expires_at <= now).order_by(Upload.expires_at).limit(limit)
        return (await self.session.scalars(query)).all()

    async def all_ids(self) -> set[str]:
        return set((await self.session.scalars(select(Upload.id))).all())

    def add(self, upload: Upload) -> None:
        self.session.add(upload)

    async def delete(self, upload: Upload) -> None:
        await self.session.delete(upload)
