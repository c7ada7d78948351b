"""Cordon and uncordon a node or one GPU (admins): it takes no new work; what runs there keeps running."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from astrago.api.deps import PrincipalDep, ServicesDep
from astrago.services.schemas import CordonIn, CordonOut, UncordonIn, UncordonOut

router = APIRouter(tags=["system"])

NodeName = Annotated[str, Path(min_length=1, max_length=253)]


@router.post("/api/v1/nodes/{node}/cordon", response_model=CordonOut)
async def cordon(node: NodeName, body: CordonIn, services: ServicesDep, principal: PrincipalDep) -> CordonOut:
    return await services.fences.cordon(principal, node, body.gpu, body.reason)


@router.post("/api/v1/nodes/{node}/uncordon", response_model=UncordonOut)
async def uncordon(
    node: NodeName, body: UncordonIn, services: ServicesDep, principal: PrincipalDep
) -> UncordonOut:
    return UncordonOut(cleared=await services.fences.uncordon(principal, node, body.gpu))
