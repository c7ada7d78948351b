"""nodes.gpus_held_by_others; microsecond timestamps on MariaDB/MySQL

Revision ID: scale_1
Revises: cli_1
Create Date: 2026-12-01 22:40:00

MariaDB's DATETIME keeps whole seconds unless created with a fractional precision; the initial schema's
timestamps get microseconds there, as PostgreSQL and SQLite keep them. Other databases are unchanged by
that part.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = "scale_1"
down_revision: str | None = "cli_1"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# (table, column, nullable) of every timestamp in the initial schema
TIMESTAMPS = (
    ("audit_records", "created_at", False),
    ("leases", "expires_at", False),
    ("nodes", "last_seen_at", False),
    ("users", "created_at", False),
    ("workspaces", "created_at", False),
    ("api_tokens", "created_at", False),
    ("api_tokens", "expires_at", True),
    ("api_tokens", "last_used_at", True),
    ("memberships", "created_at", False),
    ("workloads", "created_at", False),
    ("workloads", "updated_at", False),
    ("workloads", "admitted_at", True),
    ("workloads", "started_at", True),
    ("workloads", "finished_at", True),
    ("events", "created_at", False),
    ("replicas", "started_at", True),
    ("replicas", "finished_at", True),
)


def _is_mysql() -> bool:
    return op.get_bind().dialect.name in ("mysql", "mariadb")


def upgrade() -> None:
    with op.batch_alter_table("nodes", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("gpus_held_by_others", sa.Integer(), nullable=False, server_default="0")
        )
    if _is_mysql():
        for table, column, nullable in TIMESTAMPS:
            op.alter_column(
                table,
                column,
                type_=mysql.DATETIME(fsp=6),
                existing_type=mysql.DATETIME(),
                existing_nullable=nullable,
            )


def downgrade() -> None:
    if _is_mysql():
        for table, column, nullable in TIMESTAMPS:
            op.alter_column(
                table,
                column,
                type_=mysql.DATETIME(),
                existing_type=mysql.DATETIME(fsp=6),
                existing_nullable=nullable,
            )
    with op.batch_alter_table("nodes", schema=None) as batch_op:
        batch_op.drop_column("gpus_held_by_others")
