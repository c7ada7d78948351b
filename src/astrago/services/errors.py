"""Errors that services raise; the API turns each into an RFC 9457 problem+json response."""

from __future__ import annotations


class ServiceError(Exception):
    status: int = 400
    title: str = "Bad request"
    audit_result: str = "error"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail

    def extensions(self) -> dict[str, object]:
        """Extra members of the problem+json body (RFC 9457 extensions), for clients that act on them."""
        return {}


class InvalidInput(ServiceError):
    status = 422
    title = "Invalid input"
    audit_result = "invalid"


class NotFound(ServiceError):
    status = 404
    title = "Not found"
    audit_result = "invalid"


class Conflict(ServiceError):
    status = 409
    title = "Conflict"
    audit_result = "invalid"


class Unauthenticated(ServiceError):
    status = 401
    title = "Not authenticated"
    audit_result = "denied"


class Forbidden(ServiceError):
    status = 403
    title = "Forbidden"
    audit_result = "denied"


class Unavailable(ServiceError):
    status = 503
    title = "Service unavailable"


class NotSupported(ServiceError):
    """The configured backend lacks what the request needs: refused before anything is stored."""

    status = 422
    title = "Not supported by this backend"
    audit_result = "invalid"

    def __init__(self, detail: str, backend: str, missing: list[str]) -> None:
        super().__init__(detail)
        self.backend = backend
        self.missing = missing

    def extensions(self) -> dict[str, object]:
        return {"backend": self.backend, "missing": self.missing}
