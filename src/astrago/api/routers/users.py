from __future__ import annotations

from fastapi import APIRouter, status

from astrago.api.deps import PrincipalDep, ServicesDep
from astrago.services.schemas import UserCreate, UserOut

router = APIRouter(prefix="/api/v1/users", tags=["users"])


@router.post("", response_model=UserOut, status_code=status.HTTP_201_CREATED)
async def create_user(body: UserCreate, services: ServicesDep, principal: PrincipalDep) -> UserOut:
    return await services.users.create(principal, body)


@router.get("", response_model=list[UserOut])
async def list_users(services: ServicesDep, principal: PrincipalDep) -> list[UserOut]:
    return list(await services.users.list(principal))
