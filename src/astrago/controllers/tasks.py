"""Backend calls as bounded concurrent tasks, one per workload, so that one slow call (a Kubernetes start
waiting for a previous run's objects to go) never holds up the others or the controller's loop."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)


class WorkloadTasks:
    """At most `limit` calls run at once; at most one per workload id is in flight."""

    def __init__(self, name: str, limit: int, on_done: Callable[[], None] = lambda: None) -> None:
        self.name = name
        self._slots = asyncio.Semaphore(limit)
        self._running: dict[str, asyncio.Task[None]] = {}
        self._on_done = on_done

    def __contains__(self, workload_id: str) -> bool:
        return workload_id in self._running

    def __len__(self) -> int:
        return len(self._running)

    def spawn(self, workload_id: str, call: Callable[[], Awaitable[None]]) -> bool:
        """Start `call` unless one for this workload is in flight. Its failures are logged, never raised:
        the controller's next cycle finds the work still undone in the database and asks again."""
        if workload_id in self._running:
            return False
        task = asyncio.create_task(self._run(workload_id, call), name=f"{self.name}-{workload_id}")
        self._running[workload_id] = task
        return True

    async def _run(self, workload_id: str, call: Callable[[], Awaitable[None]]) -> None:
        try:
            async with self._slots:
                await call()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("%s of workload %s failed; retried on a later cycle", self.name, workload_id)
        finally:
            self._running.pop(workload_id, None)
            self._on_done()

    async def drain(self) -> None:
        """Wait for everything in flight (tests, and an orderly stop)."""
        while self._running:
            await asyncio.gather(*list(self._running.values()), return_exceptions=True)

    def cancel(self) -> None:
        for task in self._running.values():
            task.cancel()
