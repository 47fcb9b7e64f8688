"""sms delivery status

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24 04:55:28.338013
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "sms_delivery",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("message_sid", sa.String(length=64), nullable=True),
        sa.Column("to_number", sa.String(length=20), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("error_code", sa.String(length=16), nullable=True),
        sa.Column("segments", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sms_delivery")),
        sa.UniqueConstraint("message_sid", name=op.f("uq_sms_delivery_message_sid")),
    )
    with op.batch_alter_table("sms_delivery", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_sms_delivery_to_number"), ["to_number"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("sms_delivery", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sms_delivery_to_number"))

    op.drop_table("sms_delivery")
