"""PES V2 to Hélios: bordereaux and titres de recettes (tables pesbordereau, pespiece), and the channel by
which each invoice left (invoice.sent_channel, invoice.sent_at).

Revision ID: 11ca940c0f67
Revises: c4e7f1a2b9d3
Create Date: 2026-12-01 09:25:23.897244
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import models.types

revision: str = '11ca940c0f67'
down_revision: str | None = 'c4e7f1a2b9d3'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('pesbordereau',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('issuer_code', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('exercice', sa.Integer(), nullable=False),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=12), nullable=False),
    sa.Column('dated_on', sa.Date(), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('file_name', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('deposited_path', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True),
    sa.Column('file_sha256', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('total_ht', models.types.Money(precision=14, scale=2), nullable=False),
    sa.Column('total_vat', models.types.Money(precision=14, scale=2), nullable=False),
    sa.Column('acquit_file', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
    sa.Column('acquitted_at', models.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('errors', sa.JSON(), nullable=False),
    sa.Column('created_at', models.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['issuer_code'], ['issuer.code'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('issuer_code', 'exercice', 'number')
    )
    with op.batch_alter_table('pesbordereau', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_pesbordereau_status'), ['status'], unique=False)

    op.create_table('pespiece',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('bordereau_id', sa.Integer(), nullable=False),
    sa.Column('invoice_id', sa.Integer(), nullable=False),
    sa.Column('issuer_code', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('exercice', sa.Integer(), nullable=False),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('asap_id', sqlmodel.sql.sqltypes.AutoString(length=50), nullable=False),
    sa.Column('pdf_id', sqlmodel.sql.sqltypes.AutoString(length=50), nullable=False),
    sa.Column('errors', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['bordereau_id'], ['pesbordereau.id'], ),
    sa.ForeignKeyConstraint(['invoice_id'], ['invoice.id'], ),
    sa.ForeignKeyConstraint(['issuer_code'], ['issuer.code'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('issuer_code', 'exercice', 'number')
    )
    with op.batch_alter_table('pespiece', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_pespiece_bordereau_id'), ['bordereau_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_pespiece_invoice_id'), ['invoice_id'], unique=False)
        batch_op.create_index('ux_pespiece_live_invoice', ['invoice_id'], unique=True, sqlite_where=sa.text("status != 'rejected'"), postgresql_where=sa.text("status != 'rejected'"))

    with op.batch_alter_table('invoice', schema=None) as batch_op:
        batch_op.add_column(sa.Column('sent_channel', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=True))
        batch_op.add_column(sa.Column('sent_at', models.types.UTCDateTime(timezone=True), nullable=True))



def downgrade() -> None:
    with op.batch_alter_table('invoice', schema=None) as batch_op:
        batch_op.drop_column('sent_at')
        batch_op.drop_column('sent_channel')

    with op.batch_alter_table('pespiece', schema=None) as batch_op:
        batch_op.drop_index('ux_pespiece_live_invoice', sqlite_where=sa.text("status != 'rejected'"), postgresql_where=sa.text("status != 'rejected'"))
        batch_op.drop_index(batch_op.f('ix_pespiece_invoice_id'))
        batch_op.drop_index(batch_op.f('ix_pespiece_bordereau_id'))

    op.drop_table('pespiece')
    with op.batch_alter_table('pesbordereau', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_pesbordereau_status'))

    op.drop_table('pesbordereau')
