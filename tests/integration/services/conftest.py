"""The real services on a fresh database (SQLite, PostgreSQL, MariaDB) with one node registered, so that
submissions are accepted, and the `admin` account of a first start."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from astrago.auth.principal import Principal
from astrago.backends.base import BackendCapabilities, Capability
from astrago.services.registry import Services
from astrago.store.repositories import NodeRepository, UserRepository
from tests.support.services import services_on

CAPABILITIES = BackendCapabilities(backend="test", supported=frozenset({Capability.COMMANDS}))


@pytest.fixture
async def services(database_url: str, tmp_path: Path) -> AsyncIterator[Services]:
    async with services_on(database_url, tmp_path, CAPABILITIES) as registry:
        async with registry.ctx.write() as session:
            await NodeRepository(session).upsert(
                name="node-1",
                backend="test",
                cpu_milli=64000,
                memory_mib=256 * 1024,
                schedulable=True,
                simulated=True,
                labels={},
                devices=[],
                seen_at=datetime.now(UTC),
            )
        yield registry


@pytest.fixture
async def admin(services: Services) -> Principal:
    async with services.ctx.read() as session:
        user = await UserRepository(session).by_username("admin")
    assert user is not None
    return Principal(user_id=user.id, username="admin", is_admin=True)
