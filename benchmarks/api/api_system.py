"""What the benchmark needs from a system under test: start it, submit, page through the list, get one."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import httpx
from server_process import ServerProcess


class ApiError(RuntimeError):
    """A request the benchmark relies on did not succeed: the figures would be meaningless."""

    def __init__(self, response: httpx.Response) -> None:
        self.status_code = response.status_code
        self.detail = _detail(response)
        super().__init__(
            f"{response.request.method} {response.request.url.path} answered {response.status_code}: "
            f"{response.text[:500]}"
        )

    @property
    def summary(self) -> str:
        return f"HTTP {self.status_code}: {self.detail}"


def _detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    if isinstance(body, dict):
        return str(body.get("detail") or body)[:200]
    return str(body)[:200]


def checked(response: httpx.Response) -> httpx.Response:
    if response.is_success:
        return response
    raise ApiError(response)


@dataclass(frozen=True)
class Page:
    ids: list[str]
    next_cursor: object | None  # opaque: each system has its own keyset cursor


@dataclass
class SystemInfo:
    name: str
    version: str
    notes: list[str] = field(default_factory=list)


class ApiSystem(Protocol):
    info: SystemInfo
    process: ServerProcess
    max_page: int

    def start(self) -> float:
        """Start the server; seconds until it answers."""

    async def prepare(self, client: httpx.AsyncClient) -> None:
        """Log in and create what submissions need (workspace, project)."""

    async def submit(self, client: httpx.AsyncClient, index: int) -> str:
        """Submit one workload that stays queued; its id."""

    async def list_page(self, client: httpx.AsyncClient, limit: int, cursor: object | None) -> Page:
        """One page, newest first; `cursor` from the previous page's `next_cursor`."""

    async def get(self, client: httpx.AsyncClient, workload_id: str) -> None:
        """Fetch one workload."""

    async def server_gauges(self, client: httpx.AsyncClient) -> dict[str, float]:
        """Server-side figures worth recording (e.g. scheduling cycle time); may be empty."""

    def stop(self) -> None:
        """Stop the server."""
