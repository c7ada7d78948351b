"""GPU telemetry: a workload's GPU use over time, a node's GPUs, the live listing (`astrago top`)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query

from astrago.api.deps import PrincipalDep, ServicesDep
from astrago.monitor.schemas import NodeGpuUsage, TopListing, WorkloadGpuUsage

router = APIRouter(prefix="/api/v1", tags=["telemetry"])

Since = Annotated[
    datetime | None,
    Query(description="start (RFC 3339 with a zone); default: the workload's start, at most a day back"),
]
Until = Annotated[datetime | None, Query(description="end (RFC 3339 with a zone); default: now")]
Step = Annotated[
    int | None, Query(ge=10, le=86400, description="seconds between points; default: about 500 points")
]


@router.get("/workloads/{workload_id}/gpu-usage", response_model=WorkloadGpuUsage)
async def workload_gpu_usage(
    workload_id: str,
    services: ServicesDep,
    principal: PrincipalDep,
    since: Since = None,
    until: Until = None,
    step: Step = None,
) -> WorkloadGpuUsage:
    return await services.telemetry.workload_usage(principal, workload_id, since, until, step)


@router.get("/nodes/{node}/gpu-usage", response_model=NodeGpuUsage)
async def node_gpu_usage(
    node: str,
    services: ServicesDep,
    principal: PrincipalDep,
    since: Since = None,
    until: Until = None,
    step: Step = None,
) -> NodeGpuUsage:
    return await services.telemetry.node_usage(principal, node, since, until, step)


@router.get("/top", response_model=TopListing)
async def top(services: ServicesDep, principal: PrincipalDep) -> TopListing:
    """Live workloads the caller may see, by GPU use in the latest sample period."""
    return await services.telemetry.top(principal)
