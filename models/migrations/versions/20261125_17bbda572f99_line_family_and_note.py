"""Catalogue family and note on quote and invoice lines (an invoice is rendered from its stored lines).

Revision ID: 17bbda572f99
Revises: 85fe50305f95
Create Date: 2026-11-25 00:50:18.897876
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "17bbda572f99"
down_revision: str | None = "85fe50305f95"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Existing lines get an empty family (the documents then print the unit alone).
    with op.batch_alter_table("invoiceline", schema=None) as batch_op:
        batch_op.add_column(sa.Column("note", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True))
        batch_op.add_column(
            sa.Column("family", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False, server_default="")
        )
    with op.batch_alter_table("quoteline", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("family", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False, server_default="")
        )


def downgrade() -> None:
    with op.batch_alter_table("quoteline", schema=None) as batch_op:
        batch_op.drop_column("family")
    with op.batch_alter_table("invoiceline", schema=None) as batch_op:
        batch_op.drop_column("family")
        batch_op.drop_column("note")
