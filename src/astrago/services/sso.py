"""Single sign-on through an OIDC provider (Keycloak realm `astrago` by default).

Browser: authorization code + PKCE, the IdP's tokens kept here and a session cookie for the browser. CLI:
the device grant runs between the CLI and the IdP, then its access token is exchanged for an AstraGo
session. Scripts: IdP access tokens (e.g. client credentials) are accepted as bearer tokens.

Who may do what comes from the IdP at every login and every re-check: JIT user creation, the admin flag and
the workspace roles its groups give (re-synced, the changes audited). A user disabled or removed at the IdP
loses access at the first request after the session's next re-check (`oidc_recheck_s`, a refresh at the
IdP) or, for bearer access tokens, when that token expires (IdP access tokens are short-lived)."""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, NoReturn

from authlib.common.security import generate_token
from sqlalchemy.ext.asyncio import AsyncSession

from astrago.auth.claims import IdpIdentity, RoleMapping, identity_from
from astrago.auth.oidc import IdpUnavailable, OidcClient, OidcError
from astrago.auth.principal import Principal
from astrago.auth.sessions import TokenKind
from astrago.domain.enums import WorkspaceRole
from astrago.services.auth import AuthService, principal_of
from astrago.services.context import ServiceContext
from astrago.services.errors import InvalidInput, Unauthenticated, Unavailable
from astrago.services.schemas import LogoutOut, SsoConfigOut, SsoTokenIn, TokenOut
from astrago.store.models import User
from astrago.store.repositories import (
    AuditRepository,
    IdentityRepository,
    TokenRepository,
    UserRepository,
    WorkspaceRepository,
)

log = logging.getLogger(__name__)
PENDING_LOGIN_TTL = timedelta(minutes=10)
_BEARER_CACHE_MAX = 10_000


@dataclass(frozen=True)
class SignIn:
    session: TokenOut
    return_to: str


def safe_return_path(value: str | None) -> str:
    """Only a path on this server: an absolute URL here would make the login an open redirect."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    return value


class SsoService:
    def __init__(self, ctx: ServiceContext, auth: AuthService) -> None:
        self.ctx = ctx
        self.auth = auth
        settings = ctx.settings
        self.client: OidcClient | None = None
        if settings.oidc_issuer:
            self.client = OidcClient(
                issuer=settings.oidc_issuer,
                client_id=settings.oidc_client_id,
                client_secret=settings.oidc_client_secret,
                scopes=settings.oidc_scopes,
                leeway_s=settings.oidc_leeway_s,
                tls_verify=settings.oidc_tls_verify,
            )
            auth.idp_recheck = self.recheck
        self.mapping = RoleMapping(
            admin_roles=tuple(settings.oidc_admin_roles),
            role_claims=tuple(settings.oidc_role_claims),
            group_claim=settings.oidc_group_claim,
            group_prefix=settings.oidc_group_prefix,
        )
        self.audience = settings.oidc_audience or settings.oidc_client_id
        self._recheck_locks: dict[str, asyncio.Lock] = {}
        self._synced: dict[str, IdpIdentity] = {}  # subject -> identity last applied (bearer tokens)

    @property
    def enabled(self) -> bool:
        return self.client is not None

    def _require(self) -> OidcClient:
        if self.client is None:
            raise InvalidInput("single sign-on is not configured on this server (ASTRAGO_OIDC_ISSUER)")
        return self.client

    async def config(self) -> SsoConfigOut:
        if self.client is None:
            return SsoConfigOut(enabled=False)
        discovery = await self._discovery()
        return SsoConfigOut(
            enabled=True,
            issuer=self.client.issuer,
            cli_client_id=self.ctx.settings.oidc_cli_client_id,
            device_authorization_endpoint=discovery.device_authorization_endpoint,
            authorization_endpoint=discovery.authorization_endpoint,
            token_endpoint=discovery.token_endpoint,
            scopes=self.ctx.settings.oidc_scopes,
        )

    async def _discovery(self) -> Any:
        try:
            return await self._require().discovery()
        except OidcError as exc:
            raise Unavailable(str(exc)) from exc

    # -- browser: authorization code + PKCE ------------------------------------------------------------

    async def begin(self, return_to: str | None, redirect_uri: str) -> str:
        """Where to send the browser to sign in; the sign-in is remembered (state, nonce, PKCE verifier)."""
        client = self._require()
        state, nonce, verifier = secrets.token_urlsafe(32), secrets.token_urlsafe(32), generate_token(64)
        url = await self._idp_call(client.authorization_url(redirect_uri, state, nonce, verifier))
        now = datetime.now(UTC)
        async with self.ctx.write() as session:
            identity = IdentityRepository(session)
            await identity.drop_pending_before(now - PENDING_LOGIN_TTL)
            await identity.add_pending(state, nonce, verifier, safe_return_path(return_to))
        return str(url)

    async def callback(self, code: str, state: str, redirect_uri: str) -> SignIn:
        client = self._require()
        async with self.ctx.write() as session:
            pending = await IdentityRepository(session).take_pending(state)
            if pending is not None:
                nonce, verifier, return_to = pending.nonce, pending.code_verifier, pending.return_to
                started = pending.created_at
        if pending is None or datetime.now(UTC) - started > PENDING_LOGIN_TTL:
            await self._refuse("auth.sso.login", None, "unknown or expired sign-in state")
            raise Unauthenticated("this sign-in is unknown or has expired; start again")
        tokens = await self._idp_call(client.exchange_code(code, verifier, redirect_uri))
        id_token = tokens.get("id_token")
        if not isinstance(id_token, str):
            raise Unauthenticated("the identity provider returned no ID token")
        claims = await self._verified(
            client.verify(id_token, client.client_id, nonce=nonce), "auth.sso.login"
        )
        opened = await self._sign_in(
            claims, TokenKind.BROWSER, client.client_id, id_token, tokens.get("refresh_token")
        )
        return SignIn(opened, return_to)

    async def refused_at_idp(self, error: str, description: str | None) -> NoReturn:
        """The IdP sent the browser back without a code (the user cancelled, or the IdP refused)."""
        self._require()
        why = f"the identity provider did not sign you in: {error}" + (
            f" ({description})" if description else ""
        )
        await self._refuse("auth.sso.login", None, why)
        raise Unauthenticated(why)

    # -- CLI: IdP tokens (device grant) for an AstraGo session -----------------------------------------

    async def exchange(self, body: SsoTokenIn) -> TokenOut:
        client = self._require()
        claims = await self._verified(client.verify(body.access_token, self.audience), "auth.sso.login")
        client_id = str(claims.get("azp") or claims.get("client_id") or self.ctx.settings.oidc_cli_client_id)
        return await self._sign_in(claims, TokenKind.SESSION, client_id, body.id_token, body.refresh_token)

    async def _sign_in(
        self,
        claims: Mapping[str, Any],
        kind: TokenKind,
        client_id: str,
        id_token: str | None,
        refresh_token: str | None,
    ) -> TokenOut:
        identity = identity_from(claims, self._require().issuer, self.mapping)
        now = datetime.now(UTC)
        async with self.ctx.write() as session:
            user = await self._sync(session, identity)
            if not user.active:
                AuditRepository(session).add(
                    user.username, "auth.sso.login", user.username, "denied", "disabled"
                )
                refused = True
            else:
                refused = False
                opened = await self.auth.open_session(session, user.id, kind, f"sso:{client_id}")
                await IdentityRepository(session).add_idp_session(
                    opened.id, client_id, id_token, refresh_token, now
                )
                AuditRepository(session).add(user.username, "auth.sso.login", opened.id, "ok", kind.value)
        if refused:
            raise Unauthenticated("this account is disabled; ask a platform admin")
        return opened

    # -- scripts: IdP access tokens as bearer tokens ---------------------------------------------------

    async def authenticate_bearer(self, token: str) -> Principal:
        client = self._require()
        claims = await self._verified(client.verify(token, self.audience), None)
        identity = identity_from(claims, client.issuer, self.mapping)
        if self._synced.get(identity.subject) != identity:  # write only when the IdP's view changed
            async with self.ctx.write() as session:
                await self._sync(session, identity)
            if len(self._synced) > _BEARER_CACHE_MAX:
                self._synced.clear()
            self._synced[identity.subject] = identity
        async with self.ctx.read() as session:
            user = await UserRepository(session).by_subject(identity.subject)
            if user is None or not user.active:
                raise Unauthenticated("this account is disabled; ask a platform admin")
            return await principal_of(user, WorkspaceRepository(session), None)

    # -- re-check at the IdP ---------------------------------------------------------------------------

    async def recheck(self, token_id: str, now: datetime) -> bool:
        """Refresh an SSO session at the IdP when due: re-sync the user's roles, or end the session if the
        IdP refuses (user disabled or removed there, session ended there). An unreachable IdP keeps the
        session until the next request tries again. True when the session or its user may have changed."""
        if self.client is None or not await self._recheck_due(token_id, now):
            return False
        # One refresh per session at a time: IdPs rotate refresh tokens, so a second concurrent refresh
        # with the same token would be refused and end the session.
        lock = self._recheck_locks.setdefault(token_id, asyncio.Lock())
        try:
            async with lock:
                return await self._refresh_session(self.client, token_id, now)
        finally:
            if not lock.locked():
                self._recheck_locks.pop(token_id, None)

    async def _recheck_due(self, token_id: str, now: datetime) -> bool:
        due = timedelta(seconds=self.ctx.settings.oidc_recheck_s)
        async with self.ctx.read() as session:
            idp = await IdentityRepository(session).idp_session(token_id)
            return idp is not None and now - idp.checked_at >= due

    async def _refresh_session(self, client: OidcClient, token_id: str, now: datetime) -> bool:
        if not await self._recheck_due(token_id, now):
            return False  # another request refreshed it while this one waited
        async with self.ctx.read() as session:
            idp = await IdentityRepository(session).idp_session(token_id)
            assert idp is not None
            client_id, refresh_token = idp.client_id, idp.refresh_token
        try:
            if not refresh_token:
                raise OidcError("the session has no refresh token to re-check it with")
            tokens = await client.refresh(client_id, refresh_token)
            claims = await self._refreshed_claims(client, client_id, tokens)
        except IdpUnavailable as exc:
            log.warning("cannot re-check SSO session %s: %s", token_id, exc)
            return False
        except OidcError as exc:
            await self._end(token_id, str(exc))
            return True
        identity = identity_from(claims, client.issuer, self.mapping)
        async with self.ctx.write() as session:
            user = await self._sync(session, identity)
            idp = await IdentityRepository(session).idp_session(token_id)
            if idp is not None:
                idp.checked_at = now
                idp.refresh_token = tokens.get("refresh_token") or refresh_token
                idp.id_token = tokens.get("id_token") or idp.id_token
            if not user.active:
                await TokenRepository(session).revoke(token_id)
        return True

    async def _refreshed_claims(
        self, client: OidcClient, client_id: str, tokens: Mapping[str, Any]
    ) -> dict[str, Any]:
        id_token = tokens.get("id_token")
        if isinstance(id_token, str):
            return await client.verify(id_token, client_id)
        access = tokens.get("access_token")
        if not isinstance(access, str):
            raise OidcError("the refresh returned no token")
        return await client.verify(access, self.audience)

    async def _end(self, token_id: str, why: str) -> None:
        async with self.ctx.write() as session:
            tokens = TokenRepository(session)
            token = await tokens.get(token_id)
            if token is None:
                return
            await tokens.revoke(token_id)
            AuditRepository(session).add(
                token.user.username, "auth.sso.ended", token_id, "ok", f"the IdP refused the re-check: {why}"
            )

    # -- logout ----------------------------------------------------------------------------------------

    async def logout(self, principal: Principal, post_logout_redirect_uri: str) -> LogoutOut:
        """End the caller's session here, and tell where the IdP's session ends too (RP-initiated logout)."""
        if principal.session_id is None:
            raise InvalidInput("an IdP access token has no session here to log out of; let it expire")
        async with self.ctx.write() as session:
            await TokenRepository(session).revoke(principal.session_id)
            idp = await IdentityRepository(session).idp_session(principal.session_id)
            id_token = idp.id_token if idp is not None else None
            AuditRepository(session).add(principal.username, "auth.logout", principal.session_id, "ok", None)
        if idp is None or self.client is None:
            return LogoutOut()
        try:
            url = await self.client.end_session_url(id_token, post_logout_redirect_uri)
        except OidcError as exc:
            log.warning("cannot build the IdP logout URL: %s", exc)
            url = None
        return LogoutOut(logout_url=url)

    # -- helpers ---------------------------------------------------------------------------------------

    async def _sync(self, session: AsyncSession, identity: IdpIdentity) -> User:
        """Create the user on first sight, then align the admin flag and the IdP-given workspace roles."""
        users = UserRepository(session)
        audit = AuditRepository(session)
        user = await users.by_subject(identity.subject)
        if user is None:
            username = await self._free_username(users, identity.username)
            user = await users.add(
                username, None, identity.admin, source="oidc", oidc_subject=identity.subject
            )
            audit.add(username, "user.create", username, "ok", f"first SSO sign-in ({identity.subject})")
        changes: list[str] = []
        if user.is_admin != identity.admin:
            user.is_admin = identity.admin
            changes.append("platform admin" if identity.admin else "no longer platform admin")
        changes += await self._sync_workspaces(session, user, identity.workspaces)
        if changes:
            audit.add(user.username, "user.roles.sync", user.username, "ok", "; ".join(changes))
        return user

    @staticmethod
    async def _sync_workspaces(
        session: AsyncSession, user: User, wanted: Mapping[str, WorkspaceRole]
    ) -> list[str]:
        workspaces = WorkspaceRepository(session)
        audit = AuditRepository(session)
        changes = []
        names = {w.id: w.name for w in await workspaces.list()}
        current = {names[m.workspace_id]: m for m in await workspaces.memberships_of_user(user.id)}
        for name, role in sorted(wanted.items()):
            workspace = await workspaces.by_name(name)
            if workspace is None:
                workspace = await workspaces.add(name, "created at sign-in from an IdP group")
                audit.add(user.username, "workspace.create", name, "ok", "from an IdP group", workspace=name)
            membership = current.get(name)
            if membership is None or membership.role != role.value or membership.source != "idp":
                await workspaces.set_member(workspace.id, user.id, role.value, source="idp")
                changes.append(f"{role.value} in {name}")
        for name, membership in current.items():
            if membership.source == "idp" and name not in wanted:
                await workspaces.remove_member(membership.workspace_id, user.id)
                changes.append(f"removed from {name}")
        return changes

    @staticmethod
    async def _free_username(users: UserRepository, wanted: str) -> str:
        """A local account with the same name is a different person until an admin says otherwise."""
        candidate, n = wanted, 1
        while await users.by_username(candidate) is not None:
            n += 1
            candidate = f"{wanted[:58]}-sso{n if n > 2 else ''}"
        return candidate

    async def _idp_call(self, call: Any) -> Any:
        try:
            return await call
        except IdpUnavailable as exc:
            raise Unavailable(str(exc)) from exc
        except OidcError as exc:
            await self._refuse("auth.sso.login", None, str(exc))
            raise Unauthenticated(f"sign-in failed: {exc}") from exc

    async def _verified(self, call: Any, action: str | None) -> dict[str, Any]:
        """Claims of a verified token; a refusal is audited for sign-ins (`action`), not for each bad
        bearer token (a spray of those must not become a spray of writes)."""
        try:
            claims: dict[str, Any] = await call
        except IdpUnavailable as exc:
            raise Unavailable(str(exc)) from exc
        except OidcError as exc:
            if action is not None:
                await self._refuse(action, None, str(exc))
            raise Unauthenticated(str(exc)) from exc
        return claims

    async def _refuse(self, action: str, target: str | None, why: str) -> None:
        await self.ctx.record_refusal(None, action, target, Unauthenticated(why))
