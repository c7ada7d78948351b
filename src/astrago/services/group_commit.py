"""Group commit of submissions: concurrent submits share one write transaction.

On SQLite every write transaction of the server holds the one write lock, and most of a small transaction's
cost is its own overhead (begin, flushes, commit) rather than its rows. Submissions that arrive while a
transaction is committing wait for it, then all go in the next one together: one transaction of N workloads,
their N "Submitted" events and N audit records, instead of N transactions.

Nothing is weaker than one transaction per submit: each caller is answered only after the transaction that
holds its workload, its event and its audit record has committed; if a batch fails, its submissions are
retried one by one, each in its own audited transaction (as a lone submit always was), so that a bad row
fails only its own submission, a passing fault (a lock timeout) gets one more try, and every failure is on
record."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from astrago.auth.principal import Principal
from astrago.services.context import ServiceContext
from astrago.store.models import Workload
from astrago.store.repositories import AuditRepository, EventRepository, WorkloadRepository
from astrago.store.repositories.audit import AuditEntry

log = logging.getLogger(__name__)

SUBMIT_ACTION = "workload.submit"
# Bounds one transaction (and so how long it holds SQLite's write lock) under a flood of submissions.
MAX_BATCH = 256


@dataclass
class _Submission:
    principal: Principal
    workload: Workload
    workspace: str  # its name, for the audit record
    done: asyncio.Future[None] = field(default_factory=lambda: asyncio.get_running_loop().create_future())


class SubmitGroupCommit:
    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx
        self._queue: list[_Submission] = []
        self._writer: asyncio.Task[None] | None = None

    async def insert(self, principal: Principal, workload: Workload, workspace: str) -> None:
        """Insert `workload` with its event and audit record (filed under `workspace`); returns once that
        is committed."""
        submission = _Submission(principal, workload, workspace)
        self._queue.append(submission)
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_all(), name="submit-group-commit")
        # Shielded: a caller that goes away (a dropped connection) must not cancel its batch's transaction
        # for the others; its workload is kept like any other submission acknowledged by the store.
        await asyncio.shield(submission.done)

    async def _write_all(self) -> None:
        while self._queue:
            batch, self._queue = self._queue[:MAX_BATCH], self._queue[MAX_BATCH:]
            try:
                await self._write(batch)
            except Exception as exc:
                if len(batch) > 1:
                    log.warning("a group of %d submissions failed (%s); retrying one by one", len(batch), exc)
                for submission in batch:
                    await self._write_alone(submission)
            else:
                for submission in batch:
                    _settle(submission.done, None)

    async def _write(self, batch: list[_Submission]) -> None:
        # bulk statements, not the unit of work: a group is a few dozen rows of four kinds, and the unit
        # of work's per-object bookkeeping was the larger part of a submission's cost
        async with self.ctx.write() as session:
            await WorkloadRepository(session).insert_many([s.workload for s in batch])
            await EventRepository(session).add_many(
                "Submitted", [(s.workload.id, f"submitted by {s.principal.username}") for s in batch]
            )
            await AuditRepository(session).add_many(
                [
                    AuditEntry(s.principal.username, SUBMIT_ACTION, s.workload.id, "ok", None, s.workspace)
                    for s in batch
                ]
            )

    async def _write_alone(self, submission: _Submission) -> None:
        """One submission in its own audited transaction; its failure goes to its caller alone."""
        try:
            submitted = self.ctx.mutation(
                submission.principal, SUBMIT_ACTION, submission.workload.id, workspace=submission.workspace
            )
            async with submitted as m:
                WorkloadRepository(m.session).add(_fresh_copy(submission.workload))
                await m.session.flush()
                EventRepository(m.session).add(
                    submission.workload.id, "Submitted", f"submitted by {submission.principal.username}"
                )
        except Exception as exc:
            _settle(submission.done, exc)
        else:
            _settle(submission.done, None)


def _fresh_copy(workload: Workload) -> Workload:
    """A new instance with the same columns: the one from a rolled-back batch may carry its stale state."""
    columns = Workload.__table__.columns.keys()
    values = {name: getattr(workload, name) for name in columns if name != "seq"}
    return Workload(**{name: value for name, value in values.items() if value is not None})


def _settle(done: asyncio.Future[None], error: Exception | None) -> None:
    if done.done():  # nothing awaits it any more (the loop is closing)
        return
    if error is None:
        done.set_result(None)
    else:
        done.set_exception(error)
