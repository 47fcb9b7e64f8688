"""reservations (OCPP 1.6 ReserveNow / CancelReservation)

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01 22:15:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "reservation",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("charger_id", sa.String(length=64), nullable=False),
        sa.Column("connector_id", sa.Integer(), nullable=False),
        sa.Column("id_tag", sa.String(length=20), nullable=False),
        sa.Column("driver_id", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("outcome", sa.String(length=32), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("session_id", sa.Integer(), nullable=True),
        sa.Column("requested_by", sa.String(length=254), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["charger_id"],
            ["charger.id"],
            name=op.f("fk_reservation_charger_id_charger"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["driver_id"],
            ["driver.id"],
            name=op.f("fk_reservation_driver_id_driver"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reservation")),
    )
    op.create_index(op.f("ix_reservation_charger_id"), "reservation", ["charger_id"])
    op.create_index(op.f("ix_reservation_driver_id"), "reservation", ["driver_id"])
    op.create_index("ix_reservation_charger_status", "reservation", ["charger_id", "status"])


def downgrade() -> None:
    op.drop_index("ix_reservation_charger_status", table_name="reservation")
    op.drop_index(op.f("ix_reservation_driver_id"), table_name="reservation")
    op.drop_index(op.f("ix_reservation_charger_id"), table_name="reservation")
    op.drop_table("reservation")
