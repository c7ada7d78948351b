"""Single sign-on endpoints: the browser's code flow, the CLI's token exchange, and the public settings."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse

from astrago.api.deps import CSRF_COOKIE, SESSION_COOKIE, ServicesDep, csrf_token
from astrago.services.errors import ServiceError
from astrago.services.registry import Services
from astrago.services.schemas import SsoConfigOut, SsoTokenIn, TokenOut

router = APIRouter(prefix="/api/v1/auth/oidc", tags=["auth"])
CALLBACK_PATH = "/api/v1/auth/oidc/callback"


def server_url(request: Request, services: Services) -> str:
    """How browsers reach this server: the `public_url` setting, else the URL of this request."""
    configured = services.ctx.settings.public_url
    return (configured or str(request.base_url)).rstrip("/")


@router.get("/config", response_model=SsoConfigOut)
async def config(services: ServicesDep) -> SsoConfigOut:
    """Whether SSO is on, and what the CLI needs for the device grant (public, no login needed)."""
    return await services.sso.config()


@router.get("/login", status_code=302, response_class=RedirectResponse)
async def login(
    request: Request,
    services: ServicesDep,
    next_path: Annotated[str | None, Query(alias="next", max_length=1024)] = None,
) -> RedirectResponse:
    """Start "Sign in with SSO": redirects to the IdP (authorization code + PKCE)."""
    redirect_uri = server_url(request, services) + CALLBACK_PATH
    return RedirectResponse(await services.sso.begin(next_path, redirect_uri), status_code=302)


SIGN_IN_PAGE = "/sign-in"


def wants_html(request: Request) -> bool:
    """A browser navigating (the IdP's redirect), not a script: it is shown the console, not JSON."""
    return "text/html" in request.headers.get("accept", "")


@router.get(
    "/callback",
    status_code=302,
    response_class=RedirectResponse,
    responses={401: {"description": "the sign-in failed (to a browser: back to the sign-in page)"}},
)
async def callback(
    request: Request,
    services: ServicesDep,
    state: Annotated[str, Query(max_length=128)],
    code: Annotated[str | None, Query(max_length=4096)] = None,
    error: Annotated[str | None, Query(max_length=256)] = None,
    error_description: Annotated[str | None, Query(max_length=1024)] = None,
) -> RedirectResponse:
    """Where the IdP sends the browser back: sets the session and CSRF cookies, then goes to `next`. A
    failed sign-in (refused or cancelled at the IdP, expired, forged) sends a browser back to the console's
    sign-in page, which says why; other callers get the problem."""
    base = server_url(request, services)
    try:
        if error is not None or code is None:
            await services.sso.refused_at_idp(error or "no code", error_description)
        assert code is not None
        signed_in = await services.sso.callback(code, state, base + CALLBACK_PATH)
    except ServiceError as exc:
        if not wants_html(request):
            raise
        return RedirectResponse(f"{SIGN_IN_PAGE}?{urlencode({'sso_error': exc.detail})}", status_code=302)
    response = RedirectResponse(signed_in.return_to, status_code=302)
    secret = signed_in.session.token
    assert secret is not None
    secure = base.startswith("https://")
    max_age = services.ctx.settings.session_absolute_s
    response.set_cookie(
        SESSION_COOKIE, secret, max_age=max_age, path="/", httponly=True, secure=secure, samesite="lax"
    )
    # Readable by the console's script, which echoes it in X-CSRF-Token; a cross-site page cannot read it.
    response.set_cookie(
        CSRF_COOKIE,
        csrf_token(secret),
        max_age=max_age,
        path="/",
        httponly=False,
        secure=secure,
        samesite="lax",
    )
    return response


@router.post("/token", response_model=TokenOut)
async def exchange(body: SsoTokenIn, services: ServicesDep) -> TokenOut:
    """Exchange IdP tokens (from the device grant of `astrago login --sso`) for an AstraGo session."""
    return await services.sso.exchange(body)
