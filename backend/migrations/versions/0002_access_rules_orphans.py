"""access rules, orphan transactions, charger status, start deadline

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24 03:47:42.283241
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "driver_group",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_driver_group")),
        sa.UniqueConstraint("name", name=op.f("uq_driver_group_name")),
    )
    op.create_table(
        "orphan_transaction",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("charger_id", sa.String(length=64), nullable=False),
        sa.Column("transaction_id", sa.Integer(), nullable=True),
        sa.Column("meter_stop_wh", sa.Integer(), nullable=True),
        sa.Column("stopped_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_orphan_transaction")),
    )
    with op.batch_alter_table("orphan_transaction", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_orphan_transaction_charger_id"), ["charger_id"], unique=False
        )

    op.create_table(
        "group_membership",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("group_id", sa.Integer(), nullable=False),
        sa.Column("driver_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["driver_id"],
            ["driver.id"],
            name=op.f("fk_group_membership_driver_id_driver"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["group_id"],
            ["driver_group.id"],
            name=op.f("fk_group_membership_group_id_driver_group"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_group_membership")),
        sa.UniqueConstraint("group_id", "driver_id", name=op.f("uq_group_membership_group_id")),
    )
    with op.batch_alter_table("group_membership", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_group_membership_driver_id"), ["driver_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_group_membership_group_id"), ["group_id"], unique=False
        )

    op.create_table(
        "station_group",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("station_id", sa.Integer(), nullable=False),
        sa.Column("group_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["group_id"],
            ["driver_group.id"],
            name=op.f("fk_station_group_group_id_driver_group"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["station_id"],
            ["station.id"],
            name=op.f("fk_station_group_station_id_station"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_station_group")),
        sa.UniqueConstraint("station_id", "group_id", name=op.f("uq_station_group_station_id")),
    )
    with op.batch_alter_table("station_group", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_station_group_group_id"), ["group_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_station_group_station_id"), ["station_id"], unique=False
        )

    with op.batch_alter_table("charger", schema=None) as batch_op:
        batch_op.add_column(sa.Column("status", sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column("error_code", sa.String(length=30), nullable=True))
        batch_op.alter_column("station_id", existing_type=sa.INTEGER(), nullable=True)

    with op.batch_alter_table("charging_session", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("start_deadline_at", sa.DateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(
            sa.Column("idle_warning_sent_at", sa.DateTime(timezone=True), nullable=True)
        )

    with op.batch_alter_table("station", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("access", sa.String(length=12), server_default="public", nullable=False)
        )
        batch_op.add_column(sa.Column("opening_hours", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("station", schema=None) as batch_op:
        batch_op.drop_column("opening_hours")
        batch_op.drop_column("access")

    with op.batch_alter_table("charging_session", schema=None) as batch_op:
        batch_op.drop_column("idle_warning_sent_at")
        batch_op.drop_column("start_deadline_at")

    with op.batch_alter_table("charger", schema=None) as batch_op:
        batch_op.alter_column("station_id", existing_type=sa.INTEGER(), nullable=False)
        batch_op.drop_column("error_code")
        batch_op.drop_column("status")

    with op.batch_alter_table("station_group", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_station_group_station_id"))
        batch_op.drop_index(batch_op.f("ix_station_group_group_id"))

    op.drop_table("station_group")
    with op.batch_alter_table("group_membership", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_group_membership_group_id"))
        batch_op.drop_index(batch_op.f("ix_group_membership_driver_id"))

    op.drop_table("group_membership")
    with op.batch_alter_table("orphan_transaction", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_orphan_transaction_charger_id"))

    op.drop_table("orphan_transaction")
    op.drop_table("driver_group")
