"""Workloads: submit, list, inspect, cancel. The controllers take it from there."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import replace
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from astrago.auth.principal import Principal
from astrago.backends.base import BackendCapabilities, WorkloadNeeds
from astrago.domain.defaults import WorkloadDefaults, default_resources
from astrago.domain.enums import WorkloadKind, WorkloadStatus, WorkspaceRole
from astrago.domain.gpu_models import UnknownGpuModel, resolve_model_choice
from astrago.domain.resources import ResourceParseError, ResourceRequest
from astrago.domain.status import LIVE_STATUSES, TERMINAL_STATUSES
from astrago.scheduler.cluster import RequestShape
from astrago.scheduler.types import NodeInfo
from astrago.services.code_bundles import CodeBundleService
from astrago.services.context import ServiceContext
from astrago.services.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    NotSupported,
    ServiceError,
)
from astrago.services.group_commit import SubmitGroupCommit
from astrago.services.placement_check import unplaceable
from astrago.services.quotas import quota_from_entries
from astrago.services.read_cache import ReadCache
from astrago.services.schemas import (
    EventOut,
    ReplicaOut,
    WorkloadOut,
    WorkloadPageOut,
    WorkloadSubmit,
    parse_duration_s,
)
from astrago.services.snapshot import nodes_view
from astrago.services.specs import resource_request
from astrago.services.system_info import check_may_run_workloads
from astrago.services.volumes import resolve_mounts
from astrago.services.workspaces import resolve_workspace, workspace_defaults
from astrago.store.ids import new_id
from astrago.store.models import QuotaEntry, Workload, Workspace, utcnow
from astrago.store.repositories import (
    EventRepository,
    QuotaRepository,
    UserRepository,
    WorkloadRepository,
)

MAX_PAGE = 500
NOTEBOOK_PORT = 8888  # JupyterLab's customary port: what the endpoint of a default notebook is called


def _normalised_spec(
    request: WorkloadSubmit, nodes: Sequence[NodeInfo], workspace_defaults: WorkloadDefaults
) -> tuple[dict[str, Any], int]:
    """The stored spec (scheduler units) and the priority; raises InvalidInput with a readable message.
    CPU and memory not asked for are filled in (`domain.defaults`) and named in `spec["defaulted"]`."""
    try:
        resources = request.resources
        share = resources.gpu_share
        asked = ResourceRequest(
            gpus=resources.gpus,
            gpu_model=_gpu_model(resources.gpu_model, nodes),
            gpu_share_milli=round(share * 1000) if share is not None else None,
            mig_profile=resources.mig,
        )
        cpu_milli, memory_mib = resources.cpu_milli(), resources.memory_mib()
        fill = default_resources(
            asked.gpu_milli or (1000 if asked.mig_profile else 0),
            RequestShape.of(asked).models,
            nodes,
            workspace_defaults,
        )
        defaulted = [name for name, value in (("cpu", cpu_milli), ("memory", memory_mib)) if value is None]
        normalised = replace(
            asked,
            cpu_milli=fill.cpu_milli if cpu_milli is None else cpu_milli,
            memory_mib=fill.memory_mib if memory_mib is None else memory_mib,
        )
        normalised.validate()
        priority = request.priority_value()
        max_runtime_s = parse_duration_s(request.max_runtime) if request.max_runtime is not None else None
    except (ResourceParseError, ValueError) as exc:
        raise InvalidInput(str(exc)) from exc
    argv = request.argv()
    if request.code and request.working_dir:
        raise InvalidInput(
            "give code (a bundle to start in) or working_dir (a directory on the node), not both"
        )
    if not argv and not request.image and request.kind is not WorkloadKind.INTERACTIVE:
        raise InvalidInput("give a command to run (e.g. `astrago run -- python train.py`) or an image")
    ports = list(request.ports)
    if request.kind in (WorkloadKind.INTERACTIVE, WorkloadKind.SERVICE) and not ports:
        if request.kind is WorkloadKind.INTERACTIVE and not argv and not request.image:
            ports = [NOTEBOOK_PORT]  # JupyterLab, started for an interactive workload without a command
        else:
            raise InvalidInput(
                f"a {request.kind.value} workload needs the port it listens on (e.g. --port 8000); "
                "it learns the port to bind from $PORT"
            )
    if len(set(ports)) != len(ports):
        raise InvalidInput(f"ports {ports} name a port twice")
    spec = {
        "command": argv,
        "image": request.image,
        "env": request.env,
        "working_dir": request.working_dir,
        "code": request.code,
        "max_runtime_s": max_runtime_s,
        "ports": ports,
        "volumes": request.volumes,
        "options": request.options,
        "defaulted": {"fields": defaulted, "from": fill.source} if defaulted else None,
        "resources": {
            "cpu_milli": normalised.cpu_milli,
            "memory_mib": normalised.memory_mib,
            "gpus": normalised.gpus,
            "gpu_model": normalised.gpu_model,
            "gpu_share_milli": normalised.gpu_share_milli,
            "mig_profile": normalised.mig_profile,
        },
    }
    return spec, priority


def check_backend_can_run(capabilities: BackendCapabilities, request: WorkloadSubmit) -> None:
    """Refuse, naming the backend and what it lacks, a workload the configured backend could not run as
    asked (rather than accept it and drop the part it cannot do)."""
    needs = WorkloadNeeds(
        kind=request.kind,
        has_command=bool(request.argv()),
        image=request.image,
        ports=len(request.ports),
        volumes=len(request.volumes),
        options=tuple(sorted(request.options.items())),
        replicas=request.replicas,
    )
    missing = capabilities.missing(needs)
    if missing:
        names = ", ".join(capability.value for capability in missing)
        raise NotSupported(
            f"the {capabilities.backend} backend of this server cannot run this workload: it lacks {names}",
            backend=capabilities.backend,
            missing=[capability.value for capability in missing],
        )
    unknown = capabilities.unknown_options(request.options)
    if unknown:
        known = ", ".join(sorted(capabilities.options)) or "none"
        raise NotSupported(
            f"the {capabilities.backend} backend does not read the option(s) {', '.join(unknown)} "
            f"(it reads: {known})",
            backend=capabilities.backend,
            missing=[f"option:{key}" for key in unknown],
        )


def _gpu_model(raw: str | None, nodes: Sequence[NodeInfo]) -> str | None:
    """The canonical name(s) of the models asked for, among those that exist (every name is accepted:
    `A100-80GB`, `a100`, GFD's `NVIDIA-A100-SXM4-80GB`, NVML's `NVIDIA A100-SXM4-80GB`)."""
    if not raw:
        return None
    try:
        return resolve_model_choice(raw, (gpu.model for node in nodes for gpu in node.gpus))
    except UnknownGpuModel as exc:
        raise InvalidInput(str(exc)) from exc


def workload_out(workload: Workload) -> WorkloadOut:
    return WorkloadOut(
        id=workload.id,
        name=workload.name,
        workspace=workload.workspace.name,
        kind=WorkloadKind(workload.kind),
        status=WorkloadStatus(workload.status),
        reason=workload.reason,
        pending_code=workload.pending_code,
        queue_position=workload.queue_position,
        priority=workload.priority,
        preemptible=workload.preemptible,
        replicas=workload.replicas,
        spec=workload.spec,
        created_by=workload.creator.username if workload.creator else None,
        created_at=workload.created_at,
        admitted_at=workload.admitted_at,
        started_at=workload.started_at,
        finished_at=workload.finished_at,
        placements=[
            ReplicaOut(
                index=r.index,
                node=r.node,
                gpus=list(r.gpu_indices),
                gpu_uuids=list(r.gpu_uuids),
                gpu_milli=r.gpu_milli,
                mig_profile=r.mig_profile,
                cpu_milli=r.cpu_milli,
                memory_mib=r.memory_mib,
                state=r.state,
                exit_code=r.exit_code,
                reason=r.reason,
                started_at=r.started_at,
                finished_at=r.finished_at,
            )
            for r in workload.replica_rows
        ],
    )


def _check_quota_ceiling(
    workspace: Workspace, request: ResourceRequest, replicas: int, quota_rows: Any
) -> None:
    """Refuse what the workspace's limit could never allow, instead of queueing it forever."""
    quota = quota_from_entries(quota_rows)
    checks = [
        ("GPU", request.gpu_milli * replicas, quota.gpu_limit_milli, 1000, " GPUs"),
        ("CPU", request.cpu_milli * replicas, quota.cpu_limit_milli, 1000, " cores"),
        ("memory", request.memory_mib * replicas, quota.memory_limit_mib, 1, " MiB"),
    ]
    if request.gpu_model:
        for model, _guaranteed, limit in quota.gpu_models:
            if model == request.gpu_model:
                checks.append((f"{model} GPU", request.gpu_milli * replicas, limit, 1000, " GPUs"))
    for label, needed, limit, scale, unit in checks:
        if limit is not None and needed > limit:
            raise InvalidInput(
                f"workspace {workspace.name!r} has a {label} limit of {limit / scale:g}{unit}; this workload "
                f"needs {needed / scale:g}{unit} in total, so it could never run"
            )


class WorkloadService:
    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx
        self._group_commit = SubmitGroupCommit(ctx)
        # What every submission checks against, read at most once a second (see `read_cache`): a second
        # is also how late a limit lowered by another process can be seen here; the scheduler, which
        # enforces quotas at admission, always reads them fresh.
        self._node_cache: ReadCache[None, tuple[NodeInfo, ...]] = ReadCache(("nodes", "devices"), 1.0)
        self._quota_cache: ReadCache[str, Sequence[QuotaEntry]] = ReadCache(("quota_entries",), 1.0)
        self._workspace_cache: ReadCache[str, Workspace] = ReadCache(("workspaces",), 1.0)

    async def submit(self, principal: Principal, request: WorkloadSubmit) -> WorkloadOut:
        """Validate with reads first, then hold the write transaction only for the inserts (on SQLite the
        write lock is shared by every writer of the server, so its hold time bounds submit throughput),
        committed together with the submissions made meanwhile (`group_commit`)."""
        try:
            workspace, spec, priority = await self._validated(principal, request)
        except ServiceError as exc:
            await self.ctx.record_refusal(
                principal, "workload.submit", request.workspace, exc, workspace=request.workspace
            )
            raise
        workload_id = new_id()
        workload = Workload(
            id=workload_id,
            workspace_id=workspace.id,
            name=request.name or f"{request.kind.value}-{workload_id[:6]}",
            kind=request.kind.value,
            status=WorkloadStatus.PENDING.value,
            reason="waiting for the scheduler",
            pending_code="new",
            priority=priority,
            preemptible=request.preemptible,
            replicas=request.replicas,
            spec=spec,
            created_by=principal.user_id,
            created_at=utcnow(),
        )
        await self._group_commit.insert(principal, workload, workspace.name)
        out = WorkloadOut(
            id=workload_id,
            name=workload.name,
            workspace=workspace.name,
            kind=request.kind,
            status=WorkloadStatus.PENDING,
            reason=workload.reason,
            pending_code=workload.pending_code,
            queue_position=None,
            priority=priority,
            preemptible=request.preemptible,
            replicas=request.replicas,
            spec=spec,
            created_by=principal.username,
            created_at=workload.created_at,
            admitted_at=None,
            started_at=None,
            finished_at=None,
            placements=[],
        )
        self.ctx.wake_controllers()
        return out

    async def _validated(
        self, principal: Principal, request: WorkloadSubmit
    ) -> tuple[Workspace, dict[str, Any], int]:
        """Everything a submission is checked against comes from the read caches when they are warm, so
        that a typical submission makes no database round trip before its insert."""
        check_may_run_workloads(self.ctx, principal.is_admin)
        workspace = await self._workspace(principal, request.workspace)
        nodes = await self._nodes()
        spec, priority = _normalised_spec(request, nodes, workspace_defaults(workspace))
        check_backend_can_run(self.ctx.capabilities, request)
        if request.code:
            self._check_code(principal, request.code)
        spec["volume_mounts"] = await self._mounts(workspace, request.volumes) if request.volumes else []
        resources = resource_request(spec)
        quota_rows = await self._quota_rows(workspace.id)
        _check_quota_ceiling(workspace, resources, request.replicas, quota_rows)
        problem = unplaceable(nodes, resources)
        if problem:
            raise InvalidInput(problem)
        return workspace, spec, priority

    async def _workspace(self, principal: Principal, name: str) -> Workspace:
        """The workspace to submit into, which the caller must be a member of.

        The cached row is detached and only ever read. A caller without the role goes the uncached way,
        which reads the suggestions for its error."""
        cached = self._workspace_cache.get(name)
        if cached is not None and principal.can(cached.id, WorkspaceRole.MEMBER):
            return cached
        stamp = self._workspace_cache.stamp()
        async with self.ctx.read() as session:
            workspace = await resolve_workspace(session, principal, name, WorkspaceRole.MEMBER)
        self._workspace_cache.put(name, workspace, stamp)
        return workspace

    async def _mounts(self, workspace: Workspace, volumes: Sequence[str]) -> list[dict[str, Any]]:
        async with self.ctx.read() as session:
            return await resolve_mounts(
                session,
                workspace,
                volumes,
                self.ctx.settings.backend,
                bind_mounts=self.ctx.isolation is not None and not self.ctx.isolation.single_user,
            )

    async def _nodes(self) -> tuple[NodeInfo, ...]:
        if (nodes := self._node_cache.get(None)) is None:
            stamp = self._node_cache.stamp()
            async with self.ctx.read() as session:
                # capacity alone: a fenced or cordoned GPU is temporary, so a submission waits for it
                nodes = await nodes_view(session, with_fences=False)
            self._node_cache.put(None, nodes, stamp)
        return nodes

    async def _quota_rows(self, workspace_id: str) -> Sequence[QuotaEntry]:
        if (rows := self._quota_cache.get(workspace_id)) is None:
            stamp = self._quota_cache.stamp()
            async with self.ctx.read() as session:
                rows = await QuotaRepository(session).for_workspace(workspace_id)
            self._quota_cache.put(workspace_id, rows, stamp)
        return rows

    def _check_code(self, principal: Principal, bundle_id: str) -> None:
        if self.ctx.settings.backend == "kubernetes" and not self.ctx.settings.internal_url:
            raise InvalidInput(
                "this server cannot deliver code to pods: its administrator has not set internal_url "
                "(ASTRAGO_INTERNAL_URL, the API's in-cluster address); build your code into the image "
                "and run with --image, or with --no-code"
            )
        CodeBundleService(self.ctx).owned(principal, bundle_id)

    async def list(
        self,
        principal: Principal,
        workspace: str | None,
        statuses: Collection[WorkloadStatus] | None,
        limit: int,
        cursor: int | None,
        kinds: Collection[WorkloadKind] | None = None,
        owner: str | None = None,
    ) -> WorkloadPageOut:
        if not 1 <= limit <= MAX_PAGE:
            raise InvalidInput(f"limit must be between 1 and {MAX_PAGE}")
        async with self.ctx.read() as session:
            creator_id = None
            if owner is not None:
                creator = await UserRepository(session).by_username(owner)
                if creator is None:  # nobody by that name submitted anything: an empty page, not an error
                    return WorkloadPageOut(items=[], total=0, next_cursor=None)
                creator_id = creator.id
            if workspace is not None:
                scope: list[str] | None = [
                    (await resolve_workspace(session, principal, workspace, WorkspaceRole.VIEWER)).id
                ]
            else:
                scope = None if principal.is_admin else list(principal.roles)
            page = await WorkloadRepository(session).page(
                scope, statuses, limit, cursor, kinds=kinds, creator_id=creator_id
            )
            return WorkloadPageOut(
                items=[workload_out(w) for w in page.items], total=page.total, next_cursor=page.next_cursor
            )

    async def _visible(self, session: AsyncSession, principal: Principal, workload_id: str) -> Workload:
        workload = await WorkloadRepository(session).get(workload_id)
        if workload is None or not principal.can(workload.workspace_id, WorkspaceRole.VIEWER):
            # the same answer whether it does not exist or is another team's: ids do not leak
            raise NotFound(f"workload {workload_id!r} does not exist or is not in one of your workspaces")
        return workload

    async def get(self, principal: Principal, workload_id: str) -> WorkloadOut:
        async with self.ctx.read() as session:
            return workload_out(await self._visible(session, principal, workload_id))

    async def events(self, principal: Principal, workload_id: str) -> Sequence[EventOut]:
        async with self.ctx.read() as session:
            await self._visible(session, principal, workload_id)
            events = await EventRepository(session).for_workload(workload_id)
            return [EventOut(type=e.type, reason=e.reason, created_at=e.created_at) for e in events]

    async def check_log_access(self, principal: Principal, workload_id: str, replica: int) -> WorkloadOut:
        async with self.ctx.read() as session:
            workload = await self._visible(session, principal, workload_id)
            if not 0 <= replica < workload.replicas:
                raise InvalidInput(f"workload {workload_id} has replicas 0..{workload.replicas - 1}")
            if not workload.replica_rows:
                raise Conflict(f"workload {workload_id} has not started yet ({workload.status}); no logs")
            return workload_out(workload)

    async def cancel(self, principal: Principal, workload_id: str) -> WorkloadOut:
        async with self.ctx.mutation(principal, "workload.cancel", workload_id) as mutation:
            session = mutation.session
            workload = await self._visible(session, principal, workload_id)
            mutation.workspace = workload.workspace.name
            own = workload.created_by == principal.user_id
            needed = WorkspaceRole.MEMBER if own else WorkspaceRole.MANAGER
            if not principal.can(workload.workspace_id, needed):
                raise Forbidden(
                    "only its submitter (as a member) or a manager of the workspace can cancel this workload"
                )
            status = WorkloadStatus(workload.status)
            if status in TERMINAL_STATUSES:
                raise Conflict(f"workload {workload_id} has already ended ({status.value})")
            events = EventRepository(session)
            if status in LIVE_STATUSES:
                if workload.stop_requested != "cancel":
                    workload.stop_requested = "cancel"
                    workload.stop_reason = f"cancelled by {principal.username}"
                    events.add(workload_id, "CancelRequested", f"cancel requested by {principal.username}")
            else:
                workload.status = WorkloadStatus.CANCELLED.value
                workload.reason = f"cancelled by {principal.username} while {status.value.lower()}"
                workload.pending_code = None
                workload.queue_position = None
                events.add(workload_id, "Cancelled", workload.reason)
            await session.flush()
            out = workload_out(workload)
        self.ctx.wake_controllers()
        return out
