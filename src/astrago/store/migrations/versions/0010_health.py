"""GPU health and cordons: fenced or degraded GPUs, cordoned nodes and GPUs

Revision ID: health_1
Revises: alerts_1
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

# Microseconds on MariaDB too (its DATETIME keeps whole seconds unless told otherwise).
TIMESTAMP = sa.DateTime(timezone=True).with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")

revision: str = "health_1"
down_revision: str | None = "alerts_1"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "gpu_health",
        sa.Column("node", sa.String(length=253), nullable=False),
        sa.Column("gpu_index", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("cause", sa.Text(), nullable=False),
        sa.Column("sticky", sa.Boolean(), nullable=False),
        sa.Column("since", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("node", "gpu_index", name=op.f("pk_gpu_health")),
    )
    op.create_table(
        "node_cordons",
        sa.Column("node", sa.String(length=253), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("cordoned_by", sa.String(length=128), nullable=True),
        sa.Column("cordoned_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("node", name=op.f("pk_node_cordons")),
    )
    op.create_table(
        "gpu_cordons",
        sa.Column("node", sa.String(length=253), nullable=False),
        sa.Column("gpu_index", sa.Integer(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("cordoned_by", sa.String(length=128), nullable=True),
        sa.Column("cordoned_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("node", "gpu_index", name=op.f("pk_gpu_cordons")),
    )


def downgrade() -> None:
    op.drop_table("gpu_cordons")
    op.drop_table("node_cordons")
    op.drop_table("gpu_health")
