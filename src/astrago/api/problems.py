"""RFC 9457 problem details for every error the API returns; nothing leaves as a bare 500."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from astrago.api.validation_messages import human_message
from astrago.services.errors import ServiceError, TooManyRequests

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"


def problem(
    status: int, title: str, detail: str, *, headers: Mapping[str, str] | None = None, **extra: Any
) -> JSONResponse:
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail, **extra}
    headers = dict(headers or {})
    if status == 401:
        headers.setdefault("WWW-Authenticate", "Bearer")
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers or None)


def _allowed_methods(request: Request) -> str:
    """Every method some route takes at this path (Starlette names only those of the first route that
    matched the path, while several routes may share it, one per method)."""
    methods: set[str] = set()
    for route in request.app.router.routes:
        match, _ = route.matches(request.scope)
        if match != Match.NONE:
            methods |= getattr(route, "methods", None) or set()
    return ", ".join(sorted(methods))


def _title(status: int) -> str:
    try:
        return HTTPStatus(status).phrase.capitalize()  # "Not found", as the services write titles
    except ValueError:
        return "Error"


# Names pydantic gives the branches of a union (`int | str`) in an error's location; not field names.
_UNION_BRANCH = re.compile(r"^(int|str|float|bool|constrained-\w+|\w+\[.*\])$")
# Errors that only say a value took the other branch of a union; shown only when nothing better is said.
_WRONG_BRANCH = {"string_type", "int_type", "float_type", "list_type", "dict_type", "bool_type"}


def _body_model(request: Request) -> type[BaseModel] | None:
    """The route's request-body model, to name the fields a mistyped one could have been."""
    route = request.scope.get("route")
    field = getattr(route, "body_field", None)
    model = getattr(getattr(field, "field_info", None), "annotation", None)
    return model if isinstance(model, type) and issubclass(model, BaseModel) else None


def _without_union_branches(error: dict[str, Any]) -> dict[str, Any]:
    loc = tuple(p for p in error.get("loc", ()) if not _UNION_BRANCH.match(str(p)))
    return {**error, "loc": loc}


def _where(error: dict[str, Any]) -> str:
    return ".".join(str(p) for p in error["loc"] if p not in ("body", "query", "path"))


def validation_messages(errors: Sequence[Any], body_model: type[BaseModel] | None = None) -> list[str]:
    """One readable line per invalid field, naming it; for a value that fits neither branch of a union,
    the branch whose complaint says something (a bound, a pattern) rather than "should be a string"."""
    cleaned = [_without_union_branches(e) for e in errors]
    informative = {_where(e) for e in cleaned if e.get("type") not in _WRONG_BRANCH}
    lines: list[str] = []
    for error in cleaned:
        where = _where(error)
        if error.get("type") in _WRONG_BRANCH and any(
            i == where or i.startswith(f"{where}.") for i in informative
        ):
            continue
        line = human_message(error, body_model)
        if line not in lines:
            lines.append(line)
    return lines


# SQLSTATE classes of a database that is down, restarting or dropping connections (08 connection
# exception, 57 operator intervention, e.g. 57P03 "the database system is starting up")
_UNAVAILABLE_SQLSTATE_CLASSES = ("08", "57")


def _database_unavailable(exc: DBAPIError) -> bool:
    if isinstance(exc, OperationalError | InterfaceError) or exc.connection_invalidated:
        return True
    for error in (exc.orig, getattr(exc.orig, "__cause__", None)):
        state = getattr(error, "sqlstate", None)
        if isinstance(state, str) and state[:2] in _UNAVAILABLE_SQLSTATE_CLASSES:
            return True
    return False


def _disk_full(exc: DBAPIError) -> bool:
    """SQLite's SQLITE_FULL, PostgreSQL's 53100 disk_full, MariaDB's 1021/1114 (disk or table full)."""
    message = str(exc.orig).lower()
    state = getattr(exc.orig, "sqlstate", None)
    code = (getattr(exc.orig, "args", None) or (None,))[0]
    return "disk is full" in message or state == "53100" or code in (1021, 1114)


def install_problem_handlers(app: FastAPI) -> None:
    @app.exception_handler(ServiceError)
    async def _service_error(_request: Request, exc: ServiceError) -> JSONResponse:
        response = problem(exc.status, exc.title, exc.detail, **exc.extensions())
        if isinstance(exc, TooManyRequests):
            response.headers["Retry-After"] = str(exc.retry_after_s)
        return response

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = validation_messages(exc.errors(), _body_model(request))
        return problem(422, "Invalid input", "; ".join(errors), errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            headers["Allow"] = _allowed_methods(request)
        return problem(exc.status_code, _title(exc.status_code), str(exc.detail), headers=headers)

    @app.exception_handler(DBAPIError)
    async def _database_error(request: Request, exc: DBAPIError) -> JSONResponse:
        # A database that is busy, restarting or unreachable (including a connection it closed in the
        # middle of a statement) is the client's cue to retry, not a server bug. Handled here rather than
        # by the catch-all, which re-raises after answering and can cost the client its connection.
        if _disk_full(exc):
            log.error("disk full in %s %s: %s", request.method, request.url.path, exc.orig)
            return problem(
                507,
                "Insufficient storage",
                "the server's disk is full (its data directory or the database's); nothing was changed. "
                "Free space, then retry",
            )
        if _database_unavailable(exc):
            log.warning("database error in %s %s: %s", request.method, request.url.path, exc.orig)
            response = problem(
                503, "Service unavailable", "the database is busy or unreachable; retry shortly"
            )
            response.headers["Retry-After"] = "2"
            return response
        log.error("database error in %s %s", request.method, request.url.path, exc_info=exc)
        return problem(500, "Internal error", "the server hit an unexpected error; it is in the server log")

    @app.exception_handler(ConnectionError)
    async def _database_unreachable(request: Request, exc: ConnectionError) -> JSONResponse:
        # the database driver could not even connect (refused, reset): the database is down or restarting
        log.warning("cannot reach the database in %s %s: %s", request.method, request.url.path, exc)
        response = problem(503, "Service unavailable", "the database is unreachable; retry shortly")
        response.headers["Retry-After"] = "2"
        return response

    app.add_middleware(UnexpectedErrorMiddleware)


def internal_error() -> JSONResponse:
    return problem(500, "Internal error", "the server hit an unexpected error; it is in the server log")


class UnexpectedErrorMiddleware:
    """Turns an exception that no handler took into a problem+json 500 and swallows it.

    Starlette's own last-resort handler (`exception_handler(Exception)`) sends its response and then
    re-raises, and uvicorn closes the connection of any request whose application raised: the client's
    next request on that keep-alive connection then fails as well. Answering here, inside that handler,
    keeps the connection usable. A response whose headers are already sent cannot become a 500 any
    more: the exception goes on, and uvicorn cuts the connection, which is how HTTP says the body is
    incomplete (a cleanly ended body would pass for the whole output)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception:
            log.exception("unexpected error in %s %s", scope.get("method"), scope.get("path"))
            if started:
                raise
            await internal_error()(scope, receive, send)
