"""A workspace's defaults for the CPU and memory of workloads that do not ask (managers set them)."""

from __future__ import annotations

from dataclasses import asdict

from astrago.auth.principal import Principal
from astrago.domain.defaults import WorkloadDefaults
from astrago.domain.enums import WorkspaceRole
from astrago.domain.resources import ResourceParseError, parse_cpu_milli, parse_memory_mib
from astrago.services.context import ServiceContext
from astrago.services.errors import InvalidInput
from astrago.services.schemas import MAX_CPU_MILLI, MAX_MEMORY_MIB, WorkspaceDefaultsOut, WorkspaceDefaultsSet
from astrago.services.workspaces import resolve_workspace, workspace_defaults


def _out(name: str, defaults: WorkloadDefaults) -> WorkspaceDefaultsOut:
    return WorkspaceDefaultsOut(workspace=name, **asdict(defaults))


def _parsed(request: WorkspaceDefaultsSet) -> WorkloadDefaults:
    def cpu(field: str, value: float | str | None) -> int | None:
        if value is None:
            return None
        milli = parse_cpu_milli(value)
        if not 1 <= milli <= MAX_CPU_MILLI:
            raise InvalidInput(f"{field} must be between 1m and {MAX_CPU_MILLI // 1000} cores, got {value}")
        return milli

    def memory(field: str, value: int | str | None) -> int | None:
        if value is None:
            return None
        mib = parse_memory_mib(value)
        if not 1 <= mib <= MAX_MEMORY_MIB:
            raise InvalidInput(f"{field} must be between 1Mi and 64Ti, got {value}")
        return mib

    try:
        return WorkloadDefaults(
            cpu_milli=cpu("cpu", request.cpu),
            memory_mib=memory("memory", request.memory),
            cpu_milli_per_gpu=cpu("cpu_per_gpu", request.cpu_per_gpu),
            memory_mib_per_gpu=memory("memory_per_gpu", request.memory_per_gpu),
        )
    except ResourceParseError as exc:
        raise InvalidInput(str(exc)) from exc


class WorkspaceDefaultsService:
    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx

    async def get(self, principal: Principal, name: str) -> WorkspaceDefaultsOut:
        async with self.ctx.read() as session:
            workspace = await resolve_workspace(session, principal, name, WorkspaceRole.VIEWER)
            return _out(workspace.name, workspace_defaults(workspace))

    async def set(
        self, principal: Principal, name: str, request: WorkspaceDefaultsSet
    ) -> WorkspaceDefaultsOut:
        defaults = _parsed(request)
        async with self.ctx.mutation(principal, "workspace.set_defaults", name, name) as mutation:
            workspace = await resolve_workspace(mutation.session, principal, name, WorkspaceRole.MANAGER)
            stored = {key: value for key, value in asdict(defaults).items() if value is not None}
            workspace.defaults = stored or None
            mutation.detail = ", ".join(f"{k}={v}" for k, v in stored.items()) or "platform defaults"
            return _out(workspace.name, defaults)
