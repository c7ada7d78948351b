"""The live event stream (server-sent events) that the web console follows instead of polling."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Header, Request
from fastapi.sse import EventSourceResponse, ServerSentEvent

from astrago.api.deps import BearerDep, PrincipalDep, ServicesDep, principal
from astrago.auth.principal import Principal
from astrago.services.live_events import LiveEventType

router = APIRouter(prefix="/api/v1/events", tags=["events"])

RECONNECT_MS = 2000


@router.get(
    "/stream",
    response_class=EventSourceResponse,
    responses={200: {"description": "text/event-stream; see the event types below"}},
)
async def stream(
    request: Request,
    services: ServicesDep,
    credentials: BearerDep,
    caller: PrincipalDep,
    last_event_id: Annotated[int | None, Header(alias="Last-Event-ID", ge=0)] = None,
) -> AsyncIterator[ServerSentEvent]:
    """Changes the caller may see, as they happen: `workload` (its current state: status, reason, queue
    position, placement), `node` (a node and its GPUs), plus `ready` when open, `reset` when the resume
    point is gone (refetch everything), `unauthenticated` when the token stops being valid.

    Send the last `id` received as `Last-Event-ID` to resume without loss, also after a server restart.
    Comments (`: ping`) keep idle connections open through proxies."""

    async def authenticate() -> Principal:
        return await principal(request, services, credentials, None)

    async for event in services.live_events.follow(authenticate, last_event_id):
        opening = event.type in (LiveEventType.READY, LiveEventType.RESET)
        yield ServerSentEvent(
            event=event.type.value,
            id=str(event.id),
            data=event.data.model_dump(mode="json") if event.data is not None else {},
            retry=RECONNECT_MS if opening else None,
        )
