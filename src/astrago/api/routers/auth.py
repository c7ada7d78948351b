from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, status

from astrago.api.deps import CSRF_COOKIE, SESSION_COOKIE, PrincipalDep, ServicesDep
from astrago.api.routers.sso import server_url
from astrago.services.schemas import LoginIn, LogoutOut, PasswordChange, TokenCreate, TokenOut, UserOut

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


@router.post(
    "/login",
    response_model=TokenOut,
    responses={
        401: {"description": "Wrong username or password"},
        429: {"description": "too many failed logins"},
    },
)
async def login(body: LoginIn, request: Request, services: ServicesDep) -> TokenOut:
    """A login session for a local account (idle and absolute lifetimes: server settings)."""
    return await services.auth.login(body.username, body.password, client_address(request))


@router.post("/logout", response_model=LogoutOut)
async def logout(
    request: Request, response: Response, services: ServicesDep, principal: PrincipalDep
) -> LogoutOut:
    """End this session; for an SSO session, `logout_url` ends the IdP's session too."""
    result = await services.sso.logout(principal, server_url(request, services) + "/")
    response.delete_cookie(SESSION_COOKIE, path="/")
    response.delete_cookie(CSRF_COOKIE, path="/")
    return result


@router.get("/me", response_model=UserOut)
async def me(services: ServicesDep, principal: PrincipalDep) -> UserOut:
    return await services.users.me(principal)


@router.post("/password", status_code=status.HTTP_204_NO_CONTENT)
async def change_password(body: PasswordChange, services: ServicesDep, principal: PrincipalDep) -> None:
    """Change your own password (local accounts); your other login sessions end."""
    await services.users.change_password(principal, body)


@router.post("/tokens", response_model=TokenOut, status_code=status.HTTP_201_CREATED)
async def create_token(body: TokenCreate, services: ServicesDep, principal: PrincipalDep) -> TokenOut:
    return await services.auth.create_token(principal, body)


@router.get("/tokens", response_model=list[TokenOut])
async def list_tokens(
    services: ServicesDep,
    principal: PrincipalDep,
    all_users: Annotated[bool, Query(alias="all", description="everyone's (admins)")] = False,
) -> list[TokenOut]:
    """Live API tokens and login sessions: yours, or everyone's for admins."""
    return list(await services.auth.list_tokens(principal, everyone=all_users))


@router.delete("/tokens/{token_id}", status_code=status.HTTP_204_NO_CONTENT)
async def revoke_token(token_id: str, services: ServicesDep, principal: PrincipalDep) -> None:
    """Revoke a token or session: your own, or anyone's for admins."""
    await services.auth.revoke_token(principal, token_id)
