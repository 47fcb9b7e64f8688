"""payment: uncollected amount above the hold, refund count; driver: saved card, plan

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24 05:12:00.233064
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("payment", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("amount_uncollected_minor", sa.Integer(), server_default="0", nullable=False)
        )
        batch_op.add_column(
            sa.Column("refund_count", sa.Integer(), server_default="0", nullable=False)
        )
    with op.batch_alter_table("driver", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("stripe_payment_method_id", sa.String(length=255), nullable=True)
        )
        batch_op.add_column(
            sa.Column("plan", sa.String(length=16), server_default="payg", nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("driver", schema=None) as batch_op:
        batch_op.drop_column("plan")
        batch_op.drop_column("stripe_payment_method_id")
    with op.batch_alter_table("payment", schema=None) as batch_op:
        batch_op.drop_column("refund_count")
        batch_op.drop_column("amount_uncollected_minor")
