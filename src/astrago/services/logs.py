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
        chunks = self.backend.logs(workload_id, replica, follow, offset=offset)
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
