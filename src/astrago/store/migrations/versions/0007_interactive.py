"""log archives: finished replicas' logs kept in the database

Revision ID: interactive_1
Revises: volumes_1
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

# Microseconds on MariaDB too (its DATETIME keeps whole seconds unless told otherwise).
TIMESTAMP = sa.DateTime(timezone=True).with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")

revision: str = "interactive_1"
down_revision: str | None = "volumes_1"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "log_archives",
        sa.Column("workload_id", sa.String(length=32), nullable=False),
        sa.Column("replica_index", sa.Integer(), nullable=False),
        sa.Column("content", sa.LargeBinary(length=2**32 - 1), nullable=False),
        sa.Column("archived_at", TIMESTAMP, nullable=False),
        sa.ForeignKeyConstraint(
            ["workload_id"],
            ["workloads.id"],
            name=op.f("fk_log_archives_workload_id_workloads"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("workload_id", "replica_index", name=op.f("pk_log_archives")),
    )
    with op.batch_alter_table("log_archives", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_log_archives_archived_at"), ["archived_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("log_archives", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_log_archives_archived_at"))
    op.drop_table("log_archives")
