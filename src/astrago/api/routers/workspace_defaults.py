"""A workspace's CPU and memory defaults for workloads that do not ask for them."""

from __future__ import annotations

from fastapi import APIRouter

from astrago.api.deps import PrincipalDep, ServicesDep
from astrago.services.schemas import WorkspaceDefaultsOut, WorkspaceDefaultsSet

router = APIRouter(prefix="/api/v1/workspaces/{name}/defaults", tags=["workspaces"])


@router.get("", response_model=WorkspaceDefaultsOut)
async def get_defaults(name: str, services: ServicesDep, principal: PrincipalDep) -> WorkspaceDefaultsOut:
    return await services.workspace_defaults.get(principal, name)


@router.put("", response_model=WorkspaceDefaultsOut)
async def set_defaults(
    name: str, body: WorkspaceDefaultsSet, services: ServicesDep, principal: PrincipalDep
) -> WorkspaceDefaultsOut:
    """Replace the workspace's defaults (managers); fields left out use the platform's rule."""
    return await services.workspace_defaults.set(principal, name, body)
