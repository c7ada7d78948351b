"""Accounts and sessions: the first admin, password login, bearer tokens, API tokens, resolving a caller."""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from astrago.auth.passwords import hash_password_async, needs_rehash, verify_password_async
from astrago.auth.principal import Principal
from astrago.auth.ratelimit import LoginThrottle, SlidingWindowLimiter
from astrago.auth.sessions import TokenKind, TokenScope, why_invalid
from astrago.auth.tokens import new_token, token_digest
from astrago.domain.enums import WorkspaceRole
from astrago.services.context import ServiceContext
from astrago.services.errors import Forbidden, NotFound, TooManyRequests, Unauthenticated
from astrago.services.read_cache import ReadCache
from astrago.services.schemas import TokenCreate, TokenOut
from astrago.store.models import ApiToken, User
from astrago.store.repositories import TokenRepository, UserRepository, WorkspaceRepository

ADMIN_USERNAME = "admin"
DEFAULT_WORKSPACE = "default"
WRONG_LOGIN = "wrong username or password"
# Bound how often "last used" is written: a hot token must not turn every read into a write.
_LAST_USED_RESOLUTION = timedelta(minutes=1)

# What a caller is read from (users, tokens, memberships; SSO sessions and workspaces bound them too).
CALLER_TABLES = ("users", "api_tokens", "memberships", "workspaces", "idp_sessions")

IdpRecheck = Callable[[str, datetime], Awaitable[bool]]  # True when it changed the session or user


def token_out(token: ApiToken, username: str, secret: str | None = None) -> TokenOut:
    return TokenOut(
        id=token.id,
        name=token.name,
        kind=token.kind,
        scope=TokenScope(token.scope),
        token=secret,
        created_at=token.created_at,
        expires_at=token.expires_at,
        last_used_at=token.last_used_at,
        username=username,
    )


async def principal_of(user: User, workspaces: WorkspaceRepository, token: ApiToken | None) -> Principal:
    memberships = await workspaces.memberships_of_user(user.id)
    return Principal(
        user_id=user.id,
        username=user.username,
        is_admin=user.is_admin,
        roles={m.workspace_id: WorkspaceRole(m.role) for m in memberships},
        read_only=token is not None and token.scope == TokenScope.READ,
        session_id=token.id if token is not None else None,
    )


def _valid_for(token: ApiToken, now: datetime, idle: timedelta) -> timedelta:
    """How long the token stays valid if nothing changes (its expiry, or its idle limit for a session)."""
    ends = [token.expires_at] if token.expires_at is not None else []
    if TokenKind(token.kind).is_login_session:
        ends.append((token.last_used_at or token.created_at) + idle)
    return min((end - now for end in ends), default=timedelta.max)


class AuthService:
    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx
        settings = ctx.settings
        window = settings.login_failure_window_s
        self.throttle = LoginThrottle(
            per_account=SlidingWindowLimiter(settings.login_failures_per_account, window),
            per_address=SlidingWindowLimiter(settings.login_failures_per_address, window),
        )
        self.idp_recheck: IdpRecheck | None = None  # set when SSO is configured
        # Token digest → caller. Forgotten at once when this process writes a table it was read from (a
        # revoked token, a disabled user, a changed membership) and after a second in any case, so that
        # a revocation by another process takes effect within that second.
        self._callers: ReadCache[str, Principal] = ReadCache(CALLER_TABLES, max_age_s=1.0)

    @property
    def _idle(self) -> timedelta:
        return timedelta(seconds=self.ctx.settings.session_idle_s)

    async def ensure_admin(self) -> str | None:
        """First start: the `admin` account and a `default` workspace it manages, so that a new install can
        run a job right after logging in. Returns a generated password to print once, or None."""
        async with self.ctx.read() as session:
            if await UserRepository(session).by_username(ADMIN_USERNAME) is not None:
                return None
        given = self.ctx.settings.admin_password
        password = given or secrets.token_urlsafe(12)
        password_hash = await hash_password_async(password)
        async with self.ctx.write() as session:
            users = UserRepository(session)
            if await users.by_username(ADMIN_USERNAME) is not None:
                return None  # another replica created it meanwhile
            admin = await users.add(ADMIN_USERNAME, password_hash, is_admin=True)
            workspaces = WorkspaceRepository(session)
            if await workspaces.by_name(DEFAULT_WORKSPACE) is None:
                default = await workspaces.add(DEFAULT_WORKSPACE, "created at first start")
                await workspaces.set_member(default.id, admin.id, WorkspaceRole.MANAGER.value)
            return None if given else password

    async def login(self, username: str, password: str, address: str) -> TokenOut:
        """A login session for a local account. The password is checked off the event loop and before any
        write transaction; failures are counted per account and per address."""
        retry_after = self.throttle.retry_after(username, address)
        if retry_after:
            error = TooManyRequests(
                f"too many failed logins; try again in {retry_after} s", retry_after_s=retry_after
            )
            await self.ctx.record_refusal(None, "auth.login", username, error)
            raise error
        async with self.ctx.read() as session:
            user = await UserRepository(session).by_username(username)
            password_hash = user.password_hash if user is not None else None
        password_ok = await verify_password_async(password_hash, password)
        if user is None or not password_ok or not user.active:
            self.throttle.failed(username, address)
            reason = "unknown user" if user is None else "disabled" if password_ok else "wrong password"
            await self.ctx.record_refusal(None, "auth.login", username, Unauthenticated(reason))
            raise Unauthenticated(WRONG_LOGIN)  # the same answer whatever the reason: names do not leak
        self.throttle.succeeded(username)
        upgraded = (
            await hash_password_async(password) if password_hash and needs_rehash(password_hash) else None
        )
        async with self.ctx.mutation(None, "auth.login", username) as mutation:
            return await self.open_session(mutation.session, user.id, TokenKind.SESSION, "login", upgraded)

    async def open_session(
        self, session: AsyncSession, user_id: str, kind: TokenKind, name: str, new_hash: str | None = None
    ) -> TokenOut:
        """A new login session for `user_id` inside the caller's write transaction."""
        now = datetime.now(UTC)
        user = await UserRepository(session).get(user_id)
        assert user is not None
        user.last_login_at = now
        if new_hash:
            user.password_hash = new_hash  # upgrade to the current argon2 parameters
        secret = new_token()
        expires = now + timedelta(seconds=self.ctx.settings.session_absolute_s)
        token = await TokenRepository(session).add(user.id, name, kind.value, token_digest(secret), expires)
        return token_out(token, user.username, secret)

    async def authenticate(self, secret: str) -> Principal:
        """The caller behind a bearer token or session cookie. A read per request at most (a token seen in
        the last second is answered from `_callers`); a write at most once a minute; a call to the IdP
        when an SSO session is due for its re-check."""
        digest = token_digest(secret)
        if (cached := self._callers.get(digest)) is not None:
            return cached
        stamp = self._callers.stamp()
        now = datetime.now(UTC)
        async with self.ctx.read() as session:
            token = await TokenRepository(session).by_hash(digest)
            if token is None:
                raise Unauthenticated("the token is not valid; log in again with `astrago login`")
            reason = why_invalid(token, now, self._idle)
            if reason is not None:
                raise Unauthenticated(f"the token is not valid: {reason}; log in again with `astrago login`")
            principal = await principal_of(token.user, WorkspaceRepository(session), token)
            resolution = min(_LAST_USED_RESOLUTION, self._idle / 4)
            stale = token.last_used_at is None or now - token.last_used_at > resolution
            token_id, kind = token.id, TokenKind(token.kind)
            # Remembered only while its next use would not be written down either: a cached answer must
            # not keep "last used" (and so an idle session's life) from moving on.
            last_used = token.last_used_at or now
            remember_for = min(_valid_for(token, now, self._idle), last_used + resolution - now)
        if kind.is_login_session and self.idp_recheck is not None and await self.idp_recheck(token_id, now):
            async with self.ctx.read() as session:  # the IdP ended the session or changed the user's roles
                token = await TokenRepository(session).by_hash(token_digest(secret))
                assert token is not None
                if (reason := why_invalid(token, now, self._idle)) is not None:
                    raise Unauthenticated(f"the session ended: {reason}; log in again")
                principal = await principal_of(token.user, WorkspaceRepository(session), token)
        if stale:
            async with self.ctx.write() as session:
                await TokenRepository(session).touch(token_id, now)
        elif not (kind.is_login_session and self.idp_recheck is not None):  # an IdP's: checked each time
            self._callers.put(digest, principal, stamp, remember_for.total_seconds())
        return principal

    async def create_token(self, principal: Principal, request: TokenCreate) -> TokenOut:
        async with self.ctx.mutation(principal, "token.create", request.name) as mutation:
            secret = new_token()
            days = request.expires_in_days or self.ctx.settings.api_token_default_days
            expires = datetime.now(UTC) + timedelta(days=days)
            scope = TokenScope.READ if request.read_only else TokenScope.ALL
            token = await TokenRepository(mutation.session).add(
                principal.user_id, request.name, TokenKind.API.value, token_digest(secret), expires, scope
            )
            mutation.target = token.id
            mutation.detail = f"scope {scope.value}, expires {expires:%Y-%m-%d}"
            return token_out(token, principal.username, secret)

    async def list_tokens(self, principal: Principal, everyone: bool = False) -> Sequence[TokenOut]:
        """Live tokens and sessions: the caller's own, or (admins) everyone's."""
        if everyone and not principal.is_admin:
            raise Forbidden("only a platform admin can list everyone's tokens")
        now = datetime.now(UTC)
        async with self.ctx.read() as session:
            tokens = await TokenRepository(session).live(None if everyone else principal.user_id, now)
            return [token_out(t, t.user.username) for t in tokens if why_invalid(t, now, self._idle) is None]

    async def revoke_token(self, principal: Principal, token_id: str) -> None:
        """Owners revoke their own tokens and sessions; admins revoke anyone's."""
        async with self.ctx.mutation(principal, "token.revoke", token_id) as mutation:
            tokens = TokenRepository(mutation.session)
            token = await tokens.get(token_id)
            if token is None or (token.user_id != principal.user_id and not principal.is_admin):
                raise NotFound(f"you have no token with id {token_id}")
            await tokens.revoke(token_id)
            mutation.detail = f"{token.kind} {token.name!r} of {token.user.username}"
