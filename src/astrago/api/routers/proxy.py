"""`/proxy/<workload>/<port>/...`: the authenticated gateway to a workload's port (HTTP, WebSocket, SSE)."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import parse_qsl, urlencode

from fastapi import APIRouter, Depends, Path, Request, WebSocket
from fastapi.responses import RedirectResponse, Response

from astrago.api.body_limit import body_limit
from astrago.api.deps import ServicesDep
from astrago.api.problems import problem
from astrago.api.proxy_auth import proxy_principal
from astrago.domain.endpoints import PROXY_PREFIX, proxy_path
from astrago.gateway.proxy import HttpForwarder, forward_websocket
from astrago.services.errors import ServiceError
from astrago.services.gateway import COOKIE_NAME, COOKIE_TTL_S, TICKET_PARAM, GatewayService

router = APIRouter(prefix=PROXY_PREFIX, tags=["gateway"], include_in_schema=False)
_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
PortPath = Annotated[int, Path(ge=1, le=65535)]


def gateway(request: Request) -> GatewayService:
    service: GatewayService = request.app.state.gateway
    return service


def forwarder(request: Request) -> HttpForwarder:
    http: HttpForwarder = request.app.state.http_forwarder
    return http


GatewayDep = Annotated[GatewayService, Depends(gateway)]


@router.api_route("/{workload_id}/{port}", methods=_METHODS)
async def without_slash(workload_id: str, port: PortPath, request: Request) -> Response:
    """Relative links of an app resolve against its base URL only with the trailing slash."""
    query = f"?{request.url.query}" if request.url.query else ""
    return RedirectResponse(proxy_path(workload_id, port) + query, status_code=308)


@router.api_route("/{workload_id}/{port}/{rest:path}", methods=_METHODS)
@body_limit(None)  # streamed to the workload as it arrives: its own app decides what it accepts
async def proxy_http(
    workload_id: str,
    port: PortPath,
    rest: str,
    request: Request,
    services: ServicesDep,
    gateway: GatewayDep,
    http: Annotated[HttpForwarder, Depends(forwarder)],
) -> Response:
    ticket = request.query_params.get(TICKET_PARAM)
    if ticket is not None:
        return await _exchange(request, gateway, workload_id, ticket)
    principal = await proxy_principal(request, services, gateway, workload_id)
    upstream = await gateway.upstream(principal, workload_id, port)
    services.activity.touch(workload_id)  # endpoint traffic: idle reclaim leaves it running
    return await http.forward(request, upstream, rest)


async def _exchange(request: Request, gateway: GatewayService, workload_id: str, ticket: str) -> Response:
    """Ticket → proxy cookie, then the same URL without the ticket (so it leaves no trace in the app)."""
    _, cookie = await gateway.exchange_ticket(ticket, workload_id)
    query = urlencode([(k, v) for k, v in parse_qsl(request.url.query) if k != TICKET_PARAM])
    response = RedirectResponse(request.url.path + (f"?{query}" if query else ""), status_code=303)
    response.set_cookie(
        COOKIE_NAME,
        cookie,
        max_age=int(COOKIE_TTL_S),
        path=f"{PROXY_PREFIX}/{workload_id}/",
        secure=request.url.scheme == "https",
        httponly=True,
        samesite="lax",
    )
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


@router.websocket("/{workload_id}/{port}/{rest:path}")
async def proxy_websocket(workload_id: str, port: int, rest: str, websocket: WebSocket) -> None:
    services = websocket.app.state.services
    service: GatewayService = websocket.app.state.gateway
    try:
        principal = await proxy_principal(websocket, services, service, workload_id)
        upstream = await service.upstream(principal, workload_id, port)
    except ServiceError as exc:
        await deny(websocket, exc)
        return
    services.activity.touch(workload_id)
    try:
        await forward_websocket(websocket, upstream, rest)
    finally:
        services.activity.touch(workload_id)  # a long session counts as traffic until it closes


async def deny(websocket: WebSocket, exc: ServiceError) -> None:
    """An HTTP problem as the handshake's answer where the server can send one, else a policy close."""
    if "websocket.http.response" in websocket.scope.get("extensions", {}):
        await websocket.send_denial_response(problem(exc.status, exc.title, exc.detail, **exc.extensions()))
    else:
        await websocket.close(code=1008, reason=exc.detail[:120])
