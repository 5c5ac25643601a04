"""Seen callback signature triples: a replayed official-account callback is refused

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-02 20:00:00.000000
"""
import sqlalchemy as sa
import sqlmodel
from alembic import op


revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'seen_callbacks',
        sa.Column('platform', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column('digest', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column('seen_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint('platform', 'digest'),
    )
    op.create_index('ix_seen_callbacks_seen_at', 'seen_callbacks', ['seen_at'])


def downgrade() -> None:
    op.drop_index('ix_seen_callbacks_seen_at', table_name='seen_callbacks')
    op.drop_table('seen_callbacks')
