"""GPU telemetry: per-workload and per-GPU samples, downsampled

Revision ID: telemetry_1
Revises: interactive_1
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

# Microseconds on MariaDB too (its DATETIME keeps whole seconds unless told otherwise).
TIMESTAMP = sa.DateTime(timezone=True).with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")

revision: str = "telemetry_1"
down_revision: str | None = "interactive_1"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "workload_gpu_samples",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("workload_id", sa.String(length=32), nullable=False),
        sa.Column("replica_index", sa.Integer(), nullable=False),
        sa.Column("node", sa.String(length=253), nullable=False),
        sa.Column("gpu_index", sa.Integer(), nullable=False),
        sa.Column("at", TIMESTAMP, nullable=False),
        sa.Column("resolution_s", sa.Integer(), nullable=False),
        sa.Column("sampled_s", sa.Integer(), nullable=False),
        sa.Column("gpu_util_percent", sa.Float(), nullable=True),
        sa.Column("memory_used_bytes", sa.BigInteger(), nullable=True),
        sa.Column("gpu_util_peak_percent", sa.Float(), nullable=True),
        sa.Column("memory_peak_bytes", sa.BigInteger(), nullable=True),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.ForeignKeyConstraint(
            ["workload_id"],
            ["workloads.id"],
            name=op.f("fk_workload_gpu_samples_workload_id_workloads"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_workload_gpu_samples")),
    )
    with op.batch_alter_table("workload_gpu_samples", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_workload_gpu_samples_at"), ["at"], unique=False)
        batch_op.create_index("ix_workload_gpu_samples_workload_at", ["workload_id", "at"], unique=False)
    op.create_table(
        "gpu_device_samples",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("node", sa.String(length=253), nullable=False),
        sa.Column("gpu_index", sa.Integer(), nullable=False),
        sa.Column("at", TIMESTAMP, nullable=False),
        sa.Column("resolution_s", sa.Integer(), nullable=False),
        sa.Column("sampled_s", sa.Integer(), nullable=False),
        sa.Column("gpu_util_percent", sa.Float(), nullable=True),
        sa.Column("memory_used_bytes", sa.BigInteger(), nullable=True),
        sa.Column("memory_total_bytes", sa.BigInteger(), nullable=True),
        sa.Column("temperature_celsius", sa.Float(), nullable=True),
        sa.Column("power_watts", sa.Float(), nullable=True),
        sa.Column("healthy", sa.Boolean(), nullable=True),
        sa.Column("mig_enabled", sa.Boolean(), nullable=False),
        sa.Column("gpu_util_peak_percent", sa.Float(), nullable=True),
        sa.Column("memory_peak_bytes", sa.BigInteger(), nullable=True),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gpu_device_samples")),
    )
    with op.batch_alter_table("gpu_device_samples", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_gpu_device_samples_at"), ["at"], unique=False)
        batch_op.create_index("ix_gpu_device_samples_node_gpu_at", ["node", "gpu_index", "at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("gpu_device_samples", schema=None) as batch_op:
        batch_op.drop_index("ix_gpu_device_samples_node_gpu_at")
        batch_op.drop_index(batch_op.f("ix_gpu_device_samples_at"))
    op.drop_table("gpu_device_samples")
    with op.batch_alter_table("workload_gpu_samples", schema=None) as batch_op:
        batch_op.drop_index("ix_workload_gpu_samples_workload_at")
        batch_op.drop_index(batch_op.f("ix_workload_gpu_samples_at"))
    op.drop_table("workload_gpu_samples")
