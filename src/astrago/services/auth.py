"""Accounts and sessions: the first admin, login, bearer and API tokens, resolving a caller."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from astrago.auth.passwords import hash_password, needs_rehash, verify_password
from astrago.auth.principal import Principal
from astrago.auth.tokens import new_token, token_digest
from astrago.domain.enums import WorkspaceRole
from astrago.services.context import ServiceContext
from astrago.services.errors import NotFound, Unauthenticated
from astrago.services.schemas import TokenCreate, TokenOut
from astrago.store.models import ApiToken, User
from astrago.store.repositories import TokenRepository, UserRepository, WorkspaceRepository

ADMIN_USERNAME = "admin"
DEFAULT_WORKSPACE = "default"
# Bound how often "last used" is written: a hot token must not turn every read into a write.
_LAST_USED_RESOLUTION = timedelta(minutes=1)


def _token_out(token: ApiToken, username: str, secret: str | None = None) -> TokenOut:
    return TokenOut(
        id=token.id,
        name=token.name,
        kind=token.kind,
        token=secret,
        created_at=token.created_at,
        expires_at=token.expires_at,
        last_used_at=token.last_used_at,
        username=username,
    )


class AuthService:
    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx

    async def ensure_admin(self) -> str | None:
        """First start: the `admin` account and a `default` workspace it manages, so that a new install can
        run a job right after logging in. Returns a generated password to print once, or None."""
        async with self.ctx.write() as session:
            users = UserRepository(session)
            if await users.by_username(ADMIN_USERNAME) is not None:
                return None
            given = self.ctx.settings.admin_password
            password = given or secrets.token_urlsafe(12)
            admin = await users.add(ADMIN_USERNAME, hash_password(password), is_admin=True)
            workspaces = WorkspaceRepository(session)
            if await workspaces.by_name(DEFAULT_WORKSPACE) is None:
                default = await workspaces.add(DEFAULT_WORKSPACE, "created at first start")
                await workspaces.set_member(default.id, admin.id, WorkspaceRole.MANAGER.value)
            return None if given else password

    async def login(self, username: str, password: str) -> TokenOut:
        async with self.ctx.mutation(None, "auth.login", username) as mutation:
            user = await UserRepository(mutation.session).by_username(username)
            password_ok = verify_password(user.password_hash if user else None, password)
            if user is None or not password_ok or not user.active:
                raise Unauthenticated("wrong username or password")
            if user.password_hash and needs_rehash(user.password_hash):
                user.password_hash = hash_password(password)  # upgrade to the current argon2 parameters
            secret = new_token()
            expires = datetime.now(UTC) + timedelta(seconds=self.ctx.settings.token_ttl_s)
            token = await TokenRepository(mutation.session).add(
                user.id, "login", "session", token_digest(secret), expires
            )
            return _token_out(token, user.username, secret)

    async def authenticate(self, secret: str) -> Principal:
        """The caller behind a bearer token. A read on every request; a write at most once a minute."""
        now = datetime.now(UTC)
        async with self.ctx.read() as session:
            token = await TokenRepository(session).by_hash(token_digest(secret))
            if token is None or token.revoked or not token.user.active:
                raise Unauthenticated("the token is not valid; log in again with `astrago login`")
            if token.expires_at is not None and token.expires_at <= now:
                raise Unauthenticated("the token has expired; log in again with `astrago login`")
            principal = await self._principal(token.user, WorkspaceRepository(session))
            stale = token.last_used_at is None or now - token.last_used_at > _LAST_USED_RESOLUTION
            token_id = token.id
        if stale:
            async with self.ctx.write() as session:
                await TokenRepository(session).touch(token_id, now)
        return principal

    @staticmethod
    async def _principal(user: User, workspaces: WorkspaceRepository) -> Principal:
        memberships = await workspaces.memberships_of_user(user.id)
        roles = {m.workspace_id: WorkspaceRole(m.role) for m in memberships}
        return Principal(user_id=user.id, username=user.username, is_admin=user.is_admin, roles=roles)

    async def create_token(self, principal: Principal, request: TokenCreate) -> TokenOut:
        async with self.ctx.mutation(principal, "token.create", request.name) as mutation:
            secret = new_token()
            expires = (
                datetime.now(UTC) + timedelta(days=request.expires_in_days)
                if request.expires_in_days
                else None
            )
            token = await TokenRepository(mutation.session).add(
                principal.user_id, request.name, "api", token_digest(secret), expires
            )
            mutation.target = token.id
            return _token_out(token, principal.username, secret)

    async def list_tokens(self, principal: Principal) -> Sequence[TokenOut]:
        async with self.ctx.read() as session:
            tokens = await TokenRepository(session).for_user(principal.user_id)
            return [_token_out(t, principal.username) for t in tokens if not t.revoked]

    async def revoke_token(self, principal: Principal, token_id: str) -> None:
        async with self.ctx.mutation(principal, "token.revoke", token_id) as mutation:
            if not await TokenRepository(mutation.session).revoke(token_id, principal.user_id):
                raise NotFound(f"you have no token with id {token_id}")
