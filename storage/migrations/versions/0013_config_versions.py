"""Configuration documents edited in the console, kept by version

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02 20:00:00.000000
"""
import sqlalchemy as sa
import sqlmodel
from alembic import op


revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'config_versions',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.Column('body', sa.Text(), nullable=False),
        sa.Column('source', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column('author', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column('note', sqlmodel.sql.sqltypes.AutoString(length=256), nullable=False),
        sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('name', 'version'),
    )
    op.create_index('ix_config_versions_name', 'config_versions', ['name'])


def downgrade() -> None:
    op.drop_index('ix_config_versions_name', table_name='config_versions')
    op.drop_table('config_versions')
