from __future__ import annotations

from fastapi import APIRouter, status

from astrago.api.deps import PrincipalDep, ServicesDep
from astrago.services.schemas import MemberOut, MemberSet, QuotaOut, QuotaSet, WorkspaceCreate, WorkspaceOut

router = APIRouter(prefix="/api/v1/workspaces", tags=["workspaces"])


@router.post("", response_model=WorkspaceOut, status_code=status.HTTP_201_CREATED)
async def create_workspace(
    body: WorkspaceCreate, services: ServicesDep, principal: PrincipalDep
) -> WorkspaceOut:
    return await services.workspaces.create(principal, body)


@router.get("", response_model=list[WorkspaceOut])
async def list_workspaces(services: ServicesDep, principal: PrincipalDep) -> list[WorkspaceOut]:
    return list(await services.workspaces.list(principal))


@router.get("/{name}", response_model=WorkspaceOut)
async def get_workspace(name: str, services: ServicesDep, principal: PrincipalDep) -> WorkspaceOut:
    return await services.workspaces.get(principal, name)


@router.delete("/{name}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_workspace(name: str, services: ServicesDep, principal: PrincipalDep) -> None:
    await services.workspaces.delete(principal, name)


@router.put("/{name}/members", response_model=MemberOut)
async def set_member(name: str, body: MemberSet, services: ServicesDep, principal: PrincipalDep) -> MemberOut:
    return await services.workspaces.set_member(principal, name, body)


@router.delete("/{name}/members/{username}", status_code=status.HTTP_204_NO_CONTENT)
async def remove_member(name: str, username: str, services: ServicesDep, principal: PrincipalDep) -> None:
    await services.workspaces.remove_member(principal, name, username)


@router.get("/{name}/quota", response_model=QuotaOut)
async def get_quota(name: str, services: ServicesDep, principal: PrincipalDep) -> QuotaOut:
    return await services.quotas.get(principal, name)


@router.put("/{name}/quota", response_model=QuotaOut)
async def set_quota(name: str, body: QuotaSet, services: ServicesDep, principal: PrincipalDep) -> QuotaOut:
    return await services.quotas.set(principal, name, body)
