"""The web app's shared guard state: rate-limit counters and API idempotency keys (table webguard).

Revision ID: a30613677824
Revises: 5d2f8e1a4c61
Create Date: 2026-12-01 08:01:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "a30613677824"
down_revision: str | None = "5d2f8e1a4c61"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "webguard",
        sa.Column("bucket", sqlmodel.sql.sqltypes.AutoString(length=24), nullable=False),
        sa.Column("subject", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("window_number", sa.BigInteger(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("blocked_until", sa.BigInteger(), nullable=True),
        sa.Column("expires_at", sa.BigInteger(), nullable=False),
        sa.Column("fingerprint", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("answer", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("bucket", "subject"),
    )
    with op.batch_alter_table("webguard", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_webguard_expires_at"), ["expires_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("webguard", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_webguard_expires_at"))
    op.drop_table("webguard")
