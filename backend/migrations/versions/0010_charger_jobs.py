"""charger jobs (firmware updates, diagnostics and log uploads) and security events

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01 21:20:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "charger_job",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("charger_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("location", sa.String(length=512), nullable=False),
        sa.Column("upload_token_hash", sa.String(length=64), nullable=True),
        sa.Column("file_name", sa.String(length=255), nullable=True),
        sa.Column("stored_as", sa.String(length=512), nullable=True),
        sa.Column("file_size", sa.Integer(), nullable=True),
        sa.Column("requested_by", sa.String(length=254), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["charger_id"],
            ["charger.id"],
            name=op.f("fk_charger_job_charger_id_charger"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_charger_job")),
    )
    op.create_index(op.f("ix_charger_job_charger_id"), "charger_job", ["charger_id"])
    op.create_index(op.f("ix_charger_job_upload_token_hash"), "charger_job", ["upload_token_hash"])
    op.create_table(
        "charger_job_status",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("job_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["job_id"],
            ["charger_job.id"],
            name=op.f("fk_charger_job_status_job_id_charger_job"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_charger_job_status")),
    )
    op.create_index(op.f("ix_charger_job_status_job_id"), "charger_job_status", ["job_id"])
    op.create_table(
        "security_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("charger_id", sa.String(length=64), nullable=False),
        sa.Column("type", sa.String(length=50), nullable=False),
        sa.Column("tech_info", sa.String(length=255), nullable=True),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["charger_id"],
            ["charger.id"],
            name=op.f("fk_security_event_charger_id_charger"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_security_event")),
    )
    op.create_index(op.f("ix_security_event_charger_id"), "security_event", ["charger_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_security_event_charger_id"), table_name="security_event")
    op.drop_table("security_event")
    op.drop_index(op.f("ix_charger_job_status_job_id"), table_name="charger_job_status")
    op.drop_table("charger_job_status")
    op.drop_index(op.f("ix_charger_job_upload_token_hash"), table_name="charger_job")
    op.drop_index(op.f("ix_charger_job_charger_id"), table_name="charger_job")
    op.drop_table("charger_job")
