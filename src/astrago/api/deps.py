"""Request dependencies: the services and the authenticated caller.

A caller authenticates with one of:
- `Authorization: Bearer <token>`: an AstraGo login session or API token (`ast_...`), or an access token
  from the configured OIDC provider (issuer and audience checked);
- the browser's session cookie (after "Sign in with SSO"), where unsafe methods must also carry the CSRF
  token in the `X-CSRF-Token` header (the `astrago_csrf` cookie's value). Bearer requests need no CSRF
  token: a browser never adds that header on its own, so a cross-site request cannot carry it."""

from __future__ import annotations

import hashlib
import hmac
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer

from astrago.auth.principal import Principal
from astrago.auth.tokens import TOKEN_PREFIX
from astrago.services.errors import Forbidden, Unauthenticated
from astrago.services.registry import Services

SESSION_COOKIE = "astrago_session"
CSRF_COOKIE = "astrago_csrf"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

bearer = HTTPBearer(
    auto_error=False,
    description="a login session or API token (`astrago token create`), or an access token from the IdP",
)
_cookie = APIKeyCookie(
    name=SESSION_COOKIE, auto_error=False, description="the browser's session after SSO sign-in"
)


async def services(request: Request) -> Services:
    # async, though it awaits nothing: FastAPI runs a plain `def` dependency in a worker thread, a thread
    # hop on every request for a dictionary lookup
    registry: Services = request.app.state.services
    return registry


ServicesDep = Annotated[Services, Depends(services)]


BearerDep = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]


def csrf_token(session_secret: str) -> str:
    """The CSRF token that goes with a session cookie: derived from it, so nothing more is stored."""
    return hmac.new(b"astrago-csrf", session_secret.encode(), hashlib.sha256).hexdigest()


async def cookie_principal(request: Request, registry: Services) -> Principal | None:
    """The caller of a cookie-authenticated request, or None when it carries no session cookie.

    Reusable by anything the browser reaches with its cookie (API routes, the /proxy gateway, event
    streams): unsafe methods must echo the CSRF token in `X-CSRF-Token`."""
    secret = request.cookies.get(SESSION_COOKIE)
    if not secret:
        return None
    if request.method not in SAFE_METHODS:
        sent = request.headers.get(CSRF_HEADER, "")
        if not hmac.compare_digest(sent.encode(), csrf_token(secret).encode()):
            raise Forbidden(
                f"missing or wrong CSRF token: send the {CSRF_COOKIE} cookie's value in {CSRF_HEADER}"
            )
    return await registry.auth.authenticate(secret)


async def principal(
    request: Request,
    registry: ServicesDep,
    credentials: BearerDep,
    _cookie_doc: Annotated[str | None, Depends(_cookie)],
) -> Principal:
    if credentials is not None and credentials.scheme.lower() == "bearer":
        token = credentials.credentials
        if token.startswith(TOKEN_PREFIX) or not registry.sso.enabled:
            caller = await registry.auth.authenticate(token)
        else:
            caller = await registry.sso.authenticate_bearer(token)
    else:
        found = await cookie_principal(request, registry)
        if found is None:
            raise Unauthenticated("log in first: send `Authorization: Bearer <token>` (see `astrago login`)")
        caller = found
    if caller.read_only and request.method not in SAFE_METHODS:
        raise Forbidden("this API token is read-only: it may only read (GET)")
    return caller


PrincipalDep = Annotated[Principal, Depends(principal)]
