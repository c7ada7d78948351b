"""Who is calling through the gateway: the one place that decides it, for HTTP and WebSocket alike.

Accepted, in order: a bearer token (the CLI, scripts), then the proxy cookie the gateway issued for this
workload in exchange for a one-time ticket (browsers, which send no header when they navigate). A new
way to sign in (a console session cookie) is one more branch here. A cookie travels with every request
the browser makes, so a cookie-authenticated request must come from the server's own origin."""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.requests import HTTPConnection

from astrago.auth.principal import Principal
from astrago.services.errors import Forbidden, Unauthenticated
from astrago.services.gateway import COOKIE_NAME, GatewayService
from astrago.services.registry import Services

_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


async def bearer_principal(connection: HTTPConnection, services: Services) -> Principal:
    """The caller of a WebSocket or request authenticated by its `Authorization: Bearer` header."""
    principal = await _bearer(connection, services)
    if principal is None:
        raise Unauthenticated("log in first: send `Authorization: Bearer <token>` (see `astrago login`)")
    return principal


async def _bearer(connection: HTTPConnection, services: Services) -> Principal | None:
    authorization = connection.headers.get("authorization", "")
    scheme, _, credentials = authorization.partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return await services.auth.authenticate(credentials.strip())
    return None


async def proxy_principal(
    connection: HTTPConnection, services: Services, gateway: GatewayService, workload_id: str
) -> Principal:
    authorization = connection.headers.get("authorization", "")
    scheme, _, credentials = authorization.partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        # a page or a client through the gateway sends many requests: the token is looked up once a while
        return await gateway.cached_principal(
            credentials.strip(), lambda: services.auth.authenticate(credentials.strip())
        )
    cookie = connection.cookies.get(COOKIE_NAME)
    if cookie:
        check_same_origin(connection)
        return await gateway.principal_from_cookie(cookie, workload_id)
    raise Unauthenticated(
        "open this workload with `astrago open ID` or the console's Open button, or send "
        "`Authorization: Bearer <token>`"
    )


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
