"""Volume and upload repositories on SQLite and on a real PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from astrago.store.models import Upload, Volume
from astrago.store.repositories import UploadRepository, VolumeRepository, WorkspaceRepository


def _volume(volume_id: str, workspace_id: str, name: str, slug: str) -> Volume:
    return Volume(id=volume_id, workspace_id=workspace_id, name=name, slug=slug, kind="dataset")


async def test_volumes_are_found_by_name_then_slug_and_are_unique_per_workspace(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions.begin() as session:
        vision = await WorkspaceRepository(session).add("vision", "")
        audio = await WorkspaceRepository(session).add("audio", "")
        repo = VolumeRepository(session)
        repo.add(_volume("v1", vision.id, "한국어 데이터", "v-v1"))
        repo.add(_volume("v2", vision.id, "v-v1", "v-v1-v2"))  # a name equal to another's slug
        repo.add(_volume("v3", audio.id, "한국어 데이터", "v-v1"))  # same name, other workspace
    async with sessions() as session:
        repo = VolumeRepository(session)
        found = await repo.by_name(vision.id, "한국어 데이터")
        assert found is not None
        assert found.id == "v1"
        exact = await repo.by_name(vision.id, "v-v1")
        assert exact is not None
        assert exact.id == "v2"  # an exact name wins over a slug
        by_slug = await repo.by_name(vision.id, "v-v1-v2")
        assert by_slug is not None
        assert by_slug.id == "v2"
        assert await repo.by_name(audio.id, "v-v1-v2") is None
        assert await repo.slugs(vision.id) == {"v-v1", "v-v1-v2"}
        assert await repo.count_in_workspace(vision.id) == 2
    with pytest.raises(IntegrityError):
        async with sessions.begin() as session:
            VolumeRepository(session).add(_volume("v4", vision.id, "한국어 데이터", "other"))


async def test_uploads_unfinished_expired_and_removed_with_their_volume(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    now = datetime.now(UTC)
    async with sessions.begin() as session:
        space = await WorkspaceRepository(session).add("vision", "")
        VolumeRepository(session).add(_volume("v1", space.id, "ds", "ds"))
        await session.flush()
        uploads = UploadRepository(session)
        rows = (("old", -5, False), ("new", 60, False), ("done", -5, True))
        for order, (upload_id, expires, done) in enumerate(rows):
            uploads.add(
                Upload(
                    id=upload_id,
                    volume_id="v1",
                    path=f"{upload_id}.bin",
                    length=10,
                    created_at=now + timedelta(seconds=order),
                    expires_at=now + timedelta(seconds=expires),
                    completed_at=now if done else None,
                )
            )
    async with sessions() as session:
        uploads = UploadRepository(session)
        assert [u.id for u in await uploads.unfinished_in(["v1"])] == ["old", "new"]
        assert {u.id for u in await uploads.expired(now)} == {"old", "done"}
        assert await uploads.all_ids() == {"old", "new", "done"}
    async with sessions.begin() as session:
        volume = await VolumeRepository(session).get("v1")
        assert volume is not None
        await VolumeRepository(session).delete(volume)
    async with sessions() as session:
        assert await UploadRepository(session).all_ids() == set()
