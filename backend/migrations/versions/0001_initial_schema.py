"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-24 03:37:47.334179
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "driver",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("phone", sa.String(length=20), nullable=True),
        sa.Column("telegram_user_id", sa.BigInteger(), nullable=True),
        sa.Column("language", sa.String(length=2), nullable=False),
        sa.Column("billing", sa.String(length=20), nullable=False),
        sa.Column("blocked", sa.Boolean(), nullable=False),
        sa.Column("stripe_customer_id", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_driver")),
        sa.UniqueConstraint("phone", name=op.f("uq_driver_phone")),
        sa.UniqueConstraint("telegram_user_id", name=op.f("uq_driver_telegram_user_id")),
    )
    op.create_table(
        "processed_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("event_id", sa.String(length=255), nullable=False),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_processed_event")),
        sa.UniqueConstraint("source", "event_id", name=op.f("uq_processed_event_source")),
    )
    op.create_table(
        "staff_user",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("role", sa.String(length=10), nullable=False),
        sa.Column("password_hash", sa.String(length=200), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_staff_user")),
        sa.UniqueConstraint("email", name=op.f("uq_staff_user_email")),
    )
    op.create_table(
        "station",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("address", sa.String(length=200), nullable=False),
        sa.Column("city", sa.String(length=80), nullable=False),
        sa.Column("latitude", sa.Float(), nullable=False),
        sa.Column("longitude", sa.Float(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_station")),
    )
    with op.batch_alter_table("station", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_station_city"), ["city"], unique=False)

    op.create_table(
        "charger",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("station_id", sa.Integer(), nullable=False),
        sa.Column("password_hash", sa.String(length=200), nullable=True),
        sa.Column("boot_status", sa.String(length=16), nullable=False),
        sa.Column("vendor", sa.String(length=50), nullable=True),
        sa.Column("model", sa.String(length=50), nullable=True),
        sa.Column("serial_number", sa.String(length=50), nullable=True),
        sa.Column("firmware_version", sa.String(length=50), nullable=True),
        sa.Column("online", sa.Boolean(), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["station_id"], ["station.id"], name=op.f("fk_charger_station_id_station")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_charger")),
    )
    with op.batch_alter_table("charger", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_charger_station_id"), ["station_id"], unique=False)

    op.create_table(
        "conversation",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("address", sa.String(length=64), nullable=False),
        sa.Column("driver_id", sa.Integer(), nullable=True),
        sa.Column("language", sa.String(length=2), nullable=False),
        sa.Column("state", sa.String(length=64), nullable=True),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("mode", sa.String(length=10), nullable=False),
        sa.Column("assigned_to", sa.Integer(), nullable=True),
        sa.Column("waiting_since", sa.DateTime(timezone=True), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["assigned_to"], ["staff_user.id"], name=op.f("fk_conversation_assigned_to_staff_user")
        ),
        sa.ForeignKeyConstraint(
            ["driver_id"], ["driver.id"], name=op.f("fk_conversation_driver_id_driver")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_conversation")),
        sa.UniqueConstraint("channel", "address", name=op.f("uq_conversation_channel")),
    )
    with op.batch_alter_table("conversation", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_conversation_assigned_to"), ["assigned_to"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_conversation_driver_id"), ["driver_id"], unique=False)

    op.create_table(
        "id_tag",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("id_tag", sa.String(length=20), nullable=False),
        sa.Column("driver_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["driver_id"],
            ["driver.id"],
            name=op.f("fk_id_tag_driver_id_driver"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_id_tag")),
        sa.UniqueConstraint("id_tag", name=op.f("uq_id_tag_id_tag")),
    )
    with op.batch_alter_table("id_tag", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_id_tag_driver_id"), ["driver_id"], unique=False)

    op.create_table(
        "tariff",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("station_id", sa.Integer(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("price_per_kwh_minor", sa.Integer(), nullable=False),
        sa.Column("price_per_minute_minor", sa.Integer(), nullable=False),
        sa.Column("session_fee_minor", sa.Integer(), nullable=False),
        sa.Column("idle_fee_per_minute_minor", sa.Integer(), nullable=False),
        sa.Column("idle_grace_minutes", sa.Integer(), nullable=False),
        sa.Column("vat_rate_percent", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["station_id"],
            ["station.id"],
            name=op.f("fk_tariff_station_id_station"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tariff")),
        sa.UniqueConstraint("station_id", name=op.f("uq_tariff_station_id")),
    )
    op.create_table(
        "charging_session",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("driver_id", sa.Integer(), nullable=True),
        sa.Column("charger_id", sa.String(length=64), nullable=False),
        sa.Column("connector_id", sa.Integer(), nullable=False),
        sa.Column("id_tag", sa.String(length=20), nullable=True),
        sa.Column("transaction_id", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("failure_reason", sa.String(length=200), nullable=True),
        sa.Column("channel", sa.String(length=16), nullable=True),
        sa.Column("meter_start_wh", sa.Integer(), nullable=True),
        sa.Column("meter_stop_wh", sa.Integer(), nullable=True),
        sa.Column("energy_wh", sa.Integer(), nullable=False),
        sa.Column("power_w", sa.Float(), nullable=True),
        sa.Column("cost_minor", sa.Integer(), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("tariff_snapshot", sa.JSON(), nullable=True),
        sa.Column("cost_breakdown", sa.JSON(), nullable=True),
        sa.Column("transaction_data", sa.JSON(), nullable=True),
        sa.Column("stop_reason", sa.String(length=30), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("charging_finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("stopped_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["charger_id"], ["charger.id"], name=op.f("fk_charging_session_charger_id_charger")
        ),
        sa.ForeignKeyConstraint(
            ["driver_id"], ["driver.id"], name=op.f("fk_charging_session_driver_id_driver")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_charging_session")),
        sa.UniqueConstraint("transaction_id", name=op.f("uq_charging_session_transaction_id")),
    )
    with op.batch_alter_table("charging_session", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_charging_session_charger_id"), ["charger_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_charging_session_driver_id"), ["driver_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_charging_session_status"), ["status"], unique=False)
        batch_op.create_index(
            "uq_charging_session_active_connector",
            ["charger_id", "connector_id"],
            unique=True,
            sqlite_where=sa.text("status IN ('pending', 'starting', 'charging', 'stopping')"),
            postgresql_where=sa.text("status IN ('pending', 'starting', 'charging', 'stopping')"),
        )

    op.create_table(
        "connector",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("charger_id", sa.String(length=64), nullable=False),
        sa.Column("connector_id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=8), nullable=False),
        sa.Column("connector_type", sa.String(length=16), nullable=False),
        sa.Column("max_power_kw", sa.Float(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("error_code", sa.String(length=30), nullable=False),
        sa.Column("status_updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["charger_id"],
            ["charger.id"],
            name=op.f("fk_connector_charger_id_charger"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_connector")),
        sa.UniqueConstraint("charger_id", "connector_id", name=op.f("uq_connector_charger_id")),
        sa.UniqueConstraint("code", name=op.f("uq_connector_code")),
    )
    with op.batch_alter_table("connector", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_connector_charger_id"), ["charger_id"], unique=False)

    op.create_table(
        "message",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("conversation_id", sa.Integer(), nullable=False),
        sa.Column("direction", sa.String(length=3), nullable=False),
        sa.Column("author", sa.String(length=10), nullable=False),
        sa.Column("staff_id", sa.Integer(), nullable=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversation.id"],
            name=op.f("fk_message_conversation_id_conversation"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["staff_id"], ["staff_user.id"], name=op.f("fk_message_staff_id_staff_user")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_message")),
    )
    with op.batch_alter_table("message", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_message_conversation_id"), ["conversation_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_message_staff_id"), ["staff_id"], unique=False)

    op.create_table(
        "meter_sample",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("session_id", sa.Integer(), nullable=False),
        sa.Column("measurand", sa.String(length=50), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("unit", sa.String(length=10), nullable=True),
        sa.Column("phase", sa.String(length=10), nullable=True),
        sa.Column("sampled_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["charging_session.id"],
            name=op.f("fk_meter_sample_session_id_charging_session"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_meter_sample")),
    )
    with op.batch_alter_table("meter_sample", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_meter_sample_session_id"), ["session_id"], unique=False
        )

    op.create_table(
        "payment",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("session_id", sa.Integer(), nullable=True),
        sa.Column("driver_id", sa.Integer(), nullable=True),
        sa.Column("method", sa.String(length=20), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("amount_authorized_minor", sa.Integer(), nullable=False),
        sa.Column("amount_captured_minor", sa.Integer(), nullable=False),
        sa.Column("amount_refunded_minor", sa.Integer(), nullable=False),
        sa.Column("stripe_checkout_session_id", sa.String(length=255), nullable=True),
        sa.Column("stripe_payment_intent_id", sa.String(length=255), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["driver_id"], ["driver.id"], name=op.f("fk_payment_driver_id_driver")
        ),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["charging_session.id"],
            name=op.f("fk_payment_session_id_charging_session"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payment")),
    )
    with op.batch_alter_table("payment", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_payment_driver_id"), ["driver_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_payment_session_id"), ["session_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_payment_stripe_checkout_session_id"),
            ["stripe_checkout_session_id"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_payment_stripe_payment_intent_id"),
            ["stripe_payment_intent_id"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("payment", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_payment_stripe_payment_intent_id"))
        batch_op.drop_index(batch_op.f("ix_payment_stripe_checkout_session_id"))
        batch_op.drop_index(batch_op.f("ix_payment_session_id"))
        batch_op.drop_index(batch_op.f("ix_payment_driver_id"))

    op.drop_table("payment")
    with op.batch_alter_table("meter_sample", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_meter_sample_session_id"))

    op.drop_table("meter_sample")
    with op.batch_alter_table("message", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_message_staff_id"))
        batch_op.drop_index(batch_op.f("ix_message_conversation_id"))

    op.drop_table("message")
    with op.batch_alter_table("connector", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_connector_charger_id"))

    op.drop_table("connector")
    with op.batch_alter_table("charging_session", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_charging_session_active_connector",
            sqlite_where=sa.text("status IN ('pending', 'starting', 'charging', 'stopping')"),
            postgresql_where=sa.text("status IN ('pending', 'starting', 'charging', 'stopping')"),
        )
        batch_op.drop_index(batch_op.f("ix_charging_session_status"))
        batch_op.drop_index(batch_op.f("ix_charging_session_driver_id"))
        batch_op.drop_index(batch_op.f("ix_charging_session_charger_id"))

    op.drop_table("charging_session")
    op.drop_table("tariff")
    with op.batch_alter_table("id_tag", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_id_tag_driver_id"))

    op.drop_table("id_tag")
    with op.batch_alter_table("conversation", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_conversation_driver_id"))
        batch_op.drop_index(batch_op.f("ix_conversation_assigned_to"))

    op.drop_table("conversation")
    with op.batch_alter_table("charger", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_charger_station_id"))

    op.drop_table("charger")
    with op.batch_alter_table("station", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_station_city"))

    op.drop_table("station")
    op.drop_table("staff_user")
    op.drop_table("processed_event")
    op.drop_table("driver")
