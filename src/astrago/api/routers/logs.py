"""Live logs as server-sent events: one event per line, its id the byte offset after the line, so a
client that reconnects with `Last-Event-ID` (or `?offset=`) continues exactly where it stopped."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import StreamingResponse

from astrago.api.deps import PrincipalDep
from astrago.domain.loglines import LogLine
from astrago.services.errors import InvalidInput, ServiceError
from astrago.services.logs import LogService

router = APIRouter(prefix="/api/v1/workloads", tags=["workloads"])
HEARTBEAT_S = 15.0  # a comment line on an idle stream, so that no proxy in between closes it


def _events(batch: list[LogLine]) -> bytes:
    return "".join(
        f"id: {line.offset}\ndata: {json.dumps({'offset': line.offset, 'line': line.text})}\n\n"
        for line in batch
    ).encode()


async def _with_heartbeats(batches: AsyncIterator[list[LogLine]]) -> AsyncIterator[bytes]:
    pending: asyncio.Task[list[LogLine]] | None = None
    try:
        while True:
            pending = pending or asyncio.ensure_future(anext(batches))
            done, _ = await asyncio.wait({pending}, timeout=HEARTBEAT_S)
            if not done:
                yield b": keep-alive\n\n"
                continue
            task, pending = pending, None
            try:
                yield _events(task.result())
            except StopAsyncIteration:
                yield b"event: end\ndata: {}\n\n"
                return
            except ServiceError as exc:
                yield f"event: error\ndata: {json.dumps({'detail': exc.detail})}\n\n".encode()
                return
    finally:  # the client went away or the stream ended: leave no reader running
        if pending is not None:
            pending.cancel()
        await batches.aclose()  # type: ignore[attr-defined]


@router.get("/{workload_id}/logs/stream", response_class=StreamingResponse)
async def stream_logs(
    workload_id: str,
    request: Request,
    principal: PrincipalDep,
    replica: Annotated[int, Query(ge=0)] = 0,
    offset: Annotated[int, Query(ge=0, description="resume after this byte offset (an event id)")] = 0,
    follow: bool = True,
    last_event_id: Annotated[str | None, Header()] = None,
) -> StreamingResponse:
    """The replica's log as `text/event-stream`: `data` is `{"offset", "line"}`; `event: end` when it ends."""
    if last_event_id is not None:
        if not last_event_id.isdigit():
            raise InvalidInput("Last-Event-ID must be a byte offset from a previous event")
        offset = int(last_event_id)
    logs: LogService = request.app.state.logs
    batches = await logs.lines(principal, workload_id, replica, offset, follow)
    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(_with_heartbeats(batches), media_type="text/event-stream", headers=headers)
