"""The real services of one server on a fresh database, in-process (no HTTP), for service-level tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from astrago.backends.base import BackendCapabilities
from astrago.config import Settings
from astrago.services.context import ServiceContext
from astrago.services.registry import Services
from astrago.store.db import create_engine, create_session_factory, is_sqlite
from astrago.store.migrate import upgrade_to_head


@asynccontextmanager
async def services_on(
    database_url: str, data_dir: Path, capabilities: BackendCapabilities
) -> AsyncIterator[Services]:
    """Migrated to head, with the `admin` account and `default` workspace of a first start; writes are
    serialized on SQLite as the server does."""
    engine = create_engine(database_url)
    await upgrade_to_head(engine)
    ctx = ServiceContext(
        create_session_factory(engine),
        Settings(data_dir=data_dir, admin_password="x" * 12),
        capabilities,
        serialize_writes=is_sqlite(engine),
    )
    registry = Services.build(ctx)
    await registry.auth.ensure_admin()
    try:
        yield registry
    finally:
        await engine.dispose()
