"""User accounts: admins create, disable, enable and delete them; everyone sees and re-keys themselves.

Disabling an account revokes its sessions and tokens (it is refused at its next request) and leaves its
workloads running: they belong to their workspace. Deleting an account is refused while it has unfinished
workloads; its finished ones stay in the history with no creator, and the audit trail keeps its name."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from astrago.auth.passwords import hash_password_async, password_problems, verify_password_async
from astrago.auth.principal import Principal
from astrago.auth.sessions import TokenKind
from astrago.domain import TERMINAL_STATUSES
from astrago.domain.enums import WorkloadStatus, WorkspaceRole
from astrago.services.context import ServiceContext
from astrago.services.errors import Conflict, Forbidden, InvalidInput, NotFound, Unauthenticated
from astrago.services.schemas import PasswordChange, UserCreate, UserOut, UserUpdate
from astrago.store.models import User
from astrago.store.repositories import TokenRepository, UserRepository, WorkspaceRepository

UNFINISHED = [s.value for s in WorkloadStatus if s not in TERMINAL_STATUSES]


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
        source=user.source,
        created_at=user.created_at,
        last_login_at=user.last_login_at,
        workspaces=roles,
    )


class UserService:
    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx

    def _check_policy(self, password: str, username: str) -> None:
        problems = password_problems(password, username, self.ctx.settings.password_min_length)
        if problems:
            raise InvalidInput("the password is too weak: " + "; ".join(problems))

    async def create(self, principal: Principal, request: UserCreate) -> UserOut:
        try:
            require_admin(principal, "create users")
            self._check_policy(request.password, request.username)
        except (Forbidden, InvalidInput) as error:
            await self.ctx.record_refusal(principal, "user.create", request.username, error)
            raise
        password_hash = await hash_password_async(request.password)  # before the write transaction
        async with self.ctx.mutation(principal, "user.create", request.username) as mutation:
            users = UserRepository(mutation.session)
            if await users.by_username(request.username) is not None:
                raise Conflict(f"user {request.username!r} already exists")
            user = await users.add(request.username, password_hash, request.admin)
            return await _user_out(user, WorkspaceRepository(mutation.session))

    async def list(self, principal: Principal) -> Sequence[UserOut]:
        require_admin(principal, "list users")
        async with self.ctx.read() as session:
            workspaces = WorkspaceRepository(session)
            return [await _user_out(u, workspaces) for u in await UserRepository(session).list()]

    async def me(self, principal: Principal) -> UserOut:
        async with self.ctx.read() as session:
            user = await UserRepository(session).get(principal.user_id)
            if user is None:
                raise Unauthenticated("this account no longer exists")
            return await _user_out(user, WorkspaceRepository(session))

    async def change_password(self, principal: Principal, request: PasswordChange) -> None:
        """Needs the current password; ends the user's other login sessions (API tokens stay)."""
        async with self.ctx.read() as session:
            user = await UserRepository(session).get(principal.user_id)
            current_hash = user.password_hash if user is not None else None
        try:
            if user is None or user.source != "local":
                raise InvalidInput("this account signs in through the identity provider; change it there")
            if not await verify_password_async(current_hash, request.current_password):
                raise Forbidden("the current password is wrong")
            self._check_policy(request.new_password, principal.username)
        except (InvalidInput, Forbidden) as error:
            await self.ctx.record_refusal(principal, "user.password", principal.username, error)
            raise
        new_hash = await hash_password_async(request.new_password)
        async with self.ctx.mutation(principal, "user.password", principal.username) as mutation:
            changed = await UserRepository(mutation.session).get(principal.user_id)
            assert changed is not None
            changed.password_hash = new_hash
            tokens = TokenRepository(mutation.session)
            ended = 0
            for token in await tokens.live(principal.user_id, datetime.now(UTC)):
                if TokenKind(token.kind).is_login_session and token.id != principal.session_id:
                    await tokens.revoke(token.id)
                    ended += 1
            mutation.detail = f"{ended} other session(s) ended"

    async def update(self, principal: Principal, username: str, request: UserUpdate) -> UserOut:
        """Disable or enable an account (admins). Disabling revokes every session and token it holds."""
        async with self.ctx.mutation(principal, "user.update", username) as mutation:
            require_admin(principal, "disable or enable users")
            users = UserRepository(mutation.session)
            user = await users.by_username(username)
            if user is None:
                raise NotFound(f"there is no user {username!r}")
            if request.active is not None and request.active != user.active:
                if not request.active:
                    await self._check_not_last_admin(principal, user, users, "disable")
                    revoked = await TokenRepository(mutation.session).revoke_all(user.id)
                    mutation.detail = f"disabled; {revoked} token(s) and session(s) revoked"
                else:
                    mutation.detail = "enabled"
                user.active = request.active
            return await _user_out(user, WorkspaceRepository(mutation.session))

    async def delete(self, principal: Principal, username: str) -> None:
        async with self.ctx.mutation(principal, "user.delete", username) as mutation:
            require_admin(principal, "delete users")
            users = UserRepository(mutation.session)
            user = await users.by_username(username)
            if user is None:
                raise NotFound(f"there is no user {username!r}")
            await self._check_not_last_admin(principal, user, users, "delete")
            unfinished = await users.unfinished_workloads(user.id, UNFINISHED)
            if unfinished:
                shown = ", ".join(unfinished[:10])
                raise Conflict(
                    f"{username} has {len(unfinished)} unfinished workload(s) ({shown}); cancel them or "
                    "wait for them to end, or disable the account instead"
                )
            await users.delete(user)

    @staticmethod
    async def _check_not_last_admin(
        principal: Principal, user: User, users: UserRepository, what: str
    ) -> None:
        if user.id == principal.user_id:
            raise Conflict(f"you cannot {what} your own account")
        if user.is_admin and user.active and await users.count_active_admins() <= 1:
            raise Conflict(f"{user.username} is the last active platform admin")
