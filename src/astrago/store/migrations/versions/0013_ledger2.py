"""usage ledger: used GPU time per allocation interval and UTC hour, filled in from the stored samples

Revision ID: ledger2_1
Revises: identity_2
"""

from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

# Microseconds on MariaDB too (its DATETIME keeps whole seconds unless told otherwise).
TIMESTAMP = sa.DateTime(timezone=True).with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")
BATCH = 20_000

revision: str = "ledger2_1"
down_revision: str | None = "identity_2"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    hours = op.create_table(
        "allocation_usage_hours",
        sa.Column("interval_id", sa.Integer(), nullable=False),
        sa.Column("epoch_hour", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("measured_s", sa.Float(), nullable=False),
        sa.Column("util_percent_seconds", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["interval_id"],
            ["allocation_intervals.id"],
            name=op.f("fk_allocation_usage_hours_interval_id_allocation_intervals"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("interval_id", "epoch_hour", name=op.f("pk_allocation_usage_hours")),
    )
    with op.batch_alter_table("allocation_usage_hours", schema=None) as batch_op:
        batch_op.create_index("ix_allocation_usage_hours_epoch_hour", ["epoch_hour"], unique=False)
    _add_up_stored_samples(hours)


def _add_up_stored_samples(hours: sa.Table) -> None:
    """The samples stored before this revision (at most the telemetry's retention) are added up once, as
    the sampler adds up new ones: each sample with a utilisation, clipped to the run of its replica that
    holds its period, into the UTC hour its (clipped) period starts in."""
    intervals = sa.table(
        "allocation_intervals",
        sa.column("id"),
        sa.column("workload_id"),
        sa.column("replica_index"),
        sa.column("started_at", TIMESTAMP),
        sa.column("ended_at", TIMESTAMP),
    )
    samples = sa.table(
        "workload_gpu_samples",
        sa.column("workload_id"),
        sa.column("replica_index"),
        sa.column("at", TIMESTAMP),
        sa.column("sampled_s"),
        sa.column("gpu_util_percent"),
    )
    bind = op.get_bind()
    runs: dict[tuple[str, int], list[tuple[datetime, datetime | None, int]]] = defaultdict(list)
    for interval_id, workload_id, replica, started, ended in bind.execute(
        sa.select(
            intervals.c.id,
            intervals.c.workload_id,
            intervals.c.replica_index,
            intervals.c.started_at,
            intervals.c.ended_at,
        )
    ):
        runs[(workload_id, replica)].append(
            (_utc(started), None if ended is None else _utc(ended), interval_id)
        )
    if not runs:
        return
    for replica_runs in runs.values():
        replica_runs.sort(key=lambda run: run[0])
    totals: dict[tuple[int, int], list[float]] = defaultdict(lambda: [0.0, 0.0])
    rows = bind.execute(
        sa.select(
            samples.c.workload_id,
            samples.c.replica_index,
            samples.c.at,
            samples.c.sampled_s,
            samples.c.gpu_util_percent,
        ).where(samples.c.gpu_util_percent.is_not(None))
    )
    for workload_id, replica, at, sampled_s, util in rows:
        start = _utc(at)
        end = start.timestamp() + sampled_s
        for started, ended, interval_id in reversed(runs.get((workload_id, replica), [])):
            if started.timestamp() >= end:
                continue
            if ended is not None and ended <= start:
                break
            first = max(start.timestamp(), started.timestamp())
            last = end if ended is None else min(end, ended.timestamp())
            if last > first:
                total = totals[(interval_id, int(first // 3600))]
                total[0] += last - first
                total[1] += float(util) * (last - first)
            break
    records = [
        {"interval_id": i, "epoch_hour": h, "measured_s": m, "util_percent_seconds": u}
        for (i, h), (m, u) in totals.items()
    ]
    for offset in range(0, len(records), BATCH):
        op.bulk_insert(hours, records[offset : offset + BATCH])


def _utc(value: object) -> datetime:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    assert isinstance(value, datetime)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def downgrade() -> None:
    with op.batch_alter_table("allocation_usage_hours", schema=None) as batch_op:
        batch_op.drop_index("ix_allocation_usage_hours_epoch_hour")
    op.drop_table("allocation_usage_hours")
