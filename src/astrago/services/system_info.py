"""What this server is: version, backend, how workloads are isolated, whether it speaks TLS."""

from __future__ import annotations

from pydantic import BaseModel

from astrago import __version__
from astrago.domain.isolation import IsolationMode, IsolationStatus
from astrago.services.context import ServiceContext
from astrago.services.errors import Forbidden


class IsolationOut(BaseModel):
    mode: IsolationMode
    detail: str
    runs_as: str
    how_to_enable: str | None = None


class SystemOut(BaseModel):
    version: str
    backend: str
    isolation: IsolationOut | None  # None while the backend is still opening
    tls: bool


def isolation_out(status: IsolationStatus) -> IsolationOut:
    return IsolationOut(
        mode=status.mode, detail=status.detail, runs_as=status.runs_as, how_to_enable=status.how_to_enable
    )


class SystemInfoService:
    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx

    def describe(self) -> SystemOut:
        settings, isolation = self.ctx.settings, self.ctx.isolation
        return SystemOut(
            version=__version__,
            backend=settings.backend,
            isolation=isolation_out(isolation) if isolation is not None else None,
            tls=settings.tls_cert is not None,
        )


def check_may_run_workloads(ctx: ServiceContext, is_admin: bool) -> None:
    """Single-user mode: without a sandbox a workload could read the platform's database and secrets, so
    only admins (who could anyway) may run workloads."""
    isolation = ctx.isolation
    if isolation is None or not isolation.single_user or is_admin:
        return
    raise Forbidden(
        "this server runs workloads without a sandbox (single-user mode: "
        f"{isolation.detail}), so only admins may run workloads. To let every account run them, "
        f"{isolation.how_to_enable}"
    )
