"""User accounts (admins manage them; everyone can see themselves)."""

from __future__ import annotations

from collections.abc import Sequence

from astrago.auth.passwords import hash_password
from astrago.auth.principal import Principal
from astrago.domain.enums import WorkspaceRole
from astrago.services.context import ServiceContext
from astrago.services.errors import Conflict, Forbidden
from astrago.services.schemas import UserCreate, UserOut
from astrago.store.models import User
from astrago.store.repositories import UserRepository, WorkspaceRepository


def require_admin(principal: Principal, what: str) -> None:
    if not principal.is_admin:
        raise Forbidden(f"only a platform admin can {what}")


async def _user_out(user: User, workspaces: WorkspaceRepository) -> UserOut:
    names = {w.id: w.name for w in await workspaces.list()}
    roles = {
        names[m.workspace_id]: WorkspaceRole(m.role)
        for m in await workspaces.memberships_of_user(user.id)
        if m.workspace_id in names
    }
    return UserOut(
        id=user.id,
        username=user.username,
        admin=user.is_admin,
        active=user.active,
        created_at=user.created_at,
        workspaces=roles,
    )


class UserService:
    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx

    async def create(self, principal: Principal, request: UserCreate) -> UserOut:
        async with self.ctx.mutation(principal, "user.create", request.username) as mutation:
            require_admin(principal, "create users")
            users = UserRepository(mutation.session)
            if await users.by_username(request.username) is not None:
                raise Conflict(f"user {request.username!r} already exists")
            user = await users.add(request.username, hash_password(request.password), request.admin)
            return await _user_out(user, WorkspaceRepository(mutation.session))

    async def list(self, principal: Principal) -> Sequence[UserOut]:
        require_admin(principal, "list users")
        async with self.ctx.read() as session:
            workspaces = WorkspaceRepository(session)
            return [await _user_out(u, workspaces) for u in await UserRepository(session).list()]

    async def me(self, principal: Principal) -> UserOut:
        async with self.ctx.read() as session:
            user = await UserRepository(session).get(principal.user_id)
            assert user is not None  # the principal was resolved from this user a moment ago
            return await _user_out(user, WorkspaceRepository(session))
