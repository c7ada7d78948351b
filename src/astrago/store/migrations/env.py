"""Alembic environment: runs on the connection handed in by astrago.store.migrate (or a URL for the CLI)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from astrago.store.models import Base

target_metadata = Base.metadata


def run_on(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters tables by copy
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through astrago.store.migrate (the server applies them at start)")
run_on(connection)
