"""Engine and session factory; SQLite gets WAL, a busy timeout and foreign keys; MariaDB gets PostgreSQL's
isolation level."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from astrago.store import write_tracking  # noqa: F401  (its session listeners let caches see this process's writes)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets readers (API) and the writer (controllers) proceed together; the busy timeout turns
    # brief writer contention into a wait instead of "database is locked".
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def create_engine(url: str) -> AsyncEngine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, connect_args={"timeout": 10})
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    if parsed.get_backend_name() in ("mysql", "mariadb"):
        # READ COMMITTED as on PostgreSQL: InnoDB's default (REPEATABLE READ) would pin every read in a
        # transaction to its first snapshot. Connections are recycled before the server's wait_timeout
        # (8 h) closes them; pre-ping catches a server restarted in between.
        return create_async_engine(
            url,
            pool_pre_ping=True,
            pool_size=10,
            max_overflow=20,
            pool_recycle=3600,
            isolation_level="READ COMMITTED",
        )
    return create_async_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)


def create_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


def is_sqlite(engine: AsyncEngine) -> bool:
    return engine.dialect.name == "sqlite"
