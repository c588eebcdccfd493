"""One `DocumentLineBase` for quote, invoice and credit-note lines: credit-note lines carry every column of
the other document lines, credit notes a status, so that a credit note can be rebuilt from its own rows;
and every line its billed period and months (prorated first invoices) and the item it bills (`origin`).

Existing credit-note lines are completed from the invoice line they cancel (same invoice, same position).

Revision ID: 3c1e5a7b9d20
Revises: 17bbda572f99
Create Date: 2026-12-01 09:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

from models.types import Money

revision: str = "3c1e5a7b9d20"
down_revision: str | None = "17bbda572f99"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COPIED = ("unit", "kind", "unit_price_ttc", "note", "family", "period_start", "period_end")
_PERIOD = ("months", "origin")


def upgrade() -> None:
    with op.batch_alter_table("creditnote", schema=None) as batch_op:
        batch_op.add_column(sa.Column("status", sa.String(length=20), nullable=False, server_default="issued"))
    with op.batch_alter_table("creditnoteline", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("unit", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False, server_default="")
        )
        batch_op.add_column(
            sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=12), nullable=False, server_default="yearly")
        )
        batch_op.add_column(sa.Column("unit_price_ttc", Money(precision=14, scale=2), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("note", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True))
        batch_op.add_column(
            sa.Column("family", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False, server_default="")
        )
        batch_op.add_column(sa.Column("period_start", sa.Date(), nullable=True))
        batch_op.add_column(sa.Column("period_end", sa.Date(), nullable=True))
    with op.batch_alter_table("creditnoteline", schema=None) as batch_op:
        batch_op.add_column(sa.Column("months", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("origin", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True))
    with op.batch_alter_table("invoiceline", schema=None) as batch_op:
        batch_op.add_column(sa.Column("months", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("origin", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True))
    with op.batch_alter_table("quoteline", schema=None) as batch_op:
        batch_op.add_column(sa.Column("period_start", sa.Date(), nullable=True))
        batch_op.add_column(sa.Column("period_end", sa.Date(), nullable=True))
        batch_op.add_column(sa.Column("months", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("origin", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True))
    # Complete the lines of credit notes issued before this revision from the invoice lines they cancel.
    for column in _COPIED:
        op.execute(
            f"""
            UPDATE creditnoteline SET {column} = (
                SELECT il.{column} FROM invoiceline il
                JOIN creditnote cn ON cn.invoice_id = il.invoice_id
                WHERE cn.id = creditnoteline.credit_note_id AND il.position = creditnoteline.position
            )
            WHERE EXISTS (
                SELECT 1 FROM invoiceline il
                JOIN creditnote cn ON cn.invoice_id = il.invoice_id
                WHERE cn.id = creditnoteline.credit_note_id AND il.position = creditnoteline.position
            )
            """
        )


def downgrade() -> None:
    with op.batch_alter_table("quoteline", schema=None) as batch_op:
        for column in ("origin", "months", "period_end", "period_start"):
            batch_op.drop_column(column)
    for table in ("invoiceline", "creditnoteline"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            for column in reversed(_PERIOD):
                batch_op.drop_column(column)
    with op.batch_alter_table("creditnoteline", schema=None) as batch_op:
        for column in reversed(_COPIED):
            batch_op.drop_column(column)
    with op.batch_alter_table("creditnote", schema=None) as batch_op:
        batch_op.drop_column("status")
