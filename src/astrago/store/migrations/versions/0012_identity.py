"""audit search: the workspace of each record, and indexes for the audit filters

Revision ID: identity_2
Revises: ledger_1
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "identity_2"
down_revision: str | None = "ledger_1"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEXES = {
    "ix_audit_records_actor_id": ["actor", "id"],
    "ix_audit_records_action_id": ["action", "id"],
    "ix_audit_records_target_id": ["target", "id"],
    "ix_audit_records_workspace_id": ["workspace", "id"],
}


# Actions recorded before this revision whose target names their workspace: as the whole target, or
# as the part before the first "/" ("ml-a/alice", "ml-a/datasets (vol_…)", "ml-a/datasets:/a.csv").
TARGET_IS_WORKSPACE = ("workspace.create", "workspace.delete", "workspace.set_defaults", "quota.set")
TARGET_STARTS_WITH_WORKSPACE = ("workspace.set_member", "workspace.remove_member", "volume.", "upload.")


def upgrade() -> None:
    with op.batch_alter_table("audit_records", schema=None) as batch_op:
        batch_op.add_column(sa.Column("workspace", sa.String(length=64), nullable=True))
        for name, columns in INDEXES.items():
            batch_op.create_index(name, columns, unique=False)
    _backfill_workspaces()


def _backfill_workspaces() -> None:
    """Give the records written before this revision their workspace, so a search by workspace finds
    them too: workload actions through the workload, the others from their target."""
    records = sa.table(
        "audit_records",
        sa.column("id", sa.Integer),
        sa.column("action", sa.String),
        sa.column("target", sa.String),
        sa.column("workspace", sa.String),
    )
    workloads = sa.table("workloads", sa.column("id", sa.String), sa.column("workspace_id", sa.String))
    workspaces = sa.table("workspaces", sa.column("id", sa.String), sa.column("name", sa.String))
    owner = (
        sa.select(workspaces.c.name)
        .join(workloads, workloads.c.workspace_id == workspaces.c.id)
        .where(workloads.c.id == records.c.target)
        .scalar_subquery()
    )
    op.execute(records.update().where(records.c.action.like("workload.%")).values(workspace=owner))
    op.execute(
        records.update().where(records.c.action.in_(TARGET_IS_WORKSPACE)).values(workspace=records.c.target)
    )
    prefixed = sa.or_(
        *(
            records.c.action.like(action + "%") if action.endswith(".") else records.c.action == action
            for action in TARGET_STARTS_WITH_WORKSPACE
        )
    )
    bind = op.get_bind()
    rows = bind.execute(sa.select(records.c.id, records.c.target).where(prefixed)).all()
    for record_id, target in rows:
        if target and "/" in target:
            workspace = target.split("/", 1)[0][:64]
            bind.execute(records.update().where(records.c.id == record_id).values(workspace=workspace))


def downgrade() -> None:
    with op.batch_alter_table("audit_records", schema=None) as batch_op:
        for name in INDEXES:
            batch_op.drop_index(name)
        batch_op.drop_column("workspace")
