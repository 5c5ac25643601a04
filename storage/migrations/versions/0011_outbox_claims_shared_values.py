"""Outbox claims with an owner and an expiry; values and send counts shared by processes

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02 19:40:00.000000
"""
import sqlalchemy as sa
import sqlmodel
from alembic import op


revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('outbox') as batch:
        batch.add_column(sa.Column('claimed_by', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True))
        batch.add_column(sa.Column('claim_expires_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
    op.create_table(
        'shared_values',
        sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=191), nullable=False),
        sa.Column('value', sa.Text(), nullable=False),
        sa.Column('expires_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column('updated_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint('name'),
    )
    op.create_table(
        'send_slots',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('key', sqlmodel.sql.sqltypes.AutoString(length=191), nullable=False),
        sa.Column('sent_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_send_slots_key_sent_at', 'send_slots', ['key', 'sent_at'])


def downgrade() -> None:
    op.drop_index('ix_send_slots_key_sent_at', table_name='send_slots')
    op.drop_table('send_slots')
    op.drop_table('shared_values')
    with op.batch_alter_table('outbox') as batch:
        batch.drop_column('claim_expires_at')
        batch.drop_column('claimed_by')
