"""Where a workload's ports answer through the gateway, and a link a browser can open."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request

from astrago.api.deps import PrincipalDep
from astrago.api.routers.proxy import GatewayDep
from astrago.services.gateway import EndpointOut, OpenUrlOut
from astrago.services.rollouts import RolloutRequest, RolloutService
from astrago.services.schemas import WorkloadOut

router = APIRouter(prefix="/api/v1/workloads", tags=["workloads"])


@router.get("/{workload_id}/endpoints", response_model=list[EndpointOut])
async def endpoints(workload_id: str, gateway: GatewayDep, principal: PrincipalDep) -> list[EndpointOut]:
    """Each port of the workload: its gateway path and how many replicas are ready behind it."""
    return await gateway.endpoints(principal, workload_id)


@router.post("/{workload_id}/endpoints/{port}/open", response_model=OpenUrlOut)
async def open_endpoint(
    workload_id: str,
    port: Annotated[int, Path(ge=1, le=65535)],
    gateway: GatewayDep,
    principal: PrincipalDep,
) -> OpenUrlOut:
    """A link for a browser: it carries a one-time ticket (60 s) that the gateway trades for a cookie."""
    return await gateway.open_url(principal, workload_id, port)


@router.post("/{workload_id}/rollout", response_model=WorkloadOut)
async def rollout(
    workload_id: str, body: RolloutRequest, request: Request, principal: PrincipalDep
) -> WorkloadOut:
    """Roll a running service to a new revision (command, image, env): new replicas are ready before
    the old ones drain."""
    rollouts: RolloutService = request.app.state.rollouts
    return await rollouts.roll(principal, workload_id, body)
