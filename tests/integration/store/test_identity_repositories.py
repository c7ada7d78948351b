"""The identity repositories on SQLite and on a real PostgreSQL: SSO users, token lifetimes and revocation,
sign-ins in progress (used once), IdP sessions, and what deleting a user takes with it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from astrago.store.models import Workload
from astrago.store.repositories import (
    IdentityRepository,
    TokenRepository,
    UserRepository,
    WorkspaceRepository,
)

NOW = datetime.now(UTC)


async def test_sso_users_tokens_and_revocation(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions.begin() as session:
        users = UserRepository(session)
        admin = await users.add("root", "hash", is_admin=True)
        kim = await users.add("kim", None, is_admin=False, source="oidc", oidc_subject="https://idp kim-1")
        tokens = TokenRepository(session)
        live = await tokens.add(kim.id, "ci", "api", "h1", NOW + timedelta(days=90), scope="read")
        await tokens.add(kim.id, "old", "api", "h2", NOW - timedelta(seconds=1))
        await tokens.add(admin.id, "login", "session", "h3", NOW + timedelta(hours=12))
    async with sessions.begin() as session:
        users = UserRepository(session)
        found = await users.by_subject("https://idp kim-1")
        assert found is not None
        assert (found.username, found.source, found.password_hash) == ("kim", "oidc", None)
        assert await users.count_active_admins() == 1
        tokens = TokenRepository(session)
        assert [t.name for t in await tokens.live(kim.id, NOW)] == ["ci"]  # the expired one is not live
        assert {t.name for t in await tokens.live(None, NOW)} == {"ci", "login"}
        assert (await tokens.get(live.id)).scope == "read"  # type: ignore[union-attr]
        assert await tokens.revoke_all(kim.id) == 2
    async with sessions() as session:
        assert await TokenRepository(session).live(kim.id, NOW) == []


async def test_pending_sign_ins_are_taken_once_and_idp_sessions_follow_their_token(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions.begin() as session:
        identity = IdentityRepository(session)
        await identity.add_pending("state-1", "nonce", "verifier", "/workloads")
        kim = await UserRepository(session).add("kim", None, is_admin=False, source="oidc", oidc_subject="s")
        token = await TokenRepository(session).add(kim.id, "sso", "browser", "h", NOW + timedelta(hours=1))
        await identity.add_idp_session(token.id, "astrago-client", "id-token", "refresh-token", NOW)
    async with sessions.begin() as session:
        pending = await IdentityRepository(session).take_pending("state-1")
        assert pending is not None
        assert (pending.nonce, pending.code_verifier, pending.return_to) == (
            "nonce",
            "verifier",
            "/workloads",
        )
    async with sessions.begin() as session:
        identity = IdentityRepository(session)
        assert await identity.take_pending("state-1") is None  # a state is good for one callback only
        idp = await identity.idp_session(token.id)
        assert idp is not None
        assert (idp.client_id, idp.refresh_token) == ("astrago-client", "refresh-token")
        await identity.add_pending("state-2", "n", "v", "/")
        await identity.drop_pending_before(datetime.now(UTC) + timedelta(minutes=1))
        assert await identity.take_pending("state-2") is None


async def test_deleting_a_user_takes_tokens_and_memberships_and_keeps_workload_history(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions.begin() as session:
        users = UserRepository(session)
        kim = await users.add("kim", "hash", is_admin=False)
        workspaces = WorkspaceRepository(session)
        space = await workspaces.add("ml-a", "")
        await workspaces.set_member(space.id, kim.id, "member", source="idp")
        token = await TokenRepository(session).add(kim.id, "ci", "api", "h", None)
        session.add(
            Workload(
                id="w1", workspace_id=space.id, name="w1", kind="job", status="SUCCEEDED", replicas=1,
                spec={}, created_by=kim.id,
            )
        )  # fmt: skip
    async with sessions.begin() as session:
        users = UserRepository(session)
        assert await users.unfinished_workloads(kim.id, ["PENDING", "RUNNING"]) == []
        membership = await WorkspaceRepository(session).membership(space.id, kim.id)
        assert membership is not None
        assert membership.source == "idp"
        user = await users.get(kim.id)
        assert user is not None
        await users.delete(user)
    async with sessions() as session:
        assert await TokenRepository(session).get(token.id) is None
        assert await WorkspaceRepository(session).membership(space.id, kim.id) is None
        workload = await session.get(Workload, 1)
        assert workload is not None
        assert workload.created_by is None
