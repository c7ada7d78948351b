"""Who is calling through the gateway: the one place that decides it, for HTTP and WebSocket alike.

Accepted, in order: a bearer token (the CLI, scripts), then the proxy cookie the gateway issued for this
workload in exchange for a one-time ticket (browsers, which send no header when they navigate). A new
way to sign in (a console session cookie) is one more branch here. A cookie travels with every request
the browser makes, so a cookie-authenticated request must come from the server's own origin."""

from __future__ import annotations

import base64
import binascii
from urllib.parse import urlsplit

from starlette.requests import HTTPConnection

from astrago.api.deps import SESSION_COOKIE
from astrago.auth.principal import Principal
from astrago.auth.tokens import TOKEN_PREFIX
from astrago.services.errors import Forbidden, Unauthenticated
from astrago.services.gateway import COOKIE_NAME, GatewayService
from astrago.services.registry import Services

_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# A browser's WebSocket cannot send headers of its own, but it may offer subprotocols: the console offers
# the application protocol and its token as a second one (base64url, unpadded), as Kubernetes does. The
# token so stays out of the URL, and of every access log that records URLs.
TERMINAL_SUBPROTOCOL = "astrago.exec.v1"
BEARER_SUBPROTOCOL_PREFIX = "astrago.bearer."


async def socket_principal(connection: HTTPConnection, services: Services) -> Principal:
    """The caller of a WebSocket to the API: the bearer header (the CLI), the bearer subprotocol (the
    console with a token), or the console's session cookie on a handshake from the server's own origin
    (a cookie travels with any site's WebSocket, so the Origin check is what stops cross-site use)."""
    principal = await _bearer(connection, services)
    if principal is not None:
        return principal
    token = _subprotocol_token(connection)
    if token is not None:
        return await _token_principal(token, services)
    session = connection.cookies.get(SESSION_COOKIE)
    if session:
        check_same_origin(connection)
        return await services.auth.authenticate(session)
    raise Unauthenticated(
        "log in first: send `Authorization: Bearer <token>` (see `astrago login`), or offer the "
        f"subprotocol {BEARER_SUBPROTOCOL_PREFIX}<base64url token>"
    )


def _subprotocol_token(connection: HTTPConnection) -> str | None:
    offered = connection.headers.get("sec-websocket-protocol", "")
    for protocol in (part.strip() for part in offered.split(",")):
        if protocol.startswith(BEARER_SUBPROTOCOL_PREFIX):
            encoded = protocol.removeprefix(BEARER_SUBPROTOCOL_PREFIX)
            try:
                padded = encoded + "=" * (-len(encoded) % 4)
                return base64.b64decode(padded, altchars=b"-_", validate=True).decode()
            except (binascii.Error, UnicodeDecodeError):
                raise Unauthenticated("the bearer subprotocol does not hold a base64url token") from None
    return None


def chosen_subprotocol(connection: HTTPConnection) -> str | None:
    """The application subprotocol to answer with: a browser that offered some closes the connection
    unless the server picks one of them (never the one that carries the token)."""
    offered = [part.strip() for part in connection.headers.get("sec-websocket-protocol", "").split(",")]
    return TERMINAL_SUBPROTOCOL if TERMINAL_SUBPROTOCOL in offered else None


async def _bearer(connection: HTTPConnection, services: Services) -> Principal | None:
    authorization = connection.headers.get("authorization", "")
    scheme, _, credentials = authorization.partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return await _token_principal(credentials.strip(), services)
    return None


async def _token_principal(token: str, services: Services) -> Principal:
    """As for the API's routes: an AstraGo session or API token, else (with SSO) the IdP's access token."""
    if token.startswith(TOKEN_PREFIX) or not services.sso.enabled:
        return await services.auth.authenticate(token)
    return await services.sso.authenticate_bearer(token)


async def proxy_principal(
    connection: HTTPConnection, services: Services, gateway: GatewayService, workload_id: str
) -> Principal:
    authorization = connection.headers.get("authorization", "")
    scheme, _, credentials = authorization.partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        # a page or a client through the gateway sends many requests: the token is looked up once a while
        caller = await gateway.cached_principal(
            credentials.strip(), lambda: services.auth.authenticate(credentials.strip())
        )
        _refuse_read_only_writes(connection, caller)
        return caller
    cookie = connection.cookies.get(COOKIE_NAME)
    if cookie:
        check_same_origin(connection)
        return await gateway.principal_from_cookie(cookie, workload_id)
    raise Unauthenticated(
        "open this workload with `astrago open ID` or the console's Open button, or send "
        "`Authorization: Bearer <token>`"
    )


def _refuse_read_only_writes(connection: HTTPConnection, caller: Principal) -> None:
    """A read-only token reads through the gateway (GET, HEAD, OPTIONS) and nothing more: no other method
    and no WebSocket, which to a notebook or a terminal app is running code."""
    if not caller.read_only:
        return
    if connection.scope["type"] == "websocket" or connection.scope.get("method") not in _SAFE_METHODS:
        raise Forbidden("a read-only token may only read through the gateway (GET, HEAD, OPTIONS)")


def check_same_origin(connection: HTTPConnection) -> None:
    """Refuse a cookie-authenticated WebSocket or unsafe request started by another site's page."""
    is_websocket = connection.scope["type"] == "websocket"
    if not is_websocket and connection.scope.get("method", "GET") in _SAFE_METHODS:
        return
    origin = connection.headers.get("origin")
    if origin is None:
        if is_websocket:  # every browser sends Origin on a WebSocket handshake
            raise Forbidden("a WebSocket through the gateway with a proxy cookie must carry an Origin")
        return  # not sent by a browser's cross-site form or fetch (those carry Origin)
    if urlsplit(origin).netloc.lower() != connection.headers.get("host", "").lower():
        raise Forbidden(f"requests from {origin} may not use this server's proxy session")
