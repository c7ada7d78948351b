from __future__ import annotations

from fastapi import APIRouter, status

from astrago.api.deps import PrincipalDep, ServicesDep
from astrago.services.schemas import LoginIn, TokenCreate, TokenOut, UserOut

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])


@router.post(
    "/login", response_model=TokenOut, responses={401: {"description": "Wrong username or password"}}
)
async def login(body: LoginIn, services: ServicesDep) -> TokenOut:
    return await services.auth.login(body.username, body.password)


@router.get("/me", response_model=UserOut)
async def me(services: ServicesDep, principal: PrincipalDep) -> UserOut:
    return await services.users.me(principal)


@router.post("/tokens", response_model=TokenOut, status_code=status.HTTP_201_CREATED)
async def create_token(body: TokenCreate, services: ServicesDep, principal: PrincipalDep) -> TokenOut:
    return await services.auth.create_token(principal, body)


@router.get("/tokens", response_model=list[TokenOut])
async def list_tokens(services: ServicesDep, principal: PrincipalDep) -> list[TokenOut]:
    return list(await services.auth.list_tokens(principal))


@router.delete("/tokens/{token_id}", status_code=status.HTTP_204_NO_CONTENT)
async def revoke_token(token_id: str, services: ServicesDep, principal: PrincipalDep) -> None:
    await services.auth.revoke_token(principal, token_id)
