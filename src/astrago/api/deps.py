"""Request dependencies: the services and the authenticated caller."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from astrago.auth.principal import Principal
from astrago.services.errors import Unauthenticated
from astrago.services.registry import Services

bearer = HTTPBearer(auto_error=False, description="a login token or an API token (`astrago token create`)")


def services(request: Request) -> Services:
    registry: Services = request.app.state.services
    return registry


ServicesDep = Annotated[Services, Depends(services)]


async def principal(
    registry: ServicesDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthenticated("log in first: send `Authorization: Bearer <token>` (see `astrago login`)")
    return await registry.auth.authenticate(credentials.credentials)


PrincipalDep = Annotated[Principal, Depends(principal)]
