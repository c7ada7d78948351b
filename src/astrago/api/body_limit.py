"""A size limit on request bodies, enforced while they stream in.

Every route takes at most the setting `max_request_body_bytes` (`ASTRAGO_MAX_REQUEST_BODY_BYTES`, 1 MiB).
A body announced larger by its Content-Length is refused with 413 before a byte of it is read; a body
without one (chunked) is counted as it arrives and refused as soon as it passes the limit, so a huge body
is never held in memory. A route that takes large bodies by design (an upload that streams to disk)
opts out, or sets its own limit, with a decorator on its endpoint:

    @router.patch("/uploads/{upload_id}")
    @body_limit(None)           # no limit: the endpoint reads `request.stream()` and bounds it itself
    async def append(...): ...
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

_ATTRIBUTE = "__astrago_body_limit__"
_UNSET = object()
Endpoint = TypeVar("Endpoint", bound=Callable[..., Any])


def body_limit(max_bytes: int | None) -> Callable[[Endpoint], Endpoint]:
    """Give one endpoint its own body limit in bytes, or none at all (`None`)."""

    def mark(endpoint: Endpoint) -> Endpoint:
        setattr(endpoint, _ATTRIBUTE, max_bytes)
        return endpoint

    return mark


class BodyTooLarge(HTTPException):
    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is larger than this route accepts ({limit} bytes)")


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared, chunked = _body_headers(scope)
        if not declared and not chunked:  # no body: nothing to count, no route to look up
            await self.app(scope, receive, send)
            return
        # The route is known only once the router has run, which is before the endpoint reads its body:
        # the limit is decided at the first read, from the endpoint the router put into the scope.
        limit: int | None = None
        decided = False
        received = 0

        async def limited_receive() -> Message:
            nonlocal decided, limit, received
            if not decided:
                decided = True
                limit = self._limit_for(scope)
                if limit is not None and declared is not None and declared > limit:
                    raise BodyTooLarge(limit)  # before a byte of it is read
            message = await receive()
            if limit is not None and message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        await self.app(scope, limited_receive, send)

    def _limit_for(self, scope: Scope) -> int | None:
        """The limit of the endpoint the router chose for this request (the setting unless it opted out)."""
        chosen = getattr(scope.get("endpoint"), _ATTRIBUTE, _UNSET)
        return self.max_bytes if chosen is _UNSET else chosen  # type: ignore[return-value]


def _body_headers(scope: Scope) -> tuple[int | None, bool]:
    """The announced Content-Length (None when absent or malformed: the HTTP server refuses a malformed
    one itself), and whether the body comes in chunks."""
    length, chunked = None, False
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                length = int(value)
            except ValueError:
                length = None
        elif name == b"transfer-encoding":
            chunked = b"chunked" in value.lower()
    return length, chunked
