"""PES V2: annulation-réduction titres of credit notes. A bordereau has a type (`typ_bord`, TypBord 01 or
02) and its number is unique per issuer, exercice and type; a titre may carry a credit note
(`credit_note_id`) and name the titre it cancels (`original_id`); an invoice keeps at most one live
ordinary titre, a credit note at most one live annulation titre.

Revision ID: 7b3e9d41c2a8
Revises: 11ca940c0f67
Create Date: 2026-12-01 12:45:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "7b3e9d41c2a8"
down_revision: str | None = "11ca940c0f67"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# SQLite keeps the first migration's unique constraint unnamed: batch mode names it by this convention
NAMING = {"uq": "uq_%(table_name)s_%(column_0_N_name)s"}
OLD_UNIQUE = {"postgresql": "pesbordereau_issuer_code_exercice_number_key"}
LIVE_INVOICE_OLD = "status != 'rejected'"
LIVE_INVOICE = "status != 'rejected' AND credit_note_id IS NULL"
LIVE_CREDIT_NOTE = "status != 'rejected' AND credit_note_id IS NOT NULL"


def _old_unique() -> str:
    return OLD_UNIQUE.get(op.get_bind().dialect.name, "uq_pesbordereau_issuer_code_exercice_number")


def upgrade() -> None:
    with op.batch_alter_table("pesbordereau", schema=None, naming_convention=NAMING) as batch_op:
        batch_op.add_column(
            sa.Column("typ_bord", sqlmodel.sql.sqltypes.AutoString(length=2), nullable=False, server_default="01")
        )
        batch_op.drop_constraint(_old_unique(), type_="unique")
        batch_op.create_unique_constraint("uq_pesbordereau_number", ["issuer_code", "exercice", "typ_bord", "number"])

    with op.batch_alter_table("pespiece", schema=None) as batch_op:
        batch_op.add_column(sa.Column("credit_note_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("original_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key("fk_pespiece_credit_note_id_creditnote", "creditnote", ["credit_note_id"], ["id"])
        batch_op.create_foreign_key("fk_pespiece_original_id_pespiece", "pespiece", ["original_id"], ["id"])
        batch_op.drop_index(
            "ux_pespiece_live_invoice",
            sqlite_where=sa.text(LIVE_INVOICE_OLD),
            postgresql_where=sa.text(LIVE_INVOICE_OLD),
        )
        batch_op.create_index(
            "ux_pespiece_live_invoice",
            ["invoice_id"],
            unique=True,
            sqlite_where=sa.text(LIVE_INVOICE),
            postgresql_where=sa.text(LIVE_INVOICE),
        )
        batch_op.create_index(
            "ux_pespiece_live_credit_note",
            ["credit_note_id"],
            unique=True,
            sqlite_where=sa.text(LIVE_CREDIT_NOTE),
            postgresql_where=sa.text(LIVE_CREDIT_NOTE),
        )


def downgrade() -> None:
    # refused while annulation titres exist: the old indexes cannot hold them
    with op.batch_alter_table("pespiece", schema=None) as batch_op:
        batch_op.drop_index(
            "ux_pespiece_live_credit_note",
            sqlite_where=sa.text(LIVE_CREDIT_NOTE),
            postgresql_where=sa.text(LIVE_CREDIT_NOTE),
        )
        batch_op.drop_index(
            "ux_pespiece_live_invoice", sqlite_where=sa.text(LIVE_INVOICE), postgresql_where=sa.text(LIVE_INVOICE)
        )
        batch_op.create_index(
            "ux_pespiece_live_invoice",
            ["invoice_id"],
            unique=True,
            sqlite_where=sa.text(LIVE_INVOICE_OLD),
            postgresql_where=sa.text(LIVE_INVOICE_OLD),
        )
        batch_op.drop_constraint("fk_pespiece_original_id_pespiece", type_="foreignkey")
        batch_op.drop_constraint("fk_pespiece_credit_note_id_creditnote", type_="foreignkey")
        batch_op.drop_column("original_id")
        batch_op.drop_column("credit_note_id")

    with op.batch_alter_table("pesbordereau", schema=None) as batch_op:
        batch_op.drop_constraint("uq_pesbordereau_number", type_="unique")
        batch_op.create_unique_constraint(_old_unique(), ["issuer_code", "exercice", "number"])
        batch_op.drop_column("typ_bord")
