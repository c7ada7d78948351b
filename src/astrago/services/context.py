"""What every use case needs: sessions, settings, and a way to wake the controllers."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from astrago.auth.principal import Principal
from astrago.backends.base import NO_BACKEND, BackendCapabilities
from astrago.config import Settings
from astrago.domain.isolation import IsolationStatus
from astrago.services.broker import ChangeBroker
from astrago.services.errors import ServiceError
from astrago.store.repositories import AuditRepository
from astrago.store.repositories.changes import CHANGES_RECORDED

log = logging.getLogger(__name__)


@dataclass
class Mutation:
    """The open transaction of one audited change; `target` (e.g. a new id) and `workspace` (the workspace
    acted in, which the audit search filters by) may be filled in once known."""

    session: AsyncSession
    target: str | None
    detail: str | None = None
    workspace: str | None = None


@dataclass
class ServiceContext:
    sessions: async_sessionmaker[AsyncSession]
    settings: Settings
    # Of the configured backend: submissions it cannot run are refused. A context without a backend (an
    # admin command run beside the server) can run nothing.
    capabilities: BackendCapabilities = NO_BACKEND
    wake_controllers: Callable[[], None] = field(default=lambda: None)
    isolation: IsolationStatus | None = None  # set once the backend is open (None: not yet known)
    # SQLite has one writer at a time and its busy handler retries in no order, so under load a writer can
    # starve past the busy timeout ("database is locked"). Queueing this process's writers on a FIFO lock
    # keeps every write waiting its turn; readers are unaffected (WAL).
    serialize_writes: bool = False
    _write_lock: asyncio.Lock = field(default_factory=asyncio.Lock, repr=False)
    # Wakes this process's live event streams after a transaction that recorded a change commits.
    changes: ChangeBroker = field(default_factory=ChangeBroker)

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        async with self.sessions() as session:
            yield session

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncSession]:
        """One write transaction (committed on success, rolled back on error)."""
        if not self.serialize_writes:
            async with self.sessions.begin() as session:
                yield session
        else:
            async with self._write_lock, self.sessions.begin() as session:
                yield session
        if session.info.pop(CHANGES_RECORDED, False):
            self.changes.publish()

    @asynccontextmanager
    async def mutation(
        self,
        principal: Principal | None,
        action: str,
        target: str | None = None,
        workspace: str | None = None,
    ) -> AsyncIterator[Mutation]:
        """One transaction that also records who did what, when, and how it ended.

        A refused or failed change rolls back, and its audit record is written in a transaction of its own
        so that refusals are on record too."""
        actor = principal.username if principal else None
        mutation: Mutation | None = None
        try:
            async with self.write() as session:
                mutation = Mutation(session=session, target=target, workspace=workspace)
                yield mutation
                AuditRepository(session).add(
                    actor, action, mutation.target, "ok", mutation.detail, mutation.workspace
                )
        except ServiceError as exc:
            # a refusal found after the workspace became known (e.g. no role in it) is filed under it
            known = mutation.workspace if mutation else workspace
            await self._audit_failure(actor, action, target, exc.audit_result, exc.detail, known)
            raise
        except Exception as exc:
            known = mutation.workspace if mutation else workspace
            failure = f"{type(exc).__name__}: {exc}"
            await self._audit_failure(actor, action, target, "error", failure, known)
            raise

    async def record_refusal(
        self,
        principal: Principal | None,
        action: str,
        target: str | None,
        error: ServiceError,
        workspace: str | None = None,
    ) -> None:
        """Audit a change refused before its transaction began (e.g. by validation reads)."""
        actor = principal.username if principal else None
        await self._audit_failure(actor, action, target, error.audit_result, error.detail, workspace)

    async def _audit_failure(
        self,
        actor: str | None,
        action: str,
        target: str | None,
        result: str,
        detail: str,
        workspace: str | None,
    ) -> None:
        try:
            async with self.write() as session:
                AuditRepository(session).add(actor, action, target, result, detail[:2000], workspace)
        except Exception:  # the audit must never hide the original error
            log.exception("could not write the audit record of a failed %s", action)
