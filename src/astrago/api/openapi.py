"""The OpenAPI document tells the truth about errors: every operation lists the error statuses it can
answer, each as `application/problem+json` with the Problem schema, so a generated client handles them.

It is done once, on the generated document, so routes that any part of AstraGo adds are covered
without declaring anything. A route that answers a status the rules below do not foresee (e.g. 429
from a rate limit) declares it in `responses=` as usual; its content is filled in the same way."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from astrago.api.problems import PROBLEM_JSON

PROBLEM_REF = "#/components/schemas/Problem"
PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "description": "An RFC 9457 problem: what went wrong, in words a person can act on.",
    "type": "object",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string", "description": "always about:blank: the status says the kind"},
        "title": {"type": "string", "description": "the status in words, e.g. Not found"},
        "status": {"type": "integer", "description": "the HTTP status, repeated"},
        "detail": {"type": "string", "description": "what went wrong and how to fix it"},
        "errors": {
            "type": "array",
            "items": {"type": "string"},
            "description": "422 only: one line per invalid field, naming it",
        },
    },
}
DESCRIPTIONS = {
    400: "Malformed request (e.g. a NUL byte in the URL, a body that cannot be read)",
    401: "Not logged in, or the token is unknown, expired or revoked",
    403: "Logged in, but the role held does not allow this",
    404: "It does not exist, or it is in a workspace you are not a member of (the same answer for both)",
    409: "It conflicts with the current state (e.g. already exists, already ended, still running)",
    413: "The request body is larger than the route accepts",
    422: "Invalid input: `errors` names each invalid field",
    429: "Too many requests: retry after the time in Retry-After",
    500: "An unexpected error; the server log has the details",
    503: "The database is busy or unreachable; retry after the time in Retry-After",
}
_MUTATIONS = {"post", "put", "patch", "delete"}


def error_statuses(method: str, operation: dict[str, Any]) -> set[int]:
    """The error statuses one operation can answer, from what it takes."""
    statuses = {400, 500, 503}
    parameters = operation.get("parameters", [])
    takes_input = bool(parameters) or "requestBody" in operation
    if operation.get("security"):
        statuses |= {401, 403}
    if takes_input:
        statuses |= {404, 422}  # a path, query or body names something that may not exist (or be yours)
    if "requestBody" in operation:
        statuses.add(413)
    if method in _MUTATIONS:
        statuses.add(409)
    return statuses


def _problem_response(status: int, existing: dict[str, Any] | None) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": (existing or {}).get("description") or DESCRIPTIONS.get(status, "Error"),
        "content": {PROBLEM_JSON: {"schema": {"$ref": PROBLEM_REF}}},
    }
    if status == 401:
        response["headers"] = {"WWW-Authenticate": {"schema": {"type": "string"}, "description": "Bearer"}}
    if status in (429, 503):
        response["headers"] = {"Retry-After": {"schema": {"type": "integer"}, "description": "seconds"}}
    return response


def document_problems(document: dict[str, Any]) -> dict[str, Any]:
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    schemas["Problem"] = PROBLEM_SCHEMA
    for operations in document.get("paths", {}).values():
        for method, operation in operations.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            responses: dict[str, Any] = operation["responses"]
            declared = {int(code) for code in responses if code.isdigit() and int(code) >= 400}
            for status in sorted(declared | error_statuses(method, operation)):
                responses[str(status)] = _problem_response(status, responses.get(str(status)))
            operation["responses"] = dict(sorted(responses.items()))
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)  # the 422 answer is a Problem
    return document


def install_problem_openapi(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            generated = get_openapi(
                title=app.title, version=app.version, description=app.description, routes=app.routes
            )
            app.openapi_schema = document_problems(generated)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
