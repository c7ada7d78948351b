"""RFC 9457 problem details for every error the API returns; nothing leaves as a bare 500."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from astrago.api.validation_messages import human_message
from astrago.services.errors import ServiceError

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"


def problem(status: int, title: str, detail: str, **extra: Any) -> JSONResponse:
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail, **extra}
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _body_model(request: Request) -> type[BaseModel] | None:
    """The route's request-body model, to name the fields a mistyped one could have been."""
    route = request.scope.get("route")
    field = getattr(route, "body_field", None)
    model = getattr(getattr(field, "field_info", None), "annotation", None)
    return model if isinstance(model, type) and issubclass(model, BaseModel) else None


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
        return problem(exc.status, exc.title, exc.detail)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        body_model = _body_model(request)
        errors = [human_message(e, body_model) for e in exc.errors()]
        return problem(422, "Invalid input", "; ".join(errors), errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        title = {404: "Not found", 405: "Method not allowed"}.get(exc.status_code, "Error")
        return problem(exc.status_code, title, str(exc.detail))

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

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error in %s %s", request.method, request.url.path)
        return problem(500, "Internal error", "the server hit an unexpected error; it is in the server log")
