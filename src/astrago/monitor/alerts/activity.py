"""The gateway's record of endpoint traffic: a timestamp per workload in memory on each request, written
to the database every `activity_flush_interval_s` (one small write per interval, not one per request)."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime

from astrago.monitor.alerts.service import now_utc
from astrago.services.context import ServiceContext
from astrago.store.repositories import WorkloadRepository
from astrago.store.repositories.alerts import ReclaimRepository

log = logging.getLogger(__name__)


class ActivityRecorder:
    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx
        self._seen: dict[str, datetime] = {}

    def touch(self, workload_id: str) -> None:
        """A request reached (or a connection opened or closed to) one of the workload's endpoints."""
        self._seen[workload_id] = now_utc()

    async def flush(self) -> int:
        """Write what was seen since the last flush; the number of workloads written."""
        if not self._seen:
            return 0
        seen, self._seen = self._seen, {}
        try:
            async with self.ctx.write() as session:
                known = set((await WorkloadRepository(session).by_ids(list(seen))).keys())
                await ReclaimRepository(session).record_requests(seen, known)
        except Exception:
            for workload_id, at in seen.items():  # keep them for the next flush (newer ones win)
                self._seen.setdefault(workload_id, at)
            raise
        return len(seen)

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.ctx.settings.activity_flush_interval_s)
            try:
                await self.flush()
            except Exception:
                log.exception("could not record endpoint activity; retrying")
