"""Concurrent submissions share write transactions (group commit) and keep every guarantee of one
transaction each: every acknowledged workload stored once, with its event and its audit record; a bad
submission fails alone and is audited; on SQLite, PostgreSQL and MariaDB."""

from __future__ import annotations

import asyncio
from collections import Counter

from sqlalchemy import event, func, select
from sqlalchemy.orm import Session

from astrago.auth.principal import Principal
from astrago.services.registry import Services
from astrago.services.schemas import WorkloadSubmit
from astrago.store.models import AuditRecord, Event, Workload
from astrago.store.repositories import WorkloadRepository

SUBMISSIONS = 40


def _request(name: str) -> WorkloadSubmit:
    return WorkloadSubmit.model_validate(
        {"workspace": "default", "name": name, "command": ["true"], "resources": {"cpu": "100m"}}
    )


async def test_concurrent_submits_are_each_stored_once_with_event_and_audit_in_fewer_transactions(
    services: Services, admin: Principal
) -> None:
    commits = 0

    def count(_session: object) -> None:
        nonlocal commits
        commits += 1

    event.listen(Session, "after_commit", count)
    try:
        outs = await asyncio.gather(
            *(services.workloads.submit(admin, _request(f"job-{i}")) for i in range(SUBMISSIONS))
        )
    finally:
        event.remove(Session, "after_commit", count)
    ids = [out.id for out in outs]
    assert len(set(ids)) == SUBMISSIONS
    assert commits < SUBMISSIONS  # grouped: one transaction each would be SUBMISSIONS commits
    async with services.ctx.read() as session:
        stored = await session.scalars(select(Workload.id))
        assert sorted(stored) == sorted(ids)
        events = Counter(
            (await session.execute(select(Event.workload_id).where(Event.type == "Submitted"))).scalars()
        )
        assert events == Counter({workload_id: 1 for workload_id in ids})
        audited = Counter(
            (
                await session.execute(
                    select(AuditRecord.target).where(
                        AuditRecord.action == "workload.submit", AuditRecord.result == "ok"
                    )
                )
            ).scalars()
        )
        assert audited == Counter({workload_id: 1 for workload_id in ids})
        first = await WorkloadRepository(session).get(ids[0])
        assert first is not None
        assert first.created_at == outs[0].created_at


async def test_a_submission_that_cannot_be_stored_fails_alone_and_is_audited(
    services: Services, admin: Principal
) -> None:
    """A batch's transaction fails because one of its rows is refused by the database (its workspace does
    not exist): its submissions are retried one by one, and that one fails alone, audited as an error.
    However the submissions happen to be grouped, the bad row fails every transaction it is in."""
    batcher = services.workloads._group_commit
    real_insert = batcher.insert
    poisoned = "job-poisoned"

    async def insert(principal, workload, workspace) -> None:  # type: ignore[no-untyped-def]
        if workload.name == poisoned:
            workload.workspace_id = "no-such-workspace"  # a foreign key no row satisfies
        await real_insert(principal, workload, workspace)

    batcher.insert = insert  # type: ignore[method-assign]
    names = [f"job-{i}" for i in range(8)] + [poisoned]
    results = await asyncio.gather(
        *(services.workloads.submit(admin, _request(name)) for name in names), return_exceptions=True
    )
    failed = [r for r in results if isinstance(r, BaseException)]
    assert len(failed) == 1
    stored_names = {r.name for r in results if not isinstance(r, BaseException)}
    assert stored_names == set(names) - {poisoned}
    async with services.ctx.read() as session:
        count = await session.scalar(select(func.count()).select_from(Workload))
        assert count == len(names) - 1
        errors = (
            await session.scalars(
                select(AuditRecord).where(
                    AuditRecord.action == "workload.submit", AuditRecord.result == "error"
                )
            )
        ).all()
        assert len(errors) == 1
