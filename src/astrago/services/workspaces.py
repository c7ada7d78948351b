"""Workspaces (teams), their members and roles."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from astrago.auth.principal import Principal
from astrago.domain.defaults import WorkloadDefaults
from astrago.domain.enums import WorkloadStatus, WorkspaceRole
from astrago.domain.status import TERMINAL_STATUSES
from astrago.domain.suggest import did_you_mean
from astrago.services.context import ServiceContext
from astrago.services.errors import Conflict, Forbidden, InvalidInput, NotFound
from astrago.services.schemas import MemberOut, MemberSet, WorkspaceCreate, WorkspaceOut
from astrago.services.users import require_admin
from astrago.store.models import Workspace
from astrago.store.repositories import (
    UserRepository,
    VolumeRepository,
    WorkloadRepository,
    WorkspaceRepository,
)

_NAMED = 10  # unfinished workloads named in the refusal of a deletion
ROLE_VERBS = {WorkspaceRole.VIEWER: "view", WorkspaceRole.MEMBER: "use", WorkspaceRole.MANAGER: "manage"}


async def resolve_workspace(
    session: AsyncSession, principal: Principal, name: str, needed: WorkspaceRole
) -> Workspace:
    """The named workspace, if it exists and the caller holds at least `needed` in it.

    A workspace the caller is not a member of gets the same answer as one that does not exist (the
    suggestions come from the caller's own workspaces in both cases), so that workspace names cannot be
    discovered by trying them."""
    repo = WorkspaceRepository(session)
    workspace = await repo.by_name(name)
    held = None if workspace is None else principal.role_in(workspace.id)
    if workspace is None or (held is None and not principal.is_admin):
        visible = await repo.list(None if principal.is_admin else list(principal.roles))
        raise NotFound(
            f"workspace {name!r} does not exist or you are not a member of it"
            f"{did_you_mean(name, [w.name for w in visible])}"
        )
    if not principal.can(workspace.id, needed):
        assert held is not None  # an admin can do anything
        raise Forbidden(
            f"you are a {held.value} of workspace {name!r}; to {ROLE_VERBS[needed]} it you must be a "
            f"{needed.value} or higher"
        )
    return workspace


class WorkspaceService:
    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx

    async def create(self, principal: Principal, request: WorkspaceCreate) -> WorkspaceOut:
        async with self.ctx.mutation(principal, "workspace.create", request.name, request.name) as mutation:
            require_admin(principal, "create workspaces")
            repo = WorkspaceRepository(mutation.session)
            if await repo.by_name(request.name) is not None:
                raise Conflict(f"workspace {request.name!r} already exists")
            workspace = await repo.add(request.name, request.description)
            return WorkspaceOut(
                id=workspace.id,
                name=workspace.name,
                description=workspace.description,
                created_at=workspace.created_at,
            )

    async def list(self, principal: Principal) -> Sequence[WorkspaceOut]:
        async with self.ctx.read() as session:
            repo = WorkspaceRepository(session)
            only = None if principal.is_admin else list(principal.roles)
            return [
                WorkspaceOut(
                    id=w.id,
                    name=w.name,
                    description=w.description,
                    created_at=w.created_at,
                    my_role=principal.role_in(w.id),
                )
                for w in await repo.list(only)
            ]

    async def get(self, principal: Principal, name: str) -> WorkspaceOut:
        async with self.ctx.read() as session:
            workspace = await resolve_workspace(session, principal, name, WorkspaceRole.VIEWER)
            members = await WorkspaceRepository(session).members(workspace.id)
            return WorkspaceOut(
                id=workspace.id,
                name=workspace.name,
                description=workspace.description,
                created_at=workspace.created_at,
                my_role=principal.role_in(workspace.id),
                members=[MemberOut(username=m.user.username, role=WorkspaceRole(m.role)) for m in members],
            )

    async def delete(self, principal: Principal, name: str) -> None:
        """Deletes the workspace with its finished workloads (their events and placements), quotas and
        memberships; the audit trail keeps every action taken in it. Unfinished workloads block it."""
        async with self.ctx.mutation(principal, "workspace.delete", name, name) as mutation:
            require_admin(principal, "delete workspaces")
            workspace = await resolve_workspace(mutation.session, principal, name, WorkspaceRole.MANAGER)
            live = [s for s in WorkloadStatus if s not in TERMINAL_STATUSES]
            page = await WorkloadRepository(mutation.session).page([workspace.id], live, _NAMED, None)
            if page.total:
                named = ", ".join(f"{w.name} ({w.id}, {w.status})" for w in page.items)
                more = f" and {page.total - len(page.items)} more" if page.total > len(page.items) else ""
                raise Conflict(
                    f"workspace {name!r} still has {page.total} unfinished workloads: {named}{more}; "
                    "cancel them (or let them end) first"
                )
            volumes = await VolumeRepository(mutation.session).count_in_workspace(workspace.id)
            if volumes:
                raise Conflict(
                    f"workspace {name!r} still has {volumes} volumes; delete them first (their files "
                    "are not removed silently)"
                )
            removed = await WorkspaceRepository(mutation.session).delete(workspace)
            mutation.detail = f"deleted with {removed} finished workloads"

    async def set_member(self, principal: Principal, workspace_name: str, request: MemberSet) -> MemberOut:
        target = f"{workspace_name}/{request.username}"
        async with self.ctx.mutation(principal, "workspace.set_member", target, workspace_name) as mutation:
            workspace = await resolve_workspace(
                mutation.session, principal, workspace_name, WorkspaceRole.MANAGER
            )
            users = UserRepository(mutation.session)
            user = await users.by_username(request.username)
            if user is None:
                # 422, not 404: the workspace in the URL exists; the body names someone unknown.
                # Only admins may see who exists; a manager learns nothing from a typo.
                known = [u.username for u in await users.list()] if principal.is_admin else []
                guess = did_you_mean(request.username, known)
                raise InvalidInput(f"username: user {request.username!r} does not exist{guess}")
            await WorkspaceRepository(mutation.session).set_member(workspace.id, user.id, request.role.value)
            mutation.detail = f"role={request.role.value}"
            return MemberOut(username=user.username, role=request.role)

    async def remove_member(self, principal: Principal, workspace_name: str, username: str) -> None:
        target = f"{workspace_name}/{username}"
        async with self.ctx.mutation(
            principal, "workspace.remove_member", target, workspace_name
        ) as mutation:
            workspace = await resolve_workspace(
                mutation.session, principal, workspace_name, WorkspaceRole.MANAGER
            )
            user = await UserRepository(mutation.session).by_username(username)
            removed = user and await WorkspaceRepository(mutation.session).remove_member(
                workspace.id, user.id
            )
            if not removed:
                raise NotFound(f"{username!r} is not a member of workspace {workspace_name!r}")


def workspace_defaults(workspace: Workspace) -> WorkloadDefaults:
    stored = workspace.defaults or {}
    return WorkloadDefaults(**{key: stored.get(key) for key in WorkloadDefaults.__dataclass_fields__})
