"""local authorization lists: published entries per scope, their versions, each charger's copy

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01 21:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "local_list_entry",
        sa.Column("scope", sa.String(length=32), nullable=False),
        sa.Column("id_tag", sa.String(length=20), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("scope", "id_tag", name=op.f("pk_local_list_entry")),
    )
    op.create_index(
        op.f("ix_local_list_entry_version"), "local_list_entry", ["version"], unique=False
    )
    op.create_table(
        "local_list_scope",
        sa.Column("scope", sa.String(length=32), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("scope", name=op.f("pk_local_list_scope")),
    )
    op.create_table(
        "charger_local_list",
        sa.Column("charger_id", sa.String(length=64), nullable=False),
        sa.Column("scope", sa.String(length=32), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("outcome", sa.String(length=32), nullable=True),
        sa.Column("synced_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["charger_id"],
            ["charger.id"],
            name=op.f("fk_charger_local_list_charger_id_charger"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("charger_id", name=op.f("pk_charger_local_list")),
    )


def downgrade() -> None:
    op.drop_table("charger_local_list")
    op.drop_table("local_list_scope")
    op.drop_index(op.f("ix_local_list_entry_version"), table_name="local_list_entry")
    op.drop_table("local_list_entry")
