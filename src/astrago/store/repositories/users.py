from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from astrago.store.ids import new_id
from astrago.store.models import ApiToken, IdpSession, PendingLogin, User, Workload


class UserRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, user_id: str) -> User | None:
        return await self.session.get(User, user_id)

    async def by_username(self, username: str) -> User | None:
        return await self.session.scalar(select(User).where(User.username == username))

    async def by_subject(self, subject: str) -> User | None:
        return await self.session.scalar(select(User).where(User.oidc_subject == subject))

    async def list(self) -> Sequence[User]:
        return (await self.session.scalars(select(User).order_by(User.username))).all()

    async def add(
        self,
        username: str,
        password_hash: str | None,
        is_admin: bool,
        source: str = "local",
        oidc_subject: str | None = None,
    ) -> User:
        user = User(
            id=new_id(),
            username=username,
            password_hash=password_hash,
            is_admin=is_admin,
            active=True,
            source=source,
            oidc_subject=oidc_subject,
        )
        self.session.add(user)
        await self.session.flush()
        return user

    async def delete(self, user: User) -> None:
        await self.session.delete(user)

    async def count(self) -> int:
        return int(await self.session.scalar(select(func.count()).select_from(User)) or 0)

    async def count_active_admins(self) -> int:
        query = select(func.count()).select_from(User).where(User.is_admin.is_(True), User.active.is_(True))
        return int(await self.session.scalar(query) or 0)

    async def unfinished_workloads(self, user_id: str, statuses: Collection[str]) -> Sequence[str]:
        query = select(Workload.id).where(Workload.created_by == user_id, Workload.status.in_(statuses))
        return (await self.session.scalars(query)).all()


class TokenRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(
        self,
        user_id: str,
        name: str,
        kind: str,
        token_hash: str,
        expires_at: datetime | None,
        scope: str = "all",
    ) -> ApiToken:
        token = ApiToken(
            id=new_id(),
            user_id=user_id,
            name=name,
            kind=kind,
            token_hash=token_hash,
            expires_at=expires_at,
            scope=scope,
        )
        self.session.add(token)
        await self.session.flush()
        return token

    async def get(self, token_id: str) -> ApiToken | None:
        return await self.session.get(ApiToken, token_id)

    async def by_hash(self, token_hash: str) -> ApiToken | None:
        return await self.session.scalar(select(ApiToken).where(ApiToken.token_hash == token_hash))

    async def live(self, user_id: str | None, now: datetime) -> Sequence[ApiToken]:
        """Tokens and sessions not revoked nor expired: one user's, or everyone's."""
        query = select(ApiToken).where(
            ApiToken.revoked.is_(False), (ApiToken.expires_at.is_(None)) | (ApiToken.expires_at > now)
        )
        if user_id is not None:
            query = query.where(ApiToken.user_id == user_id)
        return (await self.session.scalars(query.order_by(ApiToken.created_at))).all()

    async def touch(self, token_id: str, when: datetime) -> None:
        await self.session.execute(update(ApiToken).where(ApiToken.id == token_id).values(last_used_at=when))

    async def revoke(self, token_id: str) -> None:
        await self.session.execute(update(ApiToken).where(ApiToken.id == token_id).values(revoked=True))

    async def revoke_all(self, user_id: str) -> int:
        result = await self.session.execute(
            update(ApiToken)
            .where(ApiToken.user_id == user_id, ApiToken.revoked.is_(False))
            .values(revoked=True)
        )
        return int(getattr(result, "rowcount", 0) or 0)


class IdentityRepository:
    """Sign-ins in progress and the IdP tokens behind SSO sessions."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add_pending(self, state: str, nonce: str, code_verifier: str, return_to: str) -> None:
        self.session.add(
            PendingLogin(state=state, nonce=nonce, code_verifier=code_verifier, return_to=return_to)
        )
        await self.session.flush()

    async def take_pending(self, state: str) -> PendingLogin | None:
        """The sign-in with this state, removed so that it can be used only once."""
        pending = await self.session.get(PendingLogin, state)
        if pending is not None:
            await self.session.delete(pending)
            await self.session.flush()
        return pending

    async def drop_pending_before(self, cutoff: datetime) -> None:
        await self.session.execute(delete(PendingLogin).where(PendingLogin.created_at < cutoff))

    async def add_idp_session(
        self, token_id: str, client_id: str, id_token: str | None, refresh_token: str | None, now: datetime
    ) -> None:
        self.session.add(
            IdpSession(
                token_id=token_id,
                client_id=client_id,
                id_token=id_token,
                refresh_token=refresh_token,
                checked_at=now,
            )
        )
        await self.session.flush()

    async def idp_session(self, token_id: str) -> IdpSession | None:
        return await self.session.get(IdpSession, token_id)
