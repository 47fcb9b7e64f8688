"""drivers' reservations and the queue: tariff reservation minutes and fee, queue entries

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-01 21:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("tariff") as batch:
        batch.add_column(
            sa.Column("reservation_minutes", sa.Integer(), nullable=False, server_default="0")
        )
        batch.add_column(
            sa.Column("reservation_fee_minor", sa.Integer(), nullable=False, server_default="0")
        )
    with op.batch_alter_table("reservation") as batch:
        batch.add_column(sa.Column("fee_minor", sa.Integer(), nullable=False, server_default="0"))
    op.create_table(
        "queue_entry",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("station_id", sa.Integer(), nullable=False),
        sa.Column("driver_id", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("reservation_id", sa.Integer(), nullable=True),
        sa.Column("connector_code", sa.String(length=8), nullable=True),
        sa.Column("offered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("offer_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["driver_id"],
            ["driver.id"],
            name=op.f("fk_queue_entry_driver_id_driver"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["station_id"],
            ["station.id"],
            name=op.f("fk_queue_entry_station_id_station"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_queue_entry")),
    )
    op.create_index(op.f("ix_queue_entry_driver_id"), "queue_entry", ["driver_id"])
    op.create_index(op.f("ix_queue_entry_station_id"), "queue_entry", ["station_id"])
    op.create_index("ix_queue_entry_station_status", "queue_entry", ["station_id", "status"])


def downgrade() -> None:
    op.drop_index("ix_queue_entry_station_status", table_name="queue_entry")
    op.drop_index(op.f("ix_queue_entry_station_id"), table_name="queue_entry")
    op.drop_index(op.f("ix_queue_entry_driver_id"), table_name="queue_entry")
    op.drop_table("queue_entry")
    with op.batch_alter_table("reservation") as batch:
        batch.drop_column("fee_minor")
    with op.batch_alter_table("tariff") as batch:
        batch.drop_column("reservation_fee_minor")
        batch.drop_column("reservation_minutes")
