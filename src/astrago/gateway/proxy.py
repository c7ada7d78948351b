"""Forwarding through the gateway: HTTP (bodies streamed both ways, so large uploads, downloads and SSE
pass without buffering; no total timeout) and WebSocket (frames relayed both ways, pings on both legs).

What the workload receives is the caller's request minus what belongs to the platform: the caller's
bearer token and the proxy cookie are removed; the app's own credential (a notebook token) is added."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Iterable
from http.cookies import SimpleCookie

import httpx
from starlette.requests import HTTPConnection, Request
from starlette.responses import Response, StreamingResponse
from starlette.websockets import WebSocket, WebSocketDisconnect
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake
from websockets.typing import Origin, Subprotocol

from astrago.domain.endpoints import proxy_path
from astrago.services.errors import ServiceError
from astrago.services.gateway import COOKIE_NAME, Upstream

log = logging.getLogger(__name__)

# Headers about one hop only (RFC 9110 §7.6.1), and those the gateway sets itself.
_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
        "authorization",
        "cookie",
        "origin",
    }
)
_WEBSOCKET_OWN = frozenset(
    {"sec-websocket-key", "sec-websocket-version", "sec-websocket-extensions", "sec-websocket-protocol"}
)
_BODYLESS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
PING_INTERVAL_S = 20.0
CONNECT_TIMEOUT_S = 10.0


class UpstreamUnreachable(ServiceError):
    status = 502
    title = "Bad gateway"


def _platform_cookies_removed(header: str | None) -> str | None:
    """The Cookie header without the gateway's own cookie (the app must never see a platform credential)."""
    if not header:
        return None
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(header)
    except Exception:  # a cookie header the stdlib cannot parse: forward none rather than guess
        return None
    kept = [f"{name}={morsel.coded_value}" for name, morsel in jar.items() if name != COOKIE_NAME]
    return "; ".join(kept) or None


def upstream_headers(
    connection: HTTPConnection, upstream: Upstream, extra_skip: Iterable[str] = ()
) -> list[tuple[str, str]]:
    skip = _HOP_BY_HOP | set(extra_skip)
    connection_tokens = {t.strip().lower() for t in connection.headers.get("connection", "").split(",")}
    headers = [
        (name, value)
        for name, value in connection.headers.items()
        if name.lower() not in skip and name.lower() not in connection_tokens
    ]
    cookies = _platform_cookies_removed(connection.headers.get("cookie"))
    if cookies:
        headers.append(("cookie", cookies))
    if upstream.authorization:
        headers.append(("authorization", upstream.authorization))
    if "origin" in connection.headers:
        # The gateway checked the browser's origin against its own; the app sees a request from itself.
        headers.append(("origin", _origin(upstream)))
    client = connection.client.host if connection.client else ""
    headers += [
        ("x-forwarded-for", client),
        ("x-forwarded-proto", connection.url.scheme.replace("ws", "http")),
        ("x-forwarded-host", connection.headers.get("host", "")),
        ("x-forwarded-prefix", proxy_path(upstream.workload_id, upstream.port).rstrip("/")),
    ]
    return headers


def _origin(upstream: Upstream) -> str:
    return f"http://{upstream.host}:{upstream.target_port}"


def upstream_path(connection: HTTPConnection, upstream: Upstream, rest: str) -> str:
    """The path the app receives: the whole gateway path for an app that serves under it, else the rest.
    Taken from the raw request path, so escapes such as %2F reach the app as the client sent them."""
    raw = connection.scope.get("raw_path")
    path = raw.decode("latin-1") if raw else connection.url.path
    prefix = proxy_path(upstream.workload_id, upstream.port)
    if not upstream.keeps_prefix:
        path = "/" + path[len(prefix) :] if path.startswith(prefix) else "/" + rest
    query = connection.url.query
    return f"{path}?{query}" if query else path


class HttpForwarder:
    def __init__(self) -> None:
        self.client = httpx.AsyncClient(
            timeout=httpx.Timeout(connect=CONNECT_TIMEOUT_S, read=None, write=None, pool=CONNECT_TIMEOUT_S),
            limits=httpx.Limits(max_connections=None, max_keepalive_connections=64),
            follow_redirects=False,
            trust_env=False,
        )

    async def aclose(self) -> None:
        await self.client.aclose()

    async def forward(self, request: Request, upstream: Upstream, rest: str) -> Response:
        url = f"http://{upstream.host}:{upstream.target_port}{upstream_path(request, upstream, rest)}"
        headers = upstream_headers(request, upstream)
        body: AsyncIterator[bytes] | None = None
        if request.method not in _BODYLESS or "content-length" in request.headers:
            body = request.stream()
        if body is not None and "content-length" not in request.headers:
            headers = [(n, v) for n, v in headers if n.lower() != "content-length"]
        outgoing = self.client.build_request(request.method, url, headers=headers, content=body)
        try:
            response = await self.client.send(outgoing, stream=True)
        except httpx.TransportError as exc:
            raise UpstreamUnreachable(
                f"workload {upstream.workload_id} did not answer on port {upstream.port}: "
                f"{exc or type(exc).__name__}"
            ) from exc
        return self._streamed(response, request, upstream)

    @staticmethod
    def _streamed(response: httpx.Response, request: Request, upstream: Upstream) -> StreamingResponse:
        async def body() -> AsyncIterator[bytes]:
            try:
                async for chunk in response.aiter_raw():
                    yield chunk
            finally:  # also when the caller went away mid-stream: no upstream connection is left open
                await response.aclose()

        streamed = StreamingResponse(body(), status_code=response.status_code)
        raw = [
            (name.lower(), value)
            for name, value in response.headers.multi_items()
            if name.lower() not in _HOP_BY_HOP - {"authorization", "cookie", "origin"}
        ]
        streamed.raw_headers = [
            (
                name.encode("latin-1"),
                _location(value, request, upstream) if name == "location" else value.encode("latin-1"),
            )
            for name, value in raw
        ]
        return streamed


def _location(value: str, request: Request, upstream: Upstream) -> bytes:
    """Redirects stay behind the gateway: the app's own origin, or a root path of an app that does not
    know its prefix, are rewritten under the gateway path."""
    prefix = proxy_path(upstream.workload_id, upstream.port)
    own = _origin(upstream)
    if value.startswith(own):
        value = value[len(own) :] or "/"
        if not upstream.keeps_prefix:
            value = prefix.rstrip("/") + value
    elif value.startswith("/") and not value.startswith("//") and not upstream.keeps_prefix:
        value = prefix.rstrip("/") + value
    return value.encode("latin-1")


async def forward_websocket(
    websocket: WebSocket, upstream: Upstream, rest: str, on_input: Callable[[], None] | None = None
) -> None:
    """Relay frames both ways until either side closes; the other side is then closed with the same code.
    `on_input` is called for each frame the caller sends (a person's activity, for idle reclaim)."""
    url = f"ws://{upstream.host}:{upstream.target_port}{upstream_path(websocket, upstream, rest)}"
    headers = [
        (n, v) for n, v in upstream_headers(websocket, upstream, _WEBSOCKET_OWN) if n.lower() != "origin"
    ]
    requested = [Subprotocol(p) for p in websocket.scope.get("subprotocols") or ()]
    try:
        app = await connect(
            url,
            additional_headers=headers,
            subprotocols=requested or None,
            origin=Origin(_origin(upstream)) if "origin" in websocket.headers else None,
            open_timeout=CONNECT_TIMEOUT_S,
            ping_interval=PING_INTERVAL_S,
            ping_timeout=PING_INTERVAL_S,
            max_size=None,
            compression=None,
        )
    except (OSError, InvalidHandshake, TimeoutError) as exc:
        log.info("websocket to %s port %s failed: %s", upstream.workload_id, upstream.port, exc)
        await websocket.close(code=1011, reason="the workload did not accept the connection")
        return
    async with app:
        await websocket.accept(subprotocol=app.subprotocol)
        await _relay(websocket, app, on_input)


async def _relay(websocket: WebSocket, app: ClientConnection, on_input: Callable[[], None] | None) -> None:
    async def from_caller() -> None:
        try:
            while True:
                message = await websocket.receive()
                if message["type"] == "websocket.disconnect":
                    await app.close(code=message.get("code") or 1000)
                    return
                if on_input is not None:
                    on_input()
                if message.get("text") is not None:
                    await app.send(message["text"])
                elif message.get("bytes") is not None:
                    await app.send(message["bytes"])
        except (WebSocketDisconnect, ConnectionClosed):
            return

    async def from_app() -> None:
        with contextlib.suppress(ConnectionClosed):
            async for frame in app:
                if isinstance(frame, str):
                    await websocket.send_text(frame)
                else:
                    await websocket.send_bytes(frame)
        with contextlib.suppress(Exception):
            await websocket.close(code=app.close_code or 1000, reason=app.close_reason or "")

    tasks = [asyncio.create_task(from_caller()), asyncio.create_task(from_app())]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        with contextlib.suppress(Exception):
            await websocket.close()
