"""Chorus Pro deposits (table chorusdeposit: one row per document deposited through the API, the flux and
invoice statuses since) and invoice.replaces_invoice_id (a reissue after a rejection).

Revision ID: c4e7f1a2b9d3
Revises: a30613677824
Create Date: 2026-12-01 09:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import models.types

revision: str = "c4e7f1a2b9d3"
down_revision: str | None = "a30613677824"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "chorusdeposit",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("issuer_code", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("document_type", sqlmodel.sql.sqltypes.AutoString(length=12), nullable=False),
        sa.Column("invoice_id", sa.Integer(), nullable=True),
        sa.Column("credit_note_id", sa.Integer(), nullable=True),
        sa.Column("number", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("file_name", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("state", sqlmodel.sql.sqltypes.AutoString(length=12), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("claimed_at", models.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("next_attempt_at", models.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("flux_number", sqlmodel.sql.sqltypes.AutoString(length=60), nullable=True),
        sa.Column("deposited_at", models.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("flux_state", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True),
        sa.Column("flux_state_at", models.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("chorus_invoice_id", sa.BigInteger(), nullable=True),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True),
        sa.Column("status_at", models.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("synced_at", models.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("history", sa.JSON(), nullable=False),
        sa.Column("created_at", models.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["credit_note_id"],
            ["creditnote.id"],
        ),
        sa.ForeignKeyConstraint(
            ["invoice_id"],
            ["invoice.id"],
        ),
        sa.ForeignKeyConstraint(
            ["issuer_code"],
            ["issuer.code"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("file_name"),
        sa.UniqueConstraint("flux_number"),
    )
    with op.batch_alter_table("chorusdeposit", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_chorusdeposit_invoice_id"), ["invoice_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_chorusdeposit_state"), ["state"], unique=False)

    with op.batch_alter_table("invoice", schema=None) as batch_op:
        batch_op.add_column(sa.Column("replaces_invoice_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key("fk_invoice_replaces_invoice_id", "invoice", ["replaces_invoice_id"], ["id"])


def downgrade() -> None:
    with op.batch_alter_table("invoice", schema=None) as batch_op:
        batch_op.drop_constraint("fk_invoice_replaces_invoice_id", type_="foreignkey")
        batch_op.drop_column("replaces_invoice_id")

    with op.batch_alter_table("chorusdeposit", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_chorusdeposit_state"))
        batch_op.drop_index(batch_op.f("ix_chorusdeposit_invoice_id"))

    op.drop_table("chorusdeposit")
