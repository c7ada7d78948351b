"""identity: token scopes, SSO users and sessions, sign-ins in progress

Revision ID: identity_1
Revises: console_1
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

# Microseconds on MariaDB too (its DATETIME keeps whole seconds unless told otherwise).
TIMESTAMP = sa.DateTime(timezone=True).with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")

revision: str = "identity_1"
down_revision: str | None = "console_1"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("source", sa.String(length=16), server_default="local", nullable=False))
        batch.add_column(sa.Column("oidc_subject", sa.String(length=255), nullable=True))
        batch.add_column(sa.Column("last_login_at", TIMESTAMP, nullable=True))
        batch.create_unique_constraint(batch.f("uq_users_oidc_subject"), ["oidc_subject"])
    with op.batch_alter_table("api_tokens") as batch:
        batch.add_column(sa.Column("scope", sa.String(length=16), server_default="all", nullable=False))
    with op.batch_alter_table("memberships") as batch:
        batch.add_column(sa.Column("source", sa.String(length=16), server_default="local", nullable=False))
    op.create_table(
        "idp_sessions",
        sa.Column("token_id", sa.String(length=32), nullable=False),
        sa.Column("client_id", sa.String(length=255), nullable=False),
        sa.Column("id_token", sa.Text(), nullable=True),
        sa.Column("refresh_token", sa.Text(), nullable=True),
        sa.Column("checked_at", TIMESTAMP, nullable=False),
        sa.ForeignKeyConstraint(
            ["token_id"],
            ["api_tokens.id"],
            name=op.f("fk_idp_sessions_token_id_api_tokens"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("token_id", name=op.f("pk_idp_sessions")),
    )
    op.create_table(
        "pending_logins",
        sa.Column("state", sa.String(length=64), nullable=False),
        sa.Column("nonce", sa.String(length=64), nullable=False),
        sa.Column("code_verifier", sa.String(length=128), nullable=False),
        sa.Column("return_to", sa.String(length=1024), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("state", name=op.f("pk_pending_logins")),
    )
    with op.batch_alter_table("pending_logins") as batch:
        batch.create_index(batch.f("ix_pending_logins_created_at"), ["created_at"], unique=False)


def downgrade() -> None:
    op.drop_table("pending_logins")
    op.drop_table("idp_sessions")
    with op.batch_alter_table("memberships") as batch:
        batch.drop_column("source")
    with op.batch_alter_table("api_tokens") as batch:
        batch.drop_column("scope")
    with op.batch_alter_table("users") as batch:
        batch.drop_constraint(batch.f("uq_users_oidc_subject"), type_="unique")
        batch.drop_column("last_login_at")
        batch.drop_column("oidc_subject")
        batch.drop_column("source")
