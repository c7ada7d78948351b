"""Backend cleanups that must happen eventually: releasing a finished workload's objects (`forget`), and
stopping whatever a failed launch left half-started. A failed cleanup is retried with growing delays,
each failure recorded as a `CleanupFailed` event on the workload, until it succeeds; objects never leak
silently. (Across a restart the list is rebuilt by the backend's orphan report at start.)"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum

log = logging.getLogger(__name__)

BACKOFF_S = (1.0, 2.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0)  # then every 5 minutes


class CleanupKind(StrEnum):
    FORGET = "forget"  # the workload ended: delete its objects, keep its logs
    STOP = "stop"  # a launch failed half-way: stop what it started


@dataclass(slots=True)
class PendingCleanup:
    kind: CleanupKind
    failures: int
    due: float  # time.monotonic() of the next attempt


Record = Callable[[str, str, str], Awaitable[None]]  # (workload id, event type, reason)


class Cleanups:
    def __init__(
        self,
        run: Callable[[str, CleanupKind], Awaitable[None]],
        record: Record,
        backoff_s: tuple[float, ...] = BACKOFF_S,
    ) -> None:
        self._run = run
        self._record = record
        self.backoff_s = backoff_s
        self.pending: dict[str, PendingCleanup] = {}

    async def attempt(self, workload_id: str, kind: CleanupKind) -> bool:
        """One try now; on failure it is kept for a later `retry_due`. True when it succeeded."""
        try:
            await self._run(workload_id, kind)
        except Exception as exc:
            await self._failed(workload_id, kind, exc)
            return False
        if self.pending.pop(workload_id, None) is not None:
            await self._record(workload_id, "CleanedUp", f"{kind} succeeded after earlier failures")
        return True

    async def retry_due(self, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        for workload_id, cleanup in list(self.pending.items()):
            if cleanup.due <= now:
                await self.attempt(workload_id, cleanup.kind)

    async def _failed(self, workload_id: str, kind: CleanupKind, exc: Exception) -> None:
        previous = self.pending.get(workload_id)
        failures = (previous.failures if previous else 0) + 1
        delay = self.backoff_s[min(failures, len(self.backoff_s)) - 1]
        self.pending[workload_id] = PendingCleanup(kind, failures, time.monotonic() + delay)
        message = f"{kind} failed ({type(exc).__name__}: {exc}); retrying in {delay:g}s (failure {failures})"
        log.warning("workload %s: %s", workload_id, message)
        try:
            await self._record(workload_id, "CleanupFailed", message[:2000])
        except Exception:  # the event is for people; the retry is what matters
            log.exception("could not record the failed cleanup of workload %s", workload_id)
