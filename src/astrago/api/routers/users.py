from __future__ import annotations

from fastapi import APIRouter, status

from astrago.api.deps import PrincipalDep, ServicesDep
from astrago.services.schemas import UserCreate, UserOut, UserUpdate

router = APIRouter(prefix="/api/v1/users", tags=["users"])


@router.post("", response_model=UserOut, status_code=status.HTTP_201_CREATED)
async def create_user(body: UserCreate, services: ServicesDep, principal: PrincipalDep) -> UserOut:
    return await services.users.create(principal, body)


@router.get("", response_model=list[UserOut])
async def list_users(services: ServicesDep, principal: PrincipalDep) -> list[UserOut]:
    return list(await services.users.list(principal))


@router.patch("/{username}", response_model=UserOut)
async def update_user(
    username: str, body: UserUpdate, services: ServicesDep, principal: PrincipalDep
) -> UserOut:
    """Disable (`{"active": false}`: its sessions and tokens are revoked) or enable an account (admins)."""
    return await services.users.update(principal, username, body)


@router.delete("/{username}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_user(username: str, services: ServicesDep, principal: PrincipalDep) -> None:
    """Delete an account with no unfinished workloads (admins)."""
    await services.users.delete(principal, username)
