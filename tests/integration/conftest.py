"""Fixtures shared by the integration tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from astrago.store.db import create_engine, create_session_factory
from astrago.store.migrate import upgrade_to_head


@pytest.fixture
async def sessions(database_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """Sessions on a fresh database (each of SQLite, PostgreSQL and MariaDB) migrated to the head."""
    engine = create_engine(database_url)
    await upgrade_to_head(engine)
    yield create_session_factory(engine)
    await engine.dispose()
