"""Rolling updates of services: a new revision of the command, image or environment; the controllers
bring the running replicas to it (new ones ready before old ones drain)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, field_validator

from astrago.auth.principal import Principal
from astrago.backends.base import Capability
from astrago.domain.enums import WorkloadKind, WorkloadStatus, WorkspaceRole
from astrago.services.context import ServiceContext
from astrago.services.errors import Conflict, Forbidden, InvalidInput, NotFound, NotSupported
from astrago.services.schemas import Strict, WorkloadOut
from astrago.services.workloads import workload_out
from astrago.store.repositories import EventRepository, WorkloadRepository

ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"


class RolloutRequest(Strict):
    command: list[str] | None = Field(None, description="the new command (argv)")
    image: str | None = None
    env: dict[Annotated[str, Field(pattern=ENV_NAME)], str] | None = Field(
        None, description="variables to set (merged into the current env)"
    )

    @field_validator("command")
    @classmethod
    def _not_empty(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and not (value and value[0]):
            raise ValueError("the new command is empty")
        return value


class RolloutService:
    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx

    async def roll(self, principal: Principal, workload_id: str, request: RolloutRequest) -> WorkloadOut:
        if request.command is None and request.image is None and not request.env:
            raise InvalidInput("give what changes: a command, an image or environment variables")
        if not self.ctx.capabilities.supports(Capability.ROLLING_UPDATE):
            raise NotSupported(
                f"the {self.ctx.capabilities.backend} backend cannot roll a service to a new revision",
                backend=self.ctx.capabilities.backend,
                missing=[Capability.ROLLING_UPDATE.value],
            )
        if request.image is not None and not self.ctx.capabilities.supports(Capability.IMAGES):
            raise NotSupported(
                f"the {self.ctx.capabilities.backend} backend cannot run images",
                backend=self.ctx.capabilities.backend,
                missing=[Capability.IMAGES.value],
            )
        async with self.ctx.mutation(principal, "workload.rollout", workload_id) as mutation:
            workload = await WorkloadRepository(mutation.session).get(workload_id)
            if workload is None or not principal.can(workload.workspace_id, WorkspaceRole.VIEWER):
                raise NotFound(f"workload {workload_id!r} does not exist or is not in one of your workspaces")
            mutation.workspace = workload.workspace.name
            own = workload.created_by == principal.user_id
            if not principal.can(
                workload.workspace_id, WorkspaceRole.MEMBER if own else WorkspaceRole.MANAGER
            ):
                raise Forbidden(
                    "only its submitter (as a member) or a manager of the workspace can update it"
                )
            if workload.kind != WorkloadKind.SERVICE:
                raise InvalidInput(
                    f"workload {workload_id} is a {workload.kind}; only services roll to a new revision"
                )
            if workload.status != WorkloadStatus.RUNNING or workload.stop_requested:
                raise Conflict(
                    f"workload {workload_id} is {workload.status}; a service rolls only while it runs"
                )
            spec = dict(workload.spec)
            revision = int(spec.get("revision") or 0) + 1
            changes = []
            if request.command is not None:
                spec["command"] = request.command
                changes.append("command")
            if request.image is not None:
                spec["image"] = request.image
                changes.append("image")
            if request.env:
                spec["env"] = {**(spec.get("env") or {}), **request.env}
                changes.append("env " + ", ".join(sorted(request.env)))
            spec["revision"] = revision
            workload.spec = spec  # a new dict: the JSON column sees the change
            EventRepository(mutation.session).add(
                workload_id,
                "RolloutRequested",
                f"revision {revision} ({'; '.join(changes)}) by {principal.username}",
            )
            await mutation.session.flush()
            out = workload_out(workload)
        self.ctx.wake_controllers()
        return out
