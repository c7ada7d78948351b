"""Workspace quotas: guaranteed and limit per resource, in the units users think in."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence

from astrago.auth.principal import Principal
from astrago.domain.enums import WorkspaceRole
from astrago.domain.gpu_models import canonical_gpu_model
from astrago.domain.resources import ResourceParseError, parse_cpu_milli, parse_memory_mib
from astrago.domain.status import LIVE_STATUSES
from astrago.domain.volumes import parse_size_bytes
from astrago.scheduler.types import Quota
from astrago.services.bounds import finite
from astrago.services.context import ServiceContext
from astrago.services.errors import InvalidInput
from astrago.services.schemas import QuotaEntryOut, QuotaOut, QuotaSet
from astrago.services.users import require_admin
from astrago.services.volumes import STORAGE_RESOURCE, VolumeDisk, storage_used
from astrago.services.workspaces import resolve_workspace
from astrago.store.models import QuotaEntry, Workload
from astrago.store.repositories import QuotaRepository, WorkloadRepository

_UNITS = {"gpu": ("GPUs", 1000), "cpu": ("cores", 1000), "memory": ("MiB", 1), "storage": ("GiB", 1024**3)}
# Far beyond any cluster, and well within the 64-bit integers the amounts are stored as.
_MAXIMA = {
    "gpu": (100_000 * 1000, "100000 GPUs"),
    "cpu": (10**7 * 1000, "10000000 cores"),
    "memory": (2**40, "1Ei"),
    "storage": (2**62, "4Ei"),
}


def _unit_of(resource: str) -> tuple[str, int]:
    return _UNITS[resource.split(":", 1)[0]]


def quota_from_entries(entries: Iterable[QuotaEntry]) -> Quota:
    """The scheduler's view of one workspace's quota rows."""
    rows = {entry.resource: entry for entry in entries}

    def amounts(resource: str) -> tuple[int, int | None]:
        row = rows.get(resource)
        return (row.guaranteed, row.limit) if row else (0, None)

    gpu, cpu, memory = amounts("gpu"), amounts("cpu"), amounts("memory")
    models = tuple(
        sorted((name[4:], row.guaranteed, row.limit) for name, row in rows.items() if name.startswith("gpu:"))
    )
    return Quota(
        gpu_guaranteed_milli=gpu[0],
        gpu_limit_milli=gpu[1],
        cpu_guaranteed_milli=cpu[0],
        cpu_limit_milli=cpu[1],
        memory_guaranteed_mib=memory[0],
        memory_limit_mib=memory[1],
        gpu_models=models,
    )


def usage_by_resource(workloads: Iterable[Workload]) -> dict[str, int]:
    """What live workloads hold, keyed like quota entries (gpu, gpu:<model>, cpu, memory)."""
    used: dict[str, int] = defaultdict(int)
    for workload in workloads:
        resources = workload.spec["resources"]
        gpu_milli = (resources.get("gpu_share_milli") or resources.get("gpus", 0) * 1000) * workload.replicas
        used["gpu"] += gpu_milli
        if resources.get("gpu_model"):
            used[f"gpu:{resources['gpu_model']}"] += gpu_milli
        used["cpu"] += resources["cpu_milli"] * workload.replicas
        used["memory"] += resources["memory_mib"] * workload.replicas
    return used


def _to_units(value: float | str | int, kind: str, field: str) -> int:
    """User units (GPUs, cores, memory and storage sizes) → stored units (milli-GPU, millicores, MiB,
    bytes)."""
    try:
        if kind == "gpu":
            amount = round(finite(float(value), field) * 1000)
        elif kind == "cpu":
            amount = parse_cpu_milli(value)
        elif kind == "storage":
            amount = parse_size_bytes(value if isinstance(value, str) else int(value))
        else:
            amount = parse_memory_mib(value)
    except (ResourceParseError, ValueError) as exc:
        raise InvalidInput(f"{field}: {exc}") from exc
    if amount < 0:
        raise InvalidInput(f"{field}: a {kind} quota cannot be negative")
    maximum, readable = _MAXIMA[kind]
    if amount > maximum:
        raise InvalidInput(f"{field}: a {kind} quota can be at most {readable}, got {value}")
    return amount


def _is_unlimited(value: float | str | int) -> bool:
    return str(value).strip() in ("-1", "-1.0")


class QuotaService:
    def __init__(self, ctx: ServiceContext, disk: VolumeDisk) -> None:
        self.ctx = ctx
        self.disk = disk

    async def set(self, principal: Principal, workspace_name: str, request: QuotaSet) -> QuotaOut:
        async with self.ctx.mutation(principal, "quota.set", workspace_name, workspace_name) as mutation:
            require_admin(principal, "set quotas")
            workspace = await resolve_workspace(
                mutation.session, principal, workspace_name, WorkspaceRole.VIEWER
            )
            repo = QuotaRepository(mutation.session)
            existing = {e.resource: e for e in await repo.for_workspace(workspace.id)}
            # one name per model: a quota for `NVIDIA-A100-SXM4-80GB` is the quota for `A100-80GB`
            gpu_key = f"gpu:{canonical_gpu_model(request.gpu_model)}" if request.gpu_model else "gpu"
            wanted = {
                gpu_key: (request.gpu_guaranteed, request.gpu_limit),
                "cpu": (request.cpu_guaranteed, request.cpu_limit),
                "memory": (request.memory_guaranteed, request.memory_limit),
                "storage": (request.storage_guaranteed, request.storage_limit),
            }
            changes = []
            for resource, (guaranteed_in, limit_in) in wanted.items():
                if guaranteed_in is None and limit_in is None:
                    continue
                kind = resource.split(":", 1)[0]
                current = existing.get(resource)
                guaranteed = (
                    _to_units(guaranteed_in, kind, f"{kind}_guaranteed")
                    if guaranteed_in is not None
                    else (current.guaranteed if current else 0)
                )
                if limit_in is None:
                    limit = current.limit if current else None
                else:
                    limit = None if _is_unlimited(limit_in) else _to_units(limit_in, kind, f"{kind}_limit")
                if limit is not None and limit < guaranteed:
                    raise InvalidInput(f"{resource} limit is below its guaranteed amount")
                await repo.set(workspace.id, resource, guaranteed, limit)
                changes.append(f"{resource}={guaranteed}/{limit}")
            if not changes:
                raise InvalidInput("nothing to change: give at least one guaranteed or limit amount")
            mutation.detail = ", ".join(changes)
        self.ctx.wake_controllers()
        return await self.get(principal, workspace_name)

    async def get(self, principal: Principal, workspace_name: str) -> QuotaOut:
        async with self.ctx.read() as session:
            workspace = await resolve_workspace(session, principal, workspace_name, WorkspaceRole.VIEWER)
            entries = await QuotaRepository(session).for_workspace(workspace.id)
            live = await WorkloadRepository(session).with_statuses(LIVE_STATUSES)
            used = usage_by_resource(w for w in live if w.workspace_id == workspace.id)
            if any(entry.resource == STORAGE_RESOURCE for entry in entries):
                used[STORAGE_RESOURCE] = (await storage_used(session, self.disk, workspace.id))[0]
            return QuotaOut(workspace=workspace.name, entries=_entries_out(entries, used))


def _entries_out(entries: Sequence[QuotaEntry], used: dict[str, int]) -> list[QuotaEntryOut]:
    out = []
    for entry in entries:
        unit, scale = _unit_of(entry.resource)
        out.append(
            QuotaEntryOut(
                resource=entry.resource,
                guaranteed=entry.guaranteed / scale,
                limit=None if entry.limit is None else entry.limit / scale,
                used=used.get(entry.resource, 0) / scale,
                unit=unit,
            )
        )
    return out
