"""security profiles: the lowest profile a charger may still connect with (no downgrade)

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02 01:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("charger") as batch:
        batch.add_column(
            sa.Column("security_profile", sa.Integer(), nullable=False, server_default="0")
        )
        batch.add_column(
            sa.Column("client_certificate_sha256", sa.String(length=64), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("charger") as batch:
        batch.drop_column("client_certificate_sha256")
        batch.drop_column("security_profile")
