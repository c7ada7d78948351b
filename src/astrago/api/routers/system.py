"""Nodes, audit trail, health and metrics."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST
from pydantic import AwareDatetime

from astrago.api.deps import PrincipalDep, ServicesDep
from astrago.api.metrics import render_metrics
from astrago.api.problems import problem
from astrago.domain.audit import AuditFilter, AuditResult
from astrago.services.bounds import INT64_MAX
from astrago.services.schemas import AuditOut, NodeOut

router = APIRouter(tags=["system"])


@router.get("/api/v1/nodes", response_model=list[NodeOut])
async def list_nodes(services: ServicesDep, principal: PrincipalDep) -> list[NodeOut]:
    return list(await services.nodes.list(principal))


@router.get("/api/v1/audit", response_model=list[AuditOut])
async def audit(
    services: ServicesDep,
    principal: PrincipalDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    before: Annotated[
        int | None,
        Query(ge=0, le=INT64_MAX, description="only records older than this id (the next page: the last id)"),
    ] = None,
    actor: Annotated[str | None, Query(max_length=64, description="who acted (a username)")] = None,
    action: Annotated[
        str | None,
        Query(max_length=64, description="an action (workload.submit) or a family (workload: workload.*)"),
    ] = None,
    target: Annotated[str | None, Query(max_length=256, description="what was acted on, exactly")] = None,
    workspace: Annotated[str | None, Query(max_length=64, description="the workspace acted in")] = None,
    result: Annotated[AuditResult | None, Query(description="how it ended")] = None,
    since: Annotated[AwareDatetime | None, Query(description="from this time (inclusive)")] = None,
    until: Annotated[AwareDatetime | None, Query(description="before this time")] = None,
) -> list[AuditOut]:
    """The audit trail, newest first, filtered on the server; every filter given must match."""
    matching = AuditFilter(
        actor=actor,
        action=action,
        target=target,
        workspace=workspace,
        result=result,
        since=since,
        until=until,
    )
    return list(await services.audit.recent(principal, limit, before, matching))


@router.get("/healthz", include_in_schema=False)
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", include_in_schema=False, response_model=None)
async def readyz(request: Request, services: ServicesDep) -> Response | dict[str, str]:
    if not getattr(request.app.state, "ready", False):
        return problem(503, "Not ready", "the server is still starting")
    try:
        await services.health.database_answers()
    except Exception as exc:
        return problem(503, "Not ready", f"the database does not answer: {type(exc).__name__}")
    return {"status": "ready"}


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request, services: ServicesDep) -> Response:
    body = render_metrics(await services.nodes.gauges(), request.app.state.controller_metrics.registry)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
