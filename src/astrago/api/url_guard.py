"""Refuses a URL that carries a NUL byte (`%00`) in its path or query before any route sees it: no name,
file or PostgreSQL text can hold one, so it could only fail further in."""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from astrago.api.problems import problem


class NulInUrlMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and _has_nul(scope):
            response = problem(
                400, "Bad request", "the URL contains a NUL byte (%00), which no name can hold"
            )
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


def _has_nul(scope: Scope) -> bool:
    query: bytes = scope.get("query_string", b"")
    return "\x00" in scope.get("path", "") or b"%00" in query or b"\x00" in query
