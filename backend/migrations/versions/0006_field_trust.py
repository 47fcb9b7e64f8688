"""field-grade trust: charger key rotation, random virtual tags, sessions under review,
the staff audit log and the readiness probe

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 08:50:00.000000
"""

import re
import secrets
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_OLD_VIRTUAL = re.compile(r"^CB\d{10}$")  # "CB" + zero-padded driver id: guessable


def upgrade() -> None:
    with op.batch_alter_table("charger", schema=None) as batch_op:
        batch_op.add_column(sa.Column("pending_key_hash", sa.String(length=200), nullable=True))
    with op.batch_alter_table("id_tag", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("virtual", sa.Boolean(), server_default=sa.text("false"), nullable=False)
        )
    with op.batch_alter_table("charging_session", schema=None) as batch_op:
        batch_op.add_column(sa.Column("measured_energy_wh", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("review_reason", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("reviewed_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("reviewed_by", sa.String(length=254), nullable=True))
    op.create_table(
        "staff_audit",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("staff_id", sa.Integer(), nullable=True),
        sa.Column("actor", sa.String(length=254), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("conversation_id", sa.Integer(), nullable=True),
        sa.Column("reason", sa.String(length=300), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["staff_id"], ["staff_user.id"], name=op.f("fk_staff_audit_staff_id_staff_user")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_staff_audit")),
    )
    with op.batch_alter_table("staff_audit", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_staff_audit_staff_id"), ["staff_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_staff_audit_conversation_id"), ["conversation_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_staff_audit_created_at"), ["created_at"], unique=False)
    op.create_table(
        "readiness_probe",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("checked_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_readiness_probe")),
    )
    _replace_guessable_virtual_tags()


def _replace_guessable_virtual_tags() -> None:
    """The old chat tags were "CB" + the driver id: give each a random successor."""
    bind = op.get_bind()
    rows = bind.execute(sa.text("SELECT id, id_tag FROM id_tag WHERE id_tag LIKE 'CB%'")).all()
    for row_id, value in rows:
        if _OLD_VIRTUAL.match(value):
            bind.execute(
                sa.text("UPDATE id_tag SET id_tag = :tag, virtual = :yes WHERE id = :id"),
                {"tag": "CB-" + secrets.token_hex(8).upper(), "yes": True, "id": row_id},
            )


def downgrade() -> None:
    op.drop_table("readiness_probe")
    with op.batch_alter_table("staff_audit", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_staff_audit_created_at"))
        batch_op.drop_index(batch_op.f("ix_staff_audit_conversation_id"))
        batch_op.drop_index(batch_op.f("ix_staff_audit_staff_id"))
    op.drop_table("staff_audit")
    with op.batch_alter_table("charging_session", schema=None) as batch_op:
        batch_op.drop_column("reviewed_by")
        batch_op.drop_column("reviewed_at")
        batch_op.drop_column("review_reason")
        batch_op.drop_column("measured_energy_wh")
    with op.batch_alter_table("id_tag", schema=None) as batch_op:
        batch_op.drop_column("virtual")
    with op.batch_alter_table("charger", schema=None) as batch_op:
        batch_op.drop_column("pending_key_hash")
