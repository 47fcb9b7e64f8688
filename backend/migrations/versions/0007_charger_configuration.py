"""charger configuration keys as last reported (GetConfiguration / ChangeConfiguration)

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 19:10:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "charger_configuration_key",
        sa.Column("charger_id", sa.String(length=64), nullable=False),
        sa.Column("key", sa.String(length=50), nullable=False),
        sa.Column("value", sa.String(length=500), nullable=True),
        sa.Column("readonly", sa.Boolean(), nullable=False),
        sa.Column("reported_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["charger_id"],
            ["charger.id"],
            name=op.f("fk_charger_configuration_key_charger_id_charger"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("charger_id", "key", name=op.f("pk_charger_configuration_key")),
    )


def downgrade() -> None:
    op.drop_table("charger_configuration_key")
