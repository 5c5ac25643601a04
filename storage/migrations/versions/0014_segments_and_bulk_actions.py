"""Named member segments and the log of bulk actions

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-02 19:40:00.000000
"""
import sqlalchemy as sa
import sqlmodel
from alembic import op


revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'segments',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column('rule', sa.Text(), nullable=False),
        sa.Column('created_by', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column('updated_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('name'),
    )
    op.create_table(
        'bulk_actions',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('login', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column('action', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column('detail', sa.Text(), nullable=False),
        sa.Column('members', sa.Integer(), nullable=False),
        sa.Column('at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_bulk_actions_at', 'bulk_actions', ['at'])


def downgrade() -> None:
    op.drop_index('ix_bulk_actions_at', table_name='bulk_actions')
    op.drop_table('bulk_actions')
    op.drop_table('segments')
