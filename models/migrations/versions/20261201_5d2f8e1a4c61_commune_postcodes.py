"""Communes carry their postcodes (La Poste), so that a commune's billing address has its postcode by
default when it has only one, and an entered postcode is checked against the commune's.

Revision ID: 5d2f8e1a4c61
Revises: 3c1e5a7b9d20
Create Date: 2026-12-01 10:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "5d2f8e1a4c61"
down_revision: str | None = "3c1e5a7b9d20"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Filled by the next `mairie init` (the reference data is reloaded, idempotently).
    with op.batch_alter_table("commune", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("postcodes", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False, server_default="")
        )


def downgrade() -> None:
    with op.batch_alter_table("commune", schema=None) as batch_op:
        batch_op.drop_column("postcodes")
