"""Errors that services raise; the API turns each into an RFC 9457 problem+json response."""

from __future__ import annotations

from typing import Any


class ServiceError(Exception):
    status: int = 400
    title: str = "Bad request"
    audit_result: str = "error"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail

    def extensions(self) -> dict[str, Any]:
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


class TooManyRequests(ServiceError):
    status = 429
    title = "Too many requests"
    audit_result = "denied"

    def __init__(self, detail: str, retry_after_s: int) -> None:
        super().__init__(detail)
        self.retry_after_s = retry_after_s


class Gone(ServiceError):
    status = 410
    title = "Gone"
    audit_result = "invalid"


class PayloadTooLarge(ServiceError):
    status = 413
    title = "Payload too large"
    audit_result = "invalid"


class UnsupportedMediaType(ServiceError):
    status = 415
    title = "Unsupported media type"
    audit_result = "invalid"


class Locked(ServiceError):
    status = 423
    title = "Locked"
    audit_result = "invalid"


class ChecksumMismatch(ServiceError):
    """TUS checksum extension: the chunk did not match its Upload-Checksum and was discarded."""

    status = 460
    title = "Checksum mismatch"
    audit_result = "invalid"


class InsufficientStorage(ServiceError):
    status = 507
    title = "Insufficient storage"
    audit_result = "error"


class NotSupported(ServiceError):
    """The configured backend lacks what the request needs: refused before anything is stored."""

    status = 422
    title = "Not supported by this backend"
    audit_result = "invalid"

    def __init__(self, detail: str, backend: str, missing: list[str]) -> None:
        super().__init__(detail)
        self.backend = backend
        self.missing = missing

    def extensions(self) -> dict[str, Any]:
        return {"backend": self.backend, "missing": self.missing}
