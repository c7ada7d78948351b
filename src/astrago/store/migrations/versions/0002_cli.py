"""workspace defaults for CPU and memory; the raw product name of each GPU

Revision ID: cli_1
Revises: 0001
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "cli_1"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("workspaces") as batch:
        batch.add_column(sa.Column("defaults", sa.JSON(), nullable=True))
    with op.batch_alter_table("devices") as batch:
        batch.add_column(sa.Column("product", sa.String(length=128), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("devices") as batch:
        batch.drop_column("product")
    with op.batch_alter_table("workspaces") as batch:
        batch.drop_column("defaults")
