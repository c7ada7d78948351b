"""The caller behind a token is remembered for a second, but never past a change this process makes to
what it was read from: a revoked token, a disabled account or a changed membership counts on the next
request. On SQLite, PostgreSQL and MariaDB."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import update

import astrago.services.read_cache as read_cache
from astrago.auth.principal import Principal
from astrago.domain.enums import WorkspaceRole
from astrago.services.errors import Unauthenticated
from astrago.services.registry import Services
from astrago.services.schemas import MemberSet, TokenCreate, WorkspaceCreate
from astrago.store.models import ApiToken
from astrago.store.repositories import UserRepository


async def _token(services: Services, admin: Principal) -> tuple[str, str]:
    created = await services.auth.create_token(admin, TokenCreate(name="ci"))
    assert created.token is not None
    return created.id, created.token


async def test_a_revoked_token_is_refused_on_the_next_request(services: Services, admin: Principal) -> None:
    token_id, secret = await _token(services, admin)
    assert (await services.auth.authenticate(secret)).username == "admin"
    assert (await services.auth.authenticate(secret)).username == "admin"  # now from the cache
    await services.auth.revoke_token(admin, token_id)
    with pytest.raises(Unauthenticated, match="revoked"):
        await services.auth.authenticate(secret)


async def test_a_disabled_account_and_a_new_membership_count_at_once(
    services: Services, admin: Principal
) -> None:
    _token_id, secret = await _token(services, admin)
    caller = await services.auth.authenticate(secret)
    workspace = await services.workspaces.create(admin, WorkspaceCreate(name="ml-b"))
    await services.workspaces.set_member(
        admin, "ml-b", MemberSet(username="admin", role=WorkspaceRole.VIEWER)
    )
    again = await services.auth.authenticate(secret)
    assert again.role_in(workspace.id) is WorkspaceRole.VIEWER
    assert caller.role_in(workspace.id) is None
    async with services.ctx.write() as session:
        user = await UserRepository(session).by_username("admin")
        assert user is not None
        user.active = False
    with pytest.raises(Unauthenticated, match="disabled"):
        await services.auth.authenticate(secret)


async def test_a_revocation_by_another_process_counts_within_a_second(
    services: Services, admin: Principal, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process's write is not seen by this one's listeners: only the entry's age bounds it."""
    token_id, secret = await _token(services, admin)
    await services.auth.authenticate(secret)  # its first use is written down ("last used"), then remembered
    await services.auth.authenticate(secret)
    engine = services.ctx.sessions.kw["bind"]
    async with engine.begin() as connection:  # Core, outside any ORM session: as another process would
        await connection.execute(update(ApiToken).where(ApiToken.id == token_id).values(revoked=True))
    assert (await services.auth.authenticate(secret)).username == "admin"  # still within its second
    later = time.monotonic() + 1.01
    monkeypatch.setattr(read_cache.time, "monotonic", lambda: later)
    with pytest.raises(Unauthenticated, match="revoked"):
        await services.auth.authenticate(secret)
