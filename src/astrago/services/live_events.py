"""Live events: what a caller may see of the change feed, as it happens, resumable after a reconnect.

Each event carries the subject's *current* state (not a delta), so a client just replaces what it holds;
a change repeated after a reconnect or merged with the next one does no harm."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from pydantic import BaseModel

from astrago.auth.principal import Principal
from astrago.domain.changes import ChangeKind, FeedCursor
from astrago.domain.enums import WorkspaceRole
from astrago.services.context import ServiceContext
from astrago.services.errors import Unauthenticated
from astrago.services.nodes import NodeService
from astrago.services.schemas import NodeOut, WorkloadOut
from astrago.services.workloads import workload_out
from astrago.store.models import Change
from astrago.store.repositories import ChangeRepository, WorkloadRepository

BATCH = 500
# How often a stream looks at the feed without being woken: catches changes committed by another
# process (an API-only server beside the controllers), and missing ids that may still commit.
RECHECK_S = 5.0
GAP_RECHECK_S = 0.5
# How often a stream re-checks its token, so a revoked or expired one, or a changed membership, is
# noticed on an open stream too.
REAUTHENTICATE_S = 30.0
RETENTION = timedelta(days=1)


class LiveEventType(StrEnum):
    READY = "ready"  # the stream is open; its id is where a reconnect resumes
    RESET = "reset"  # the resume point is no longer known (pruned, or another database): refetch all
    WORKLOAD = "workload"  # data: WorkloadOut
    NODE = "node"  # data: NodeOut
    UNAUTHENTICATED = "unauthenticated"  # the token stopped being valid; data: the reason; the stream ends


class LiveEventMessage(BaseModel):
    detail: str


@dataclass(frozen=True)
class LiveEvent:
    type: LiveEventType
    id: int
    data: WorkloadOut | NodeOut | LiveEventMessage | None = None


class LiveEventService:
    def __init__(self, ctx: ServiceContext, nodes: NodeService) -> None:
        self.ctx = ctx
        self.nodes = nodes

    async def follow(
        self, authenticate: Callable[[], Awaitable[Principal]], last_event_id: int | None
    ) -> AsyncIterator[LiveEvent]:
        """Events from after `last_event_id` (or from now), until the caller stops listening.

        `authenticate` gives the caller's current principal; it is asked again every REAUTHENTICATE_S."""
        principal = await authenticate()
        reauthenticate_at = time.monotonic() + REAUTHENTICATE_S
        with self.ctx.changes.subscribe() as wakeup:
            cursor, resumed = await self._start(last_event_id)
            yield LiveEvent(LiveEventType.READY if resumed else LiveEventType.RESET, cursor.last)
            while True:
                wakeup.clear()
                async with self.ctx.read() as session:
                    batch = await ChangeRepository(session).after(cursor.last, list(cursor.gaps), BATCH)
                for event in await self._events(principal, batch):
                    yield event
                cursor.advance((c.id for c in batch), time.monotonic())
                if len(batch) == BATCH:
                    continue
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wakeup.wait(), GAP_RECHECK_S if cursor.gaps else RECHECK_S)
                if time.monotonic() >= reauthenticate_at:
                    try:
                        principal = await authenticate()
                    except Unauthenticated as exc:
                        yield LiveEvent(
                            LiveEventType.UNAUTHENTICATED, cursor.last, LiveEventMessage(detail=exc.detail)
                        )
                        return
                    reauthenticate_at = time.monotonic() + REAUTHENTICATE_S

    async def _start(self, last_event_id: int | None) -> tuple[FeedCursor, bool]:
        async with self.ctx.read() as session:
            changes = ChangeRepository(session)
            latest = await changes.latest_id()
            if last_event_id is None:
                return FeedCursor(latest), True
            oldest = await changes.oldest_id()
        known = last_event_id <= latest and (oldest is None or last_event_id >= oldest - 1)
        return FeedCursor(last_event_id if known else latest), known

    async def _events(self, principal: Principal, batch: Sequence[Change]) -> list[LiveEvent]:
        """One event per subject (its latest id), oldest first, only those the caller may see."""
        latest: dict[tuple[str, str], int] = {}
        for change in batch:
            latest[(change.kind, change.subject)] = change.id
        if not latest:
            return []
        workload_ids = [s for (k, s) in latest if k == ChangeKind.WORKLOAD]
        node_names = {s for (k, s) in latest if k == ChangeKind.NODE}
        payloads: dict[tuple[str, str], WorkloadOut | NodeOut] = {}
        if workload_ids:
            async with self.ctx.read() as session:
                workloads = await WorkloadRepository(session).by_ids(workload_ids)
                for workload in workloads.values():
                    if principal.can(workload.workspace_id, WorkspaceRole.VIEWER):
                        payloads[(ChangeKind.WORKLOAD, workload.id)] = workload_out(workload)
        if node_names:
            for node in await self.nodes.list(principal):
                if node.name in node_names:
                    payloads[(ChangeKind.NODE, node.name)] = node
        events = []
        for key, change_id in sorted(latest.items(), key=lambda item: item[1]):
            payload = payloads.get(key)
            if payload is not None:
                kind = LiveEventType.WORKLOAD if key[0] == ChangeKind.WORKLOAD else LiveEventType.NODE
                events.append(LiveEvent(kind, change_id, payload))
        return events

    async def prune(self, now: datetime | None = None) -> int:
        """Forget changes older than RETENTION (a client away longer gets `reset` and refetches)."""
        before = (now or datetime.now(UTC)) - RETENTION
        async with self.ctx.write() as session:
            return await ChangeRepository(session).prune(before)
