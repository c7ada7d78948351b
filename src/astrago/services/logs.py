"""Reading a replica's logs as numbered lines, from any offset, following it until it ends."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from astrago.auth.principal import Principal
from astrago.backends.base import Backend, BackendError
from astrago.domain.loglines import LineSplitter, LogLine
from astrago.services.context import ServiceContext
from astrago.services.errors import Conflict, InvalidInput
from astrago.services.workloads import WorkloadService
from astrago.store.repositories import LogArchiveRepository


class LogService:
    def __init__(self, ctx: ServiceContext, backend: Backend, workloads: WorkloadService) -> None:
        self.ctx = ctx
        self.backend = backend
        self.workloads = workloads

    async def lines(
        self, principal: Principal, workload_id: str, replica: int, offset: int, follow: bool
    ) -> AsyncIterator[list[LogLine]]:
        """Batches of complete lines from byte `offset` (a line boundary a reader got from a previous
        line); with `follow`, until the replica ends. Access is checked before the first batch."""
        if offset < 0:
            raise InvalidInput("offset must be 0 or more")
        await self.workloads.check_log_access(principal, workload_id, replica)
        return self._lines(workload_id, replica, offset, follow)

    async def _lines(
        self, workload_id: str, replica: int, offset: int, follow: bool
    ) -> AsyncIterator[list[LogLine]]:
        splitter = LineSplitter(offset=offset)
        chunks = await self.chunks(workload_id, replica, offset, follow)
        try:
            async with contextlib.aclosing(chunks):  # type: ignore[type-var]
                async for chunk in chunks:
                    batch = splitter.feed(chunk)
                    if batch:
                        yield batch
        except BackendError as exc:
            raise Conflict(str(exc)) from exc
        rest = splitter.flush()
        if rest:
            yield rest

    async def raw(
        self, principal: Principal, workload_id: str, replica: int, follow: bool
    ) -> AsyncIterator[bytes]:
        """The replica's output as bytes from the start (the plain-text log endpoint)."""
        await self.workloads.check_log_access(principal, workload_id, replica)
        return await self.chunks(workload_id, replica, 0, follow)

    async def chunks(self, workload_id: str, replica: int, offset: int, follow: bool) -> AsyncIterator[bytes]:
        """From the database archive when the workload's log was archived there, else from the backend."""
        async with self.ctx.read() as session:
            archived = await LogArchiveRepository(session).get(workload_id, replica)
        if archived is not None:
            return _once(archived[offset:])
        return self.backend.logs(workload_id, replica, follow, offset=offset)


async def _once(content: bytes) -> AsyncIterator[bytes]:
    if content:
        yield content
