"""Searching the audit trail (the Audit page and `astrago audit`): filters and keyset paging in the
database, on SQLite, PostgreSQL and MariaDB; the migration that added the workspace column fills it in for
records written before it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from astrago.domain.audit import AuditFilter, AuditResult
from astrago.store.db import create_engine, create_session_factory
from astrago.store.migrate import alembic_config, upgrade_to_head
from astrago.store.models import AuditRecord, Base
from astrago.store.repositories import AuditRepository

T0 = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
# (actor, action, target, workspace, result, minutes after T0)
RECORDS = [
    ("alice", "workload.submit", "w1", "ml-a", "ok", 0),
    ("alice", "workload.cancel", "w1", "ml-a", "ok", 1),
    ("bob", "workload.submit", None, "ml-b", "denied", 2),
    ("admin", "workspace.create", "ml_c", "ml_c", "ok", 3),
    ("admin", "workspace.set_member", "ml-a/bob", "ml-a", "ok", 4),
    (None, "auth.login", "mallory", None, "denied", 5),
    ("alice", "workloads.export", "w1", "ml-a", "ok", 6),  # not in the `workload` family
    ("alice", "workload.submit", "w2", "ml-a", "invalid", 7),
]


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url)
    yield engine
    await engine.dispose()


@pytest.fixture
async def sessions(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    await upgrade_to_head(engine)
    factory = create_session_factory(engine)
    async with factory.begin() as session:
        for actor, action, target, workspace, result, minutes in RECORDS:
            session.add(
                AuditRecord(
                    actor=actor,
                    action=action,
                    target=target,
                    workspace=workspace,
                    result=result,
                    created_at=T0 + timedelta(minutes=minutes),
                )
            )
    return factory


async def _search(
    sessions: async_sessionmaker[AsyncSession], limit: int = 100, before: int | None = None, **filters: object
) -> list[tuple[str | None, str, str | None]]:
    async with sessions() as session:
        found = await AuditRepository(session).recent(limit, before, AuditFilter(**filters))  # type: ignore[arg-type]
        return [(r.actor, r.action, r.target) for r in found]


async def test_each_filter_narrows_the_search(sessions: async_sessionmaker[AsyncSession]) -> None:
    assert len(await _search(sessions)) == len(RECORDS)
    assert await _search(sessions, actor="bob") == [("bob", "workload.submit", None)]
    # an action exactly, or its family (`workload` = workload.*, not workloads.*)
    assert [a for _, a, _ in await _search(sessions, action="workload.cancel")] == ["workload.cancel"]
    assert [a for _, a, _ in await _search(sessions, action="workload")] == [
        "workload.submit",
        "workload.submit",
        "workload.cancel",
        "workload.submit",
    ]
    assert await _search(sessions, action="workload.") == []  # no such action
    assert [t for _, _, t in await _search(sessions, target="w1")] == ["w1", "w1", "w1"]
    # `_` is a LIKE wildcard: it is taken literally
    assert await _search(sessions, action="workspace_create") == []
    assert [t for _, _, t in await _search(sessions, workspace="ml-a")] == [
        "w2",
        "w1",
        "ml-a/bob",
        "w1",
        "w1",
    ]
    assert [t for _, _, t in await _search(sessions, workspace="ml_c")] == ["ml_c"]
    denied = await _search(sessions, result=AuditResult.DENIED)
    assert denied == [(None, "auth.login", "mallory"), ("bob", "workload.submit", None)]


async def test_time_range_is_inclusive_then_exclusive(sessions: async_sessionmaker[AsyncSession]) -> None:
    window = await _search(sessions, since=T0 + timedelta(minutes=2), until=T0 + timedelta(minutes=4))
    assert [a for _, a, _ in window] == ["workspace.create", "workload.submit"]
    # another zone is the same instant
    later = await _search(
        sessions, since=(T0 + timedelta(minutes=7)).astimezone(timezone(timedelta(hours=9)))
    )
    assert later == [("alice", "workload.submit", "w2")]


async def test_filters_combine_and_pages_follow_the_last_id(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    filters = {"actor": "alice", "action": "workload"}
    seen: list[str | None] = []
    before: int | None = None
    pages = 0
    while True:
        async with sessions() as session:
            page = await AuditRepository(session).recent(2, before, AuditFilter(**filters))  # type: ignore[arg-type]
        seen += [r.target for r in page]
        pages += 1
        if len(page) < 2:
            break
        before = page[-1].id
    assert seen == ["w2", "w1", "w1"]
    assert pages == 2
    # a cursor past every id that can exist starts from the newest
    assert len(await _search(sessions, before=2**62, actor="alice")) == 4


async def test_a_refused_request_naming_an_impossible_workspace_is_still_recorded(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions.begin() as session:
        AuditRepository(session).add("kim", "volume.create", "x" * 200, "invalid", "no", workspace="w" * 65)
    async with sessions() as session:
        [record] = await AuditRepository(session).recent(1)
    assert (record.actor, record.workspace) == ("kim", None)


async def test_the_audit_table_matches_the_models(
    engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """The migration creates what the model declares: the workspace column and the search indexes."""

    def differences(connection: Connection) -> list[object]:
        diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
        return [d for d in diff if "audit_records" in repr(d)]

    async with engine.connect() as connection:
        assert await connection.run_sync(differences) == []


async def test_the_migration_files_records_written_before_it_under_their_workspace(
    engine: AsyncEngine,
) -> None:
    def upgrade_to(connection: Connection, revision: str) -> None:
        command.upgrade(alembic_config(connection), revision)

    async with engine.begin() as connection:
        await connection.run_sync(upgrade_to, "interactive_1")
        # the model's Core tables bring the columns' defaults (workspaces and workloads are unchanged
        # since that revision)
        tables = Base.metadata.tables
        await connection.execute(tables["workspaces"].insert().values(id="s1", name="ml-a"))
        await connection.execute(
            tables["workloads"]
            .insert()
            .values(id="w1", workspace_id="s1", name="w1", kind="job", status="PENDING", replicas=1, spec={})
        )
        for action, target in [
            ("workload.submit", "w1"),
            ("workload.cancel", "gone"),
            ("quota.set", "ml-a"),
            ("volume.create", "ml-b/datasets"),
            ("workspace.set_member", "ml-c/bob"),
            ("upload.create", "ml-d/data:/a/b.csv"),
            ("auth.login", "alice/x"),
        ]:
            await connection.execute(
                text(
                    "INSERT INTO audit_records (created_at, actor, action, target, result) "
                    "VALUES (:at, 'admin', :action, :target, 'ok')"
                ),
                {"at": T0, "action": action, "target": target},
            )
        await connection.run_sync(upgrade_to, "head")
        rows = (
            await connection.execute(text("SELECT action, workspace FROM audit_records ORDER BY id"))
        ).all()
    assert [tuple(r) for r in rows] == [
        ("workload.submit", "ml-a"),
        ("workload.cancel", None),
        ("quota.set", "ml-a"),
        ("volume.create", "ml-b"),
        ("workspace.set_member", "ml-c"),
        ("upload.create", "ml-d"),
        ("auth.login", None),
    ]
