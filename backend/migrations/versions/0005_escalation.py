"""conversation: why it entered the support queue (escalation reason and detail);
indexes the console's live views poll (conversation.mode, charging_session.updated_at)

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25 09:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("conversation", schema=None) as batch_op:
        batch_op.add_column(sa.Column("escalation_reason", sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column("escalation_detail", sa.String(length=200), nullable=True))
        batch_op.create_index(batch_op.f("ix_conversation_mode"), ["mode"], unique=False)
    with op.batch_alter_table("charging_session", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_charging_session_updated_at"), ["updated_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("charging_session", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_charging_session_updated_at"))
    with op.batch_alter_table("conversation", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_conversation_mode"))
        batch_op.drop_column("escalation_detail")
        batch_op.drop_column("escalation_reason")
