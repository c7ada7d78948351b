from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Query, Request, status
from fastapi.responses import StreamingResponse

from astrago.api.deps import PrincipalDep, ServicesDep
from astrago.api.streams import primed
from astrago.backends.base import BackendError
from astrago.domain.enums import WorkloadKind, WorkloadStatus
from astrago.services.bounds import INT64_MAX
from astrago.services.errors import Conflict
from astrago.services.logs import LogService
from astrago.services.schemas import EventOut, WorkloadOut, WorkloadPageOut, WorkloadSubmit

router = APIRouter(prefix="/api/v1/workloads", tags=["workloads"])


@router.post("", response_model=WorkloadOut, status_code=status.HTTP_201_CREATED)
async def submit(body: WorkloadSubmit, services: ServicesDep, principal: PrincipalDep) -> WorkloadOut:
    return await services.workloads.submit(principal, body)


@router.get("", response_model=WorkloadPageOut)
async def list_workloads(
    services: ServicesDep,
    principal: PrincipalDep,
    workspace: str | None = None,
    state: Annotated[list[WorkloadStatus] | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[
        int | None, Query(ge=0, le=INT64_MAX, description="next_cursor of the previous page")
    ] = None,
    kind: Annotated[list[WorkloadKind] | None, Query()] = None,
    owner: Annotated[str | None, Query(description="the submitter's username")] = None,
) -> WorkloadPageOut:
    return await services.workloads.list(principal, workspace, state, limit, cursor, kind, owner)


@router.get("/{workload_id}", response_model=WorkloadOut)
async def get_workload(workload_id: str, services: ServicesDep, principal: PrincipalDep) -> WorkloadOut:
    return await services.workloads.get(principal, workload_id)


@router.post("/{workload_id}/cancel", response_model=WorkloadOut)
async def cancel(workload_id: str, services: ServicesDep, principal: PrincipalDep) -> WorkloadOut:
    return await services.workloads.cancel(principal, workload_id)


@router.get("/{workload_id}/events", response_model=list[EventOut])
async def events(workload_id: str, services: ServicesDep, principal: PrincipalDep) -> list[EventOut]:
    return list(await services.workloads.events(principal, workload_id))


@router.get(
    "/{workload_id}/logs",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"text/plain": {"schema": {"type": "string"}}}, "description": "the output"},
        409: {"description": "The replica has no logs: it has not started, or it failed to start"},
    },
)
async def logs(
    workload_id: str,
    request: Request,
    services: ServicesDep,
    principal: PrincipalDep,
    replica: Annotated[int, Query(ge=0)] = 0,
    follow: bool = False,
) -> StreamingResponse:
    """The replica's output as plain text; with `follow=true` the response stays open until it ends."""
    logs: LogService = request.app.state.logs
    workload = await services.workloads.check_log_access(principal, workload_id, replica)
    try:
        # a stream that cannot be served is refused before its headers, not cut after a 200
        chunks = await primed(await logs.raw(principal, workload_id, replica, follow))
    except BackendError as exc:
        why = f" ({workload.status.value.lower()}: {workload.reason})" if workload.reason else ""
        raise Conflict(f"workload {workload_id} replica {replica} has no logs to show{why}: {exc}") from exc

    async def stream() -> AsyncIterator[bytes]:
        async for chunk in chunks:
            if await request.is_disconnected():
                break
            yield chunk

    return StreamingResponse(stream(), media_type="text/plain; charset=utf-8")
