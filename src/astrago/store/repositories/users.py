from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from astrago.store.ids import new_id
from astrago.store.models import ApiToken, User


class UserRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, user_id: str) -> User | None:
        return await self.session.get(User, user_id)

    async def by_username(self, username: str) -> User | None:
        return await self.session.scalar(select(User).where(User.username == username))

    async def list(self) -> Sequence[User]:
        return (await self.session.scalars(select(User).order_by(User.username))).all()

    async def add(self, username: str, password_hash: str | None, is_admin: bool) -> User:
        user = User(
            id=new_id(), username=username, password_hash=password_hash, is_admin=is_admin, active=True
        )
        self.session.add(user)
        await self.session.flush()
        return user

    async def count(self) -> int:
        return int(await self.session.scalar(select(func.count()).select_from(User)) or 0)


class TokenRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(
        self, user_id: str, name: str, kind: str, token_hash: str, expires_at: datetime | None
    ) -> ApiToken:
        token = ApiToken(
            id=new_id(), user_id=user_id, name=name, kind=kind, token_hash=token_hash, expires_at=expires_at
        )
        self.session.add(token)
        await self.session.flush()
        return token

    async def by_hash(self, token_hash: str) -> ApiToken | None:
        return await self.session.scalar(select(ApiToken).where(ApiToken.token_hash == token_hash))

    async def for_user(self, user_id: str) -> Sequence[ApiToken]:
        query = select(ApiToken).where(ApiToken.user_id == user_id, ApiToken.kind == "api")
        return (await self.session.scalars(query.order_by(ApiToken.created_at))).all()

    async def touch(self, token_id: str, when: datetime) -> None:
        await self.session.execute(update(ApiToken).where(ApiToken.id == token_id).values(last_used_at=when))

    async def revoke(self, token_id: str, user_id: str) -> bool:
        result = await self.session.execute(
            update(ApiToken).where(ApiToken.id == token_id, ApiToken.user_id == user_id).values(revoked=True)
        )
        return bool(getattr(result, "rowcount", 0))
