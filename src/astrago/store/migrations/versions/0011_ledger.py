"""usage ledger: allocation intervals (one per replica run), filled in from the replicas running now

Revision ID: ledger_1
Revises: health_1
"""

import json
from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

# Microseconds on MariaDB too (its DATETIME keeps whole seconds unless told otherwise).
TIMESTAMP = sa.DateTime(timezone=True).with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")
ENDED_STATES = ("SUCCEEDED", "FAILED", "STOPPED", "LOST")

revision: str = "ledger_1"
down_revision: str | None = "health_1"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    intervals = op.create_table(
        "allocation_intervals",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("workload_id", sa.String(length=32), nullable=False),
        sa.Column("workload_name", sa.String(length=128), nullable=False),
        sa.Column("replica_index", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.String(length=32), nullable=False),
        sa.Column("workspace", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.String(length=32), nullable=True),
        sa.Column("username", sa.String(length=64), nullable=True),
        sa.Column("node", sa.String(length=253), nullable=False),
        sa.Column("gpu_model", sa.String(length=96), nullable=True),
        sa.Column("gpu_count", sa.Integer(), nullable=False),
        sa.Column("gpu_milli", sa.Integer(), nullable=False),
        sa.Column("mig_profile", sa.String(length=32), nullable=True),
        sa.Column("cpu_milli", sa.Integer(), nullable=False),
        sa.Column("memory_mib", sa.BigInteger(), nullable=False),
        sa.Column("started_at", TIMESTAMP, nullable=False),
        sa.Column("ended_at", TIMESTAMP, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_allocation_intervals")),
        sa.UniqueConstraint("workload_id", "replica_index", "started_at", name="uq_allocation_intervals_run"),
    )
    with op.batch_alter_table("allocation_intervals", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_allocation_intervals_ended_at"), ["ended_at"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_allocation_intervals_workload_id"), ["workload_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_allocation_intervals_workspace_id"), ["workspace_id"], unique=False
        )
        batch_op.create_index("ix_allocation_intervals_window", ["started_at", "ended_at"], unique=False)
    _record_replicas_that_ran(intervals)


def _record_replicas_that_ran(intervals: sa.Table) -> None:
    """Replicas that ran before the ledger existed get their interval, so that an upgrade in the middle
    of a job loses none of it (replicas of workloads requeued before the upgrade are gone: no record)."""
    replicas = sa.table(
        "replicas",
        *(sa.column(c) for c in ("workload_id", "index", "node", "cpu_milli", "memory_mib", "gpu_milli")),
        sa.column("gpu_indices", sa.JSON()),
        *(sa.column(c) for c in ("mig_profile", "state")),
        sa.column("started_at", TIMESTAMP),
        sa.column("finished_at", TIMESTAMP),
    )
    workloads = sa.table("workloads", *(sa.column(c) for c in ("id", "name", "workspace_id", "created_by")))
    workspaces = sa.table("workspaces", sa.column("id"), sa.column("name"))
    users = sa.table("users", sa.column("id"), sa.column("username"))
    devices = sa.table("devices", sa.column("node_name"), sa.column("index"), sa.column("model"))
    bind = op.get_bind()
    rows = bind.execute(
        sa.select(
            replicas.c.workload_id, replicas.c.index, replicas.c.node, replicas.c.cpu_milli,
            replicas.c.memory_mib, replicas.c.gpu_indices, replicas.c.gpu_milli, replicas.c.mig_profile,
            replicas.c.state, replicas.c.started_at, replicas.c.finished_at, workloads.c.name,
            workloads.c.workspace_id, workspaces.c.name, workloads.c.created_by, users.c.username,
        )
        .join(workloads, workloads.c.id == replicas.c.workload_id)
        .join(workspaces, workspaces.c.id == workloads.c.workspace_id)
        .outerjoin(users, users.c.id == workloads.c.created_by)
        .where(replicas.c.started_at.is_not(None))
    ).all()  # fmt: skip
    models = {
        (node, index): model
        for node, index, model in bind.execute(
            sa.select(devices.c.node_name, devices.c.index, devices.c.model)
        )
    }
    records = []
    for row in rows:
        (workload_id, index, node, cpu, memory, gpu_indices, gpu_milli, mig, state, started, finished) = row[
            :11
        ]
        name, workspace_id, workspace, user_id, username = row[11:]
        gpus = _json_list(gpu_indices)
        records.append(
            {
                "workload_id": workload_id,
                "workload_name": name,
                "replica_index": index,
                "workspace_id": workspace_id,
                "workspace": workspace,
                "user_id": user_id,
                "username": username,
                "node": node,
                "gpu_model": models.get((node, gpus[0])) if gpus else None,
                "gpu_count": len(gpus),
                "gpu_milli": gpu_milli * len(gpus),
                "mig_profile": mig,
                "cpu_milli": cpu,
                "memory_mib": memory,
                "started_at": _utc(started),
                "ended_at": _utc(finished or started) if state in ENDED_STATES else None,
            }
        )
    if records:
        op.bulk_insert(intervals, records)


def _json_list(value: object) -> list[int]:
    if isinstance(value, str):
        value = json.loads(value)
    return [int(v) for v in value] if isinstance(value, list) else []


def _utc(value: object) -> object:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return value


def downgrade() -> None:
    with op.batch_alter_table("allocation_intervals", schema=None) as batch_op:
        batch_op.drop_index("ix_allocation_intervals_window")
        batch_op.drop_index(batch_op.f("ix_allocation_intervals_workspace_id"))
        batch_op.drop_index(batch_op.f("ix_allocation_intervals_workload_id"))
        batch_op.drop_index(batch_op.f("ix_allocation_intervals_ended_at"))
    op.drop_table("allocation_intervals")
