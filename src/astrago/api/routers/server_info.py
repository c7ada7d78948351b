"""`GET /api/v1/system`: what this server is and how it isolates workloads (the console shows it)."""

from __future__ import annotations

from fastapi import APIRouter

from astrago.api.deps import PrincipalDep, ServicesDep
from astrago.services.system_info import SystemOut

router = APIRouter(prefix="/api/v1/system", tags=["system"])


@router.get("", response_model=SystemOut)
async def system_info(services: ServicesDep, principal: PrincipalDep) -> SystemOut:
    return services.system.describe()
