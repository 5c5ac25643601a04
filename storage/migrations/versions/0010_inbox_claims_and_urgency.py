"""Inbox claims (owner and expiry) and urgency, so several processes share the inbox

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02 19:40:00.000000
"""
import sqlalchemy as sa
import sqlmodel
from alembic import op


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('inbox') as batch:
        batch.add_column(sa.Column('urgent', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch.add_column(sa.Column('claimed_by', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True))
        batch.add_column(sa.Column('claim_until', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
        batch.create_index('ix_inbox_sender_status', ['platform', 'sender', 'status'], unique=False)
        batch.create_index('ix_inbox_status_urgent_id', ['status', 'urgent', 'id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('inbox') as batch:
        batch.drop_index('ix_inbox_status_urgent_id')
        batch.drop_index('ix_inbox_sender_status')
        batch.drop_column('claim_until')
        batch.drop_column('claimed_by')
        batch.drop_column('urgent')
