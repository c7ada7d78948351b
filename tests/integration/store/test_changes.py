"""The change feed that live clients follow, on SQLite and on a real PostgreSQL: ordered durable ids,
gaps asked for again, pruning that never lets an id be reused."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from astrago.domain.changes import ChangeKind
from astrago.store.repositories import ChangeRepository
from astrago.store.repositories.changes import CHANGES_RECORDED


async def test_changes_come_back_in_id_order_with_late_gaps(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions.begin() as session:
        ChangeRepository(session).record(ChangeKind.WORKLOAD, "w1")
        assert session.info[CHANGES_RECORDED] is True
    async with sessions.begin() as session:
        await ChangeRepository(session).record_many(ChangeKind.WORKLOAD, ["w2", "w3"])
        assert session.info[CHANGES_RECORDED] is True
    async with sessions.begin() as session:
        ChangeRepository(session).record(ChangeKind.NODE, "node-a")
    async with sessions() as session:
        changes = ChangeRepository(session)
        everything = await changes.after(0, [], 100)
        assert [(c.kind, c.subject) for c in everything] == [
            ("workload", "w1"),
            ("workload", "w2"),
            ("workload", "w3"),
            ("node", "node-a"),
        ]
        ids = [c.id for c in everything]
        assert ids == sorted(ids)
        assert await changes.latest_id() == ids[-1]
        assert await changes.oldest_id() == ids[0]
        # a follower at the end that still misses the first id gets exactly that one
        late = await changes.after(ids[-1], [ids[0]], 100)
        assert [c.subject for c in late] == ["w1"]
        assert [c.subject for c in await changes.after(ids[1], [], 1)] == ["w3"]


async def test_pruning_keeps_the_newest_so_ids_are_never_reused(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions.begin() as session:
        for subject in ("a", "b", "c"):
            ChangeRepository(session).record(ChangeKind.WORKLOAD, subject)
    async with sessions.begin() as session:
        changes = ChangeRepository(session)
        newest = await changes.latest_id()
        assert await changes.prune(datetime.now(UTC) + timedelta(minutes=1)) == 2
    async with sessions.begin() as session:
        changes = ChangeRepository(session)
        assert await changes.oldest_id() == newest
        changes.record(ChangeKind.WORKLOAD, "d")
    async with sessions() as session:
        assert await ChangeRepository(session).latest_id() == newest + 1
