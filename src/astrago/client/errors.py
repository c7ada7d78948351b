"""What the client raises: the server's problem+json answer, or no answer at all."""

from __future__ import annotations

from typing import Any


class AstragoClientError(Exception):
    """Every error the client raises."""


class ApiError(AstragoClientError):
    """The server refused a request; `detail` is its RFC 9457 problem detail, `errors` the field errors."""

    def __init__(self, status: int, title: str, detail: str, errors: list[Any] | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.title = title
        self.detail = detail
        self.errors = errors or []


class ServerUnreachable(AstragoClientError):
    """No answer: the server is down, the URL is wrong, or it did not answer in time."""

    def __init__(self, url: str, message: str) -> None:
        super().__init__(message)
        self.url = url
