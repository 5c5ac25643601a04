"""Outcomes: touches of members (and holdouts), a calendar entry's holdout share,
lifetime-value scores and fits

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-02 19:40:00.000000
"""
import sqlalchemy as sa
import sqlmodel
from alembic import op


revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('calendar_entries') as batch:
        batch.add_column(sa.Column('holdout', sa.Float(), server_default='0', nullable=False))
    op.create_table(
        'outcome_touches',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('member_id', sa.Integer(), nullable=False),
        sa.Column('at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column('source_kind', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column('source_ref', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column('staff_id', sa.Integer(), nullable=True),
        sa.Column('store_id', sa.Integer(), nullable=True),
        sa.Column('layer', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
        sa.Column('held_out', sa.Boolean(), nullable=False),
        sa.Column('ref', sqlmodel.sql.sqltypes.AutoString(length=191), nullable=False),
        sa.ForeignKeyConstraint(['member_id'], ['members.id']),
        sa.ForeignKeyConstraint(['staff_id'], ['staff.id']),
        sa.ForeignKeyConstraint(['store_id'], ['stores.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('ref'),
    )
    op.create_index('ix_outcome_touches_at', 'outcome_touches', ['at'])
    op.create_index('ix_outcome_touches_member_at', 'outcome_touches', ['member_id', 'at'])
    op.create_table(
        'ltv_scores',
        sa.Column('member_id', sa.Integer(), nullable=False),
        sa.Column('as_of', sa.Date(), nullable=False),
        sa.Column('p_alive', sa.Float(), nullable=False),
        sa.Column('orders_90d', sa.Float(), nullable=False),
        sa.Column('clv_90d_cents', sa.Float(), nullable=False),
        sa.Column('scored_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(['member_id'], ['members.id']),
        sa.PrimaryKeyConstraint('member_id'),
    )
    op.create_table(
        'ltv_fits',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('as_of', sa.Date(), nullable=False),
        sa.Column('fitted_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column('customers', sa.Integer(), nullable=False),
        sa.Column('params', sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )


def downgrade() -> None:
    op.drop_table('ltv_fits')
    op.drop_table('ltv_scores')
    op.drop_index('ix_outcome_touches_member_at', table_name='outcome_touches')
    op.drop_index('ix_outcome_touches_at', table_name='outcome_touches')
    op.drop_table('outcome_touches')
    with op.batch_alter_table('calendar_entries') as batch:
        batch.drop_column('holdout')
