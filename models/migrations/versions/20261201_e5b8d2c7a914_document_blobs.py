"""The document store in the database: table documentblob (the bytes of each stored document, keyed by
SHA-256; PostgreSQL bytea kept out of line and uncompressed, SQLite BLOB).

Revision ID: e5b8d2c7a914
Revises: 7b3e9d41c2a8
Create Date: 2026-12-01 12:30:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import models.types

revision: str = "e5b8d2c7a914"
down_revision: str | None = "7b3e9d41c2a8"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "documentblob",
        sa.Column("sha256", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", models.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("sha256"),
    )
    if op.get_bind().dialect.name == "postgresql":
        # A PDF is compressed already: keep the bytes out of line without trying to compress them again.
        op.execute("ALTER TABLE documentblob ALTER COLUMN content SET STORAGE EXTERNAL")


def downgrade() -> None:
    op.drop_table("documentblob")
